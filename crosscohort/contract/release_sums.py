"""The export gate's rules for sufficient statistics: sums over people, and every count they reveal.

A cohort that opts in (cohort sheet; ``crosscohort export --sufficient``)
releases, per trait, a cohort block and per-variant sums
(:mod:`crosscohort.contract.sums`). These are sums over people, so the gate
asks of them what it asks of sumstats: no count of 1..``min_count`` people
and no allele count below ``min_mac`` may be *derivable* from what is
released. The derivable counts and the rule for each:

Block rules (the trait's sums are refused as a whole; the sumstats still go):

``sufficient_round_n``
    ``round_n`` > 0 (count rounding) is incompatible: the exact pooled fit
    needs exact sums, and sums give n exactly.
``sufficient_block_count``
    n, and the level counts of every covariate with at most three distinct
    values (n, 1'x and x'x determine them), must exceed ``min_count``; the
    joint cell counts of every pair of such columns (their cross-product
    gives them for two two-valued columns), and with a binary trait's
    cases/controls, must be 0 or exceed ``min_count``. Sums of a continuous
    covariate over a level (from x'x) are then over more than ``min_count``
    people too.
``sufficient_block_df``
    n - (covariates + 2) >= ``min_residual_df``.
``sufficient_difference_cap``
    the cohort counted differences between variants (``n_differ``, below)
    up to a cap (``crosscohort sufficient --difference-cap``, default 20)
    of at least ``min_count``; a block that does not say is refused
    (fail-closed).

Row rules (a variant's row is suppressed; counted under the first it fails,
in :data:`ROW_RULES` order, so rows in = released + each rule):

``sufficient_not_finite``
    a released sum is missing or not finite.
``sufficient_genotype_count``
    the genotype-class counts (hom-ref, het, hom-alt) of the calls the sums
    describe: a missing call is filled with its variant's hard call of the
    mean (:mod:`crosscohort.tre.sufficient`), so the sums are those of a
    complete hard-call vector and ``gg + sum_g^2/n - sum_g = 2 n_hom_alt``,
    ``2 sum_g - (gg + sum_g^2/n) = n_het``. So each must be 0 or exceed
    ``min_count``. The counts are taken from the filled calls themselves
    (internal columns), so dosages are covered without solving for them.
    The missing-call count m is not derivable from the sums: a variant
    with m missing calls has exactly the sums of the complete-call vector
    its fill makes (before, the fill was the mean, a fraction, and
    ``sum_g = ALT count x n / (n - m)`` gave m exactly, for every variant).
``sufficient_min_mac``
    minor allele count, from the released ``sum_g`` (``min(sum_g, 2n -
    sum_g)``) and from the hard calls, >= ``min_mac``.
``sufficient_min_mac_group``
    allele counts within groups: binary traits, the MAC among cases and
    among controls (internal columns); quantitative traits, within each
    level of each two-valued covariate (and of the trait itself, when it
    takes two values), derived exactly as an outsider would from the
    released ``gx`` (``gy``): ``alt_hi = gx / (hi - lo) + n_hi sum_g / n``;
    each >= ``min_mac_group`` (off when 0).
``sufficient_variant_difference``
    differencing. Two released variants whose dosage vectors differ in a
    set D of people give, by subtracting their rows, sums over D alone:
    ``gy_A - gy_B = sum_D (g_A - g_B) y~`` and likewise ``gx``; for one
    person, that person's trait and covariate values (times a known
    whole number for hard calls). The same holds for g_A against the
    mirror ``2 - g_B`` (an outsider negates a variant's sums to flip it).
    So a variant is withheld when its filled dosages differ from those of
    one of the ``window`` variants before it (default 1,000, in file order;
    ``crosscohort sufficient --difference-window``), or from their mirror,
    in 1..``min_count`` people (internal column ``n_differ``). Identical
    vectors (0 people) reveal nothing. The earlier variant may be withheld
    by another rule; the check does not know, and errs towards withholding.
    Pairs farther apart and combinations of three or more variants are not
    checked (:data:`NOT_COVERED` says why no rule on linear sums can be
    complete).

Columns: the key columns, ``n``, ``sum_g`` and the model's sums are
released; the internal columns are used, then stripped; anything else is
dropped and listed in the audit.

Not covered, stated in the audit (:data:`NOT_COVERED`): differences
between variants beyond pairs in the window; releases of the same data made
without the fill; and exact allele counts.

Bundle rule ``sufficient_sumstats_fill`` (:func:`check_sumstats_filled`):
the same bundle's sumstats must describe the calls the sums describe
(``crosscohort assoc --missing fill``): every variant in both has the
sums' n and ALT allele count, else the export is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from crosscohort.contract.errors import GateError, InputError
from crosscohort.contract.ledger import Ledger
from crosscohort.contract.release import GateRules
from crosscohort.contract.sums import (
    BLOCK_SUFFIX,
    INTERNAL_VARIANT_COLUMNS,
    KEY_COLUMNS,
    VARIANT_SUFFIX,
    CohortBlock,
    gwx_column,
    gx_column,
    read_block,
    write_block,
)

__all__ = [
    "BLOCK_RULES",
    "ROW_RULES",
    "RULE_DESCRIPTIONS",
    "NOT_COVERED",
    "MISSING_CALLS",
    "SufficientGateResult",
    "block_violations",
    "released_sums_violations",
    "check_sumstats_filled",
    "read_sums_table",
    "gate_sufficient",
    "export_sufficient",
    "audit_md",
    "own_strings",
]

BLOCK_RULES: tuple[str, ...] = ("sufficient_round_n", "sufficient_block_count", "sufficient_block_df",
                                 "sufficient_difference_cap")
ROW_RULES: tuple[str, ...] = (
    "sufficient_not_finite",
    "sufficient_genotype_count",
    "sufficient_min_mac",
    "sufficient_min_mac_group",
    "sufficient_variant_difference",
)

RULE_DESCRIPTIONS: dict[str, str] = {
    "sufficient_round_n": "count rounding (round_n > 0) is incompatible with exact sums: refused",
    "sufficient_block_count": "n and every level of a covariate with <= 3 values > min_count; joint cells "
                              "of such columns (and cases/controls) 0 or > min_count",
    "sufficient_block_df": "n - (covariates + 2) >= min_residual_df",
    "sufficient_difference_cap": "the cohort counted differences between variants up to at least min_count "
                                 "people (crosscohort sufficient --difference-cap)",
    "sufficient_not_finite": "a released sum missing or not finite",
    "sufficient_genotype_count": "hom-ref, het and hom-alt counts (derivable from gg, sum_g and n) each "
                                 "0 or > min_count",
    "sufficient_min_mac": "min(sum_g, 2n - sum_g) and the hard-call MAC >= min_mac",
    "sufficient_min_mac_group": "MAC among cases and controls (binary) or within each level of each "
                                "two-valued covariate, derived from gx (quantitative) >= min_mac_group",
    "sufficient_variant_difference": "the variant's dosages (or 2 minus them) differ from those of one of the "
                                     "variants before it in the cohort's difference window in 0 or more than "
                                     "min_count people (else subtracting the two rows' sums gives sums over "
                                     "those few people)",
}

#: The cohort's missing-genotype handling, as the audit states it.
MISSING_CALLS = (
    "A missing genotype call is filled with its variant's hard call of the mean (the genotype 0, 1 or 2 "
    "nearest the variant's mean ALT dosage over the cohort's QC'd samples with a call; halves up), so every "
    "variant's sums are over the trait's n people, and the sums of a variant with missing calls are those of "
    "a complete-call vector: they do not reveal how many calls were missing. The genotype-count rules apply "
    "to the filled calls. The same bundle's sumstats are fitted on the same filled calls (crosscohort assoc "
    "--missing fill, over the same --keep samples): the gate checks, on the association rows it reads before "
    "its release rules, that every variant in both has the sums' n and ALT allele count (2 n EAF = sum_g), and "
    "refuses the export otherwise (rule sufficient_sumstats_fill), so the sumstats' estimates are those of the "
    "sums' calls and add nothing about which calls were missing. The released sumstats carry the trait's "
    "released n and a rounded EAF (count rules), which may differ from the sums' exact n and sum_g."
)

NOT_COVERED = (
    "(1) Exact values: sum_g gives each released variant's exact ALT allele count (each at least min_mac; "
    "the sumstats' EAF rounding does not hide it) and the trait's exact n (so round_n cannot apply). "
    "(2) Missing calls: each is filled with its variant's hard call of the mean, in the sums and in the same "
    "bundle's sumstats alike (checked: rule sufficient_sumstats_fill), so neither reveals how many a variant "
    "has, nor which people they are. What the fill itself changes (a filled call is the commonest genotype, "
    "not the person's own) biases that variant's estimates slightly towards zero, in both; a cohort's other "
    "releases made without the fill (e.g. an earlier drop-mode export of the same data) are not checked "
    "against these. "
    "(3) Differences between variants are checked pairwise (each variant against the variants before it in "
    "the cohort's difference window, and their mirrors) only: two released variants farther apart that "
    "differ in 1 to min_count people (in unrelated samples this needs nearly the same carriers), or three or "
    "more variants (or variants and a few-valued covariate) whose combination (e.g. a haplotype relation "
    "g_A = g_B + g_C) is nonzero in only a few people, still give sums of those people's trait and covariate values by subtraction. No rule on "
    "released per-variant linear sums closes this completely: with as many variants as people the sums "
    "g'y determine y for anyone who knows the genotypes, so their protection rests on the genotypes staying "
    "in the TRE; an outsider who holds a participant's genotypes can target that participant. Released betas "
    "carry the same risk in a weaker form. A TRE that counts this as a disclosure should not opt in."
)


@dataclass(frozen=True)
class SufficientGateResult:
    """One trait's sums through the gate."""

    trait: str
    status: str  # "released" or "refused"
    reasons: tuple[str, ...]
    block: CohortBlock
    released: pl.DataFrame | None
    ledger: Ledger
    columns_released: tuple[str, ...]
    columns_internal_stripped: tuple[str, ...]
    columns_dropped: tuple[str, ...]


def _small(count: float, min_count: int) -> bool:
    return 0 < count <= min_count


def block_violations(block: CohortBlock, rules: GateRules) -> list[tuple[str, str]]:
    """``(rule, why)`` for every block rule ``block`` breaks (empty: the block may go).

    ``why`` is released in the audit, so it names the rule, the column and
    the threshold, never the count that broke it (n, a level's or a joint
    cell's count, or the residual df, which gives n): a refusal that said
    its count would release the very count 1..``min_count`` it refused.
    """
    out: list[tuple[str, str]] = []
    k = rules.min_count
    if rules.round_n > 0:
        out.append(("sufficient_round_n", f"round_n={rules.round_n}: exact sums reveal exact counts"))
    if not block.n > k:
        out.append(("sufficient_block_count", f"n (the trait's analysed samples) is at most min_count={k}"))
    levels = block.internal.get("levels")
    cells = block.internal.get("cells")
    if levels is None or cells is None:
        out.append(("sufficient_block_count", "the block has no internal level counts to check (fail-closed)"))
        levels, cells = {}, []
    for name, lv in levels.items():
        if any(not c > k for c in lv["counts"]):
            out.append(("sufficient_block_count", f"column {name}: a level with at most min_count={k} people"))
    for cell in cells:
        if any(_small(c, k) for c in cell["counts"]):
            out.append(("sufficient_block_count",
                        f"columns {cell['columns'][0]} x {cell['columns'][1]}: a joint cell of 1 to "
                        f"min_count={k} people"))
    if rules.min_residual_df and block.n - (block.k + 2) < rules.min_residual_df:
        out.append(("sufficient_block_df", f"n - (covariates + 2) is below min_residual_df={rules.min_residual_df}"))
    diff = block.internal.get("differences")
    if not isinstance(diff, dict) or not isinstance(diff.get("cap"), int) or not isinstance(diff.get("window"), int):
        out.append(("sufficient_difference_cap", "the block does not say how differences between variants were "
                                                 "counted (fail-closed; rerun crosscohort sufficient)"))
    elif diff["cap"] < k:
        out.append(("sufficient_difference_cap", f"differences between variants were counted up to "
                                                 f"{diff['cap']} people, below min_count={k}; rerun "
                                                 f"crosscohort sufficient with --difference-cap {k}"))
    return out


def _released_columns(block: CohortBlock) -> list[str]:
    if block.trait_type == "quantitative":
        sums = ["gg", "gy", *(gx_column(c) for c in block.covariates)]
    else:
        sums = ["u", "gwg", gwx_column("1"), *(gwx_column(c) for c in block.covariates)]
    return ["n", "sum_g", *sums]


def _count_fail(col: str, min_count: int) -> pl.Expr:
    c = pl.col(col)
    return c.is_null() | ((c > 0) & (c <= min_count))


def _below(expr: pl.Expr, threshold: float) -> pl.Expr:
    return expr.is_null() | expr.is_nan() | (expr < threshold)


def _group_mac(block: CohortBlock) -> list[pl.Expr]:
    """Allele-count MACs within each level of each two-valued covariate, from the released sums."""
    out = []
    levels = block.internal.get("levels", {})
    # g~'x~ = (hi - lo) x (sum of g~ over the hi level) for a two-valued x; g'y likewise.
    columns = {name: gx_column(name) for name in block.covariates} | {"<trait>": "gy"}
    for name, col in columns.items():
        lv = levels.get(name)
        if lv is None or len(lv["values"]) != 2:
            continue
        (lo, hi), (n_lo, n_hi) = lv["values"], lv["counts"]
        gbar = pl.col("sum_g") / pl.col("n").cast(pl.Float64)
        alt_hi = pl.col(col) / (hi - lo) + n_hi * gbar
        alt_lo = pl.col("sum_g") - alt_hi
        out += [pl.min_horizontal(alt_hi, 2.0 * n_hi - alt_hi), pl.min_horizontal(alt_lo, 2.0 * n_lo - alt_lo)]
    return out


def gate_sufficient(block: CohortBlock, sums: pl.DataFrame, *, rules: GateRules, cohort: str,
                    source: str = "sufficient statistics") -> SufficientGateResult:
    """The block and the rows of one trait's sums that may leave the TRE.

    Raises
    ------
    GateError
        A column a rule needs is absent (fail-closed).
    """
    released_cols = _released_columns(block)
    need = [*released_cols, "n_hom_ref", "n_het", "n_hom_alt", "n_missing", "n_differ",
            *(("mac_cases", "mac_controls") if block.trait_type == "binary" else ())]
    missing = [c for c in need if c not in sums.columns]
    if missing:
        raise GateError(f"{source}: missing column(s) {missing}, needed by the sufficient-statistics rules")
    ledger = Ledger(stage="export_sufficient", cohort=cohort, trait=block.trait, unit="variants",
                    n_in=sums.height)
    keys = [c for c in KEY_COLUMNS if c in sums.columns]
    internal = [c for c in sums.columns if c in INTERNAL_VARIANT_COLUMNS]
    dropped = [c for c in sums.columns if c not in keys and c not in released_cols and c not in internal]
    violations = block_violations(block, rules)
    if violations:
        ledger.remove(violations[0][0], sums.height)
        return SufficientGateResult(block.trait, "refused", tuple(f"{r}: {w}" for r, w in violations), block,
                                    None, ledger.check(), (), tuple(internal), tuple(dropped))
    checks: dict[str, pl.Expr] = {
        "sufficient_not_finite": pl.any_horizontal(
            [pl.col(c).is_null() | ~pl.col(c).cast(pl.Float64).is_finite() for c in released_cols]),
        "sufficient_genotype_count": pl.any_horizontal(
            [_count_fail(c, rules.min_count) for c in ("n_hom_ref", "n_het", "n_hom_alt")]),
        "sufficient_min_mac": pl.any_horizontal(
            _below(pl.min_horizontal(pl.col("sum_g"), 2.0 * pl.col("n") - pl.col("sum_g")), rules.min_mac),
            _below(pl.min_horizontal(pl.col("n_het") + 2 * pl.col("n_hom_alt"),
                                     pl.col("n_het") + 2 * pl.col("n_hom_ref")).cast(pl.Float64),
                   rules.min_mac)),
    }
    checks["sufficient_variant_difference"] = _count_fail("n_differ", rules.min_count)
    if rules.min_mac_group > 0:
        group = ([pl.col("mac_cases"), pl.col("mac_controls")] if block.trait_type == "binary"
                 else _group_mac(block))
        checks["sufficient_min_mac_group"] = (pl.any_horizontal([_below(g, rules.min_mac_group) for g in group])
                                              if group else pl.lit(False))
    flags = sums.select(**{k: v.fill_null(True) for k, v in checks.items()})
    remaining = np.ones(sums.height, dtype=bool)
    for rule in ROW_RULES:
        if rule not in flags.columns:
            continue
        fail = flags.get_column(rule).to_numpy() & remaining
        ledger.remove(rule, int(fail.sum()))
        remaining &= ~fail
    ledger.n_kept = int(remaining.sum())
    released = sums.filter(pl.Series(remaining)).select(keys + released_cols)
    return SufficientGateResult(block.trait, "released", (), block, released, ledger.check(),
                                tuple(keys + released_cols), tuple(internal), tuple(dropped))


def released_sums_violations(block_json: dict, sums: pl.DataFrame, *, rules: GateRules) -> dict[str, int]:
    """Rule breaches checkable from a *released* block and sums alone (the gate's re-check and verify's).

    ``block_json`` is the released block as parsed JSON, ``sums`` the released
    table. Returns ``{rule: rows}`` (block rules count every row):
    ``internal_counts_released`` (the block carries ``internal``),
    ``columns_outside_allow_list``, ``sufficient_round_n``,
    ``sufficient_block_count`` (n), ``columns_missing``, ``n_not_block_n``
    (a row's n is not the block's), ``sufficient_not_finite`` and
    ``sufficient_min_mac`` (from ``sum_g``).

    Not re-checkable here: the genotype and missing-call counts. From
    released values they are exact only for hard calls, and dosages give
    values near whole numbers by chance (a false refusal at biobank scale),
    so the gate checks them on the calls themselves (internal columns).
    """
    out: dict[str, int] = {}
    rows = sums.height
    if "internal" in block_json:
        out["internal_counts_released"] = max(rows, 1)
    ttype = block_json.get("trait_type")
    covariates = [str(c) for c in block_json.get("covariates") or []]
    if ttype == "quantitative":
        sums_cols = ["gg", "gy", *(gx_column(c) for c in covariates)]
    else:
        sums_cols = ["u", "gwg", gwx_column("1"), *(gwx_column(c) for c in covariates)]
    allowed = {*KEY_COLUMNS, "n", "sum_g", *sums_cols}
    extra = [c for c in sums.columns if c not in allowed]
    if extra:
        out["columns_outside_allow_list"] = len(extra)
    if rules.round_n > 0:
        out["sufficient_round_n"] = rows
    n_block = block_json.get("n")
    if not isinstance(n_block, int) or not n_block > rules.min_count:
        out["sufficient_block_count"] = max(rows, 1)
    present = [c for c in ("n", "sum_g", *sums_cols) if c in sums.columns]
    missing = [c for c in ("n", "sum_g", *sums_cols) if c not in sums.columns]
    if missing:
        out["columns_missing"] = len(missing)
    if not rows or "n" not in sums.columns or "sum_g" not in sums.columns:
        return out
    n = pl.col("n").cast(pl.Float64)
    s = pl.col("sum_g").cast(pl.Float64)
    checks = {
        "n_not_block_n": pl.col("n") != (n_block if isinstance(n_block, int) else -1),
        "sufficient_not_finite": pl.any_horizontal(
            [pl.col(c).is_null() | ~pl.col(c).cast(pl.Float64).is_finite() for c in present]),
        "sufficient_min_mac": _below(pl.min_horizontal(s, 2.0 * n - s), rules.min_mac),
    }
    for rule, expr in checks.items():
        bad = int(sums.select(expr.fill_null(True).sum()).item())
        if bad:
            out[rule] = bad
    return out


def read_sums_table(path: str | Path) -> pl.DataFrame:
    """A sufficient-statistics table (text key columns, every other column Float64).

    Raises
    ------
    InputError
        The file cannot be read as such a table.
    """
    path = Path(path)
    try:
        header = pl.read_csv(path, separator="\t", n_rows=0).columns
        text = {"effect_allele", "other_allele", "variant_id", "rsid"}
        schema = {c: pl.String if c in text else pl.Float64 for c in header}
        return pl.read_csv(path, separator="\t", null_values="NA", schema=schema)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"{path}: not a readable sufficient-statistics table "
                         f"({str(exc).strip().splitlines()[0]})") from None


#: The rule that the same bundle's sumstats describe the calls the sums describe.
SUMSTATS_FILL_RULE = "sufficient_sumstats_fill"

#: Relative tolerance of the ALT allele count 2 n EAF (17 printed digits) against sum_g.
_ALLELE_COUNT_RTOL = 1e-9


def check_sumstats_filled(sums: pl.DataFrame, sumstats: pl.DataFrame, *, trait: str, sums_source: str,
                          sumstats_source: str) -> int:
    """Refuse sums beside sumstats not fitted on the calls the sums describe (rule ``sufficient_sumstats_fill``).

    The sums fill a missing call (:mod:`crosscohort.tre.sufficient`); sumstats
    fitted without the people with a missing call (``crosscohort assoc
    --missing drop``, plink2's semantics) have, at such a variant, a smaller
    ``n`` and an ALT allele count ``2 n EAF`` other than ``sum_g``, and beside
    the sums their beta would reveal the missing calls and, for a person
    without a call in many variants, equations in that person's values. So
    every variant in both tables must have the sums' ``n`` and, where EAF is
    given, ``2 n EAF = sum_g`` (relative 1e-9): what ``crosscohort assoc
    --missing fill`` with the ``--keep`` of ``crosscohort sufficient`` gives.
    The check reads the data, not a label: drop-mode sumstats without a
    missing call pass, as they equal the filled ones.

    Returns
    -------
    int
        The number of variants compared.

    Raises
    ------
    GateError
        A variant of both tables whose sample size or allele count differ (the
        first named, with both values, and the fix).
    """
    need = {"sumstats": ("variant_id", "n", "effect_allele_frequency"), "sums": ("variant_id", "n", "sum_g")}
    for what, table, source in (("sumstats", sumstats, sumstats_source), ("sums", sums, sums_source)):
        absent = [c for c in need[what] if c not in table.columns]
        if absent:
            raise GateError(f"{source}: missing column(s) {absent}, needed by rule {SUMSTATS_FILL_RULE} "
                            f"(the sumstats of trait {trait} must describe the calls its sums describe)")
    both = sums.select("variant_id", pl.col("n").alias("n_sums"), "sum_g").join(
        sumstats.select("variant_id", pl.col("n").cast(pl.Float64).alias("n_assoc"),
                        pl.col("effect_allele_frequency").alias("eaf")),
        on="variant_id", how="inner")
    alt = 2.0 * pl.col("n_assoc") * pl.col("eaf")
    bad = both.filter((pl.col("n_assoc") != pl.col("n_sums")) | pl.col("n_assoc").is_null()
                      | (alt - pl.col("sum_g")).abs().gt(_ALLELE_COUNT_RTOL * pl.max_horizontal(pl.col("sum_g").abs(),
                                                                                                 pl.lit(1.0))))
    if bad.height:
        r = bad.row(0, named=True)
        raise GateError(
            f"{sumstats_source}: rule {SUMSTATS_FILL_RULE}: {bad.height} of {both.height} variants of trait "
            f"{trait} have a sample size or ALT allele count other than the sums' in {sums_source} "
            f"(e.g. {r['variant_id']}: n {r['n_assoc']:g} vs {r['n_sums']:g}, ALT count 2 n EAF "
            f"{2 * (r['n_assoc'] or 0) * (r['eaf'] or 0):.6g} vs sum_g {r['sum_g']:.6g}): the sumstats were not "
            "fitted on the calls the sums describe (crosscohort assoc --missing drop leaves a sample with a "
            "missing call out of that variant's fit), so beside the sums they would reveal each variant's "
            "missing calls and, for a person without a call in many variants, equations in that person's "
            "values. Run crosscohort assoc --missing fill with the --keep of crosscohort sufficient; "
            "export blocked")
    return both.height


def export_sufficient(directory: str | Path, trait: str, out_dir: str | Path, *, rules: GateRules,
                      cohort: str, sumstats: str | Path | None = None) -> dict:
    """Gate one trait's sums from ``directory`` into ``out_dir`` (the bundle's staging) and audit it.

    Writes ``{trait}.block.json`` (without the internal counts) and
    ``{trait}.sufficient.tsv.gz`` when released; nothing when refused.
    ``sumstats``: the same bundle's association results of the trait, which
    must describe the calls the sums describe (:func:`check_sumstats_filled`).

    Returns
    -------
    dict
        The trait's audit entry (``status``, ``reasons``, rules with rows
        suppressed, columns, ledger).
    """
    from crosscohort.contract.sumstats import write_sumstats

    d = Path(directory)
    block_path, sums_path = d / f"{trait}{BLOCK_SUFFIX}", d / f"{trait}{VARIANT_SUFFIX}"
    for f in (block_path, sums_path):
        if not f.is_file():
            raise InputError(f"{f}: no such file (--sufficient {trait}={directory}: crosscohort sufficient "
                             f"--out-dir writes {block_path.name} and {sums_path.name})")
    block = read_block(block_path)
    if block.trait != trait:
        raise InputError(f"{block_path}: block of trait {block.trait!r}, given as {trait!r}")
    table = read_sums_table(sums_path)
    compared = None
    if sumstats is not None:
        from crosscohort.contract.sumstats import read_sumstats

        compared = check_sumstats_filled(
            table, read_sumstats(sumstats, columns=("variant_id", "n", "effect_allele_frequency")), trait=trait,
            sums_source=str(sums_path), sumstats_source=str(sumstats))
    res = gate_sufficient(block, table, rules=rules, cohort=cohort, source=str(sums_path))
    del table
    out = Path(out_dir)
    files = []
    if res.status == "released":
        write_block(block, out / block_path.name, with_internal=False)
        int_cols = [c for c in ("chromosome", "base_pair_location", "n") if c in res.released.columns]
        write_sumstats(res.released.with_columns(pl.col(int_cols).cast(pl.Int64)), out / sums_path.name)
        files = [block_path.name, sums_path.name]
        # Re-read what was written, as the outside world will, and re-check it from released values.
        back = json.loads((out / block_path.name).read_text())
        bad = released_sums_violations(back, read_sums_table(out / sums_path.name), rules=rules)
        if bad:
            raise GateError(f"{out / sums_path.name}: re-check of the written sums failed ({bad}); export blocked")
    return {
        "trait_type": block.trait_type,
        "status": res.status,
        "reasons": list(res.reasons),
        "files": files,
        # The exact n only with the sums that carry it anyway (then it is > min_count, unrounded).
        **({"n": block.n} if res.status == "released" else {}),
        "covariates": list(block.covariates),
        "rows_in": res.ledger.n_in,
        "rows_released": res.ledger.n_kept,
        "rules": [{"rule": r, "description": RULE_DESCRIPTIONS[r],
                   "rows_suppressed": res.ledger.removed.get(r, 0)} for r in (*BLOCK_RULES, *ROW_RULES)],
        "columns_released": list(res.columns_released),
        "columns_internal_stripped": list(res.columns_internal_stripped),
        "columns_dropped": list(res.columns_dropped),
        "missing_calls": MISSING_CALLS,
        **({"sumstats_fill": {"rule": SUMSTATS_FILL_RULE, "status": "pass", "variants_compared": compared}}
           if compared is not None else {}),
        "not_covered": NOT_COVERED,
        "ledger": res.ledger.to_dict(),
    }


def own_strings(entries: dict[str, dict]) -> set[str]:
    """The gate's fixed wording in the audit entries of the sums (not compared with sample IDs).

    Rule names and descriptions, :data:`NOT_COVERED`, the status words and
    each refusal reason (fixed wording around a covariate name, which is
    compared where it stands alone: the entry's ``covariates``, the block and
    the table header). Without this, numeric IDs 1..N (PLINK's convention)
    matched the ``2`` of ``n - (covariates + 2)`` and blocked every export.
    """
    own = {*BLOCK_RULES, *ROW_RULES, *RULE_DESCRIPTIONS.values(), NOT_COVERED, MISSING_CALLS, "released",
           "refused", SUMSTATS_FILL_RULE, "pass"}
    for e in entries.values():
        own.update(str(r) for r in e.get("reasons", ()))
    return own


def audit_md(entries: dict[str, dict], rules: GateRules) -> list[str]:
    """The audit page's lines for the sufficient statistics of each trait."""
    out = ["## Sufficient statistics (federated pooled fit)", "",
           "Sums over people; the counts the rules below derive from them obey min_count "
           f"({rules.min_count}), min_mac ({rules.min_mac}) and min_mac_group ({rules.min_mac_group}); "
           "what they do not cover is listed after them.", ""]
    for trait, e in entries.items():
        out += [f"### Trait {trait} ({e['trait_type']}): **{e['status'].upper()}**", "",
                (f"n = {e['n']}; " if "n" in e else "") + f"rows in: {e['rows_in']}; released: {e['rows_released']}.",
                ""]
        out += [f"- refused: {r}" for r in e["reasons"]]
        out += ["", "| rule | rows suppressed | what it checks |", "|---|---|---|"]
        out += [f"| {r['rule']} | {r['rows_suppressed']} | {r['description']} |" for r in e["rules"]]
        out += ["", f"Columns released: {', '.join(e['columns_released']) or 'none'}.",
                f"Internal columns used and stripped: {', '.join(e['columns_internal_stripped']) or 'none'}.",
                f"Other columns dropped: {', '.join(e['columns_dropped']) or 'none'}.", ""]
        if "sumstats_fill" in e:
            f = e["sumstats_fill"]
            out += [f"Rule {f['rule']}: {f['status']} (the trait's association rows, as the gate read them before "
                    f"its release rules, have the sums' n and ALT allele count at all {f['variants_compared']} "
                    "variants in both: fitted on the same filled calls; the released sumstats carry the trait's "
                    "released n and a rounded EAF).",
                    ""]
    out += [f"Missing genotype calls: {MISSING_CALLS}", "", f"Not covered: {NOT_COVERED}", ""]
    return out
