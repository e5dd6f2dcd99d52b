"""The export gate's row rules: which association rows may leave a TRE.

Every rule is configurable; the defaults and where they come from:

``min_count`` = 20 (rule ``min_count``)
    The All of Us Data and Statistics Dissemination Policy forbids
    displaying participant counts of 1 to 20. Our exact reading: a released
    count ``c`` of ``n``, ``n_cases`` or ``n_controls`` must be ``0`` or
    ``c > min_count``; ``0 < c <= min_count`` is disallowed. UK Biobank and
    other TREs commonly use 10 or 5 (set ``min_count`` accordingly). A count
    fails if its true value *or* its released (rounded) value lies in
    ``1..min_count``, so rounding can never turn a small count into a
    releasable one. A missing count in a row that has an estimate fails
    (it cannot be checked).
``round_n`` = 0 (no rounding)
    When > 0, released sample sizes are rounded to the nearest multiple of
    ``round_n`` (halves up) before the count check, in every row and in the
    metadata alike.
``release_n`` = ``"trait"`` (how sample sizes are released)
    ``"trait"``: every row carries the trait's sample size, not the
    variant's: ``n`` is the largest per-variant ``n`` among the rows that
    pass the other rules (binary traits: ``n_cases`` and ``n_controls``
    likewise, and ``n`` their sum), rounded by ``round_n``. One number per
    trait (and per case/control group) leaves nothing to difference: per-variant
    counts side by side (``2469 584 1885`` / ``2469 585 1884``) would say
    whether one left-out person is a case. ``"per_variant"``: each row's
    own counts, each rounded to a multiple of ``round_n``, which must then
    exceed ``min_count``: any two released counts then differ by 0 or by
    more than ``min_count``.
``min_mac`` = 20 (rule ``min_mac``)
    Overall minor allele count, from the ``mac`` column, or derived as
    ``2 n min(eaf, 1 - eaf)`` when the column is absent; released rows have
    ``mac >= min_mac``. 20 mirrors ``min_count`` (a MAC is a count of
    allele copies carried by few people).
``min_mac_group`` = 20 (rule ``min_mac_group``, binary traits only)
    Minor allele count among cases (``mac_cases``) and among controls
    (``mac_controls``), each ``>= min_mac_group``: a variant carried by two
    cases identifies them as cases.
``min_residual_df`` = 10 (rule ``min_residual_df``)
    Residual degrees of freedom of the fit; a near-saturated model
    reproduces individual values.
``released_mac`` (same threshold as ``min_mac``)
    The MAC an outsider recomputes from *released* values,
    ``2 n_released min(eaf_released, 1 - eaf_released)``, must also be
    ``>= min_mac`` (a relative slack of 1e-9 absorbs float rounding).

Released allele frequency (:func:`eaf_decimals`): ``effect_allele_frequency``
is rounded to ``d`` decimals, ``d`` the largest integer with
``10**d <= 2 n_low``, where ``n_low = max(1, n_released - max(min_count,
round_n))``. One unit of the last decimal then stands for at least one
allele copy at every sample size ``n' >= 10**d / 2`` (among them every
``n'`` from ``n_low`` to the released ``n``), so each such ``n'`` fits the
released frequency with some integer allele count: ``eaf * 2n`` no longer
gives the per-variant sample size back (at 17 digits it did, in almost
every row), and allele counts are known only to within about
``n_released / 10**d`` copies.
Setting ``min_mac_group`` or ``min_residual_df`` to 0 switches that rule off
(and its column is then not required).

Order: a suppressed row is counted under the *first* rule it fails, in
:data:`RULE_ORDER` (``no_estimate``, ``min_count``, ``min_mac``,
``min_mac_group``, ``min_residual_df``, ``released_mac``), so
``rows in = rows released + sum(rows suppressed)``.

Columns: only the GWAS-SSF columns of :data:`crosscohort.contract.sumstats.COLUMNS`
are released; the internal columns are used, then stripped; any other input
column is dropped and listed in the audit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

import polars as pl

from crosscohort.contract.errors import ConfigError, GateBlock
from crosscohort.contract.ledger import Ledger
from crosscohort.contract.sumstats import COLUMNS, INTERNAL_COLUMNS
from crosscohort.schemas import default as schema_default
from crosscohort.schemas import out_of_range, property_schema

__all__ = [
    "GateRules",
    "GateResult",
    "RULE_ORDER",
    "RULE_DESCRIPTIONS",
    "TRAIT_TYPES",
    "COUNT_COLUMNS",
    "MAC_RELATIVE_SLACK",
    "RELEASE_N",
    "apply_gate",
    "eaf_decimals",
    "round_eaf",
    "round_counts",
    "released_violations",
]

#: Rules in the order a suppressed row is attributed to them.
RULE_ORDER: tuple[str, ...] = (
    "no_estimate",
    "min_count",
    "min_mac",
    "min_mac_group",
    "min_residual_df",
    "released_mac",
)

RULE_DESCRIPTIONS: dict[str, str] = {
    "no_estimate": "error_code set, or beta / standard_error / p_value missing or not finite",
    "min_count": "n, n_cases, n_controls (true and released) must be 0 or > threshold",
    "min_mac": "overall minor allele count (mac, or 2 n min(eaf, 1-eaf)) >= threshold",
    "min_mac_group": "binary traits: mac_cases and mac_controls each >= threshold",
    "min_residual_df": "residual degrees of freedom of the fit >= threshold",
    "released_mac": "2 n_released min(eaf, 1-eaf) from the released values >= min_mac",
}

TRAIT_TYPES: tuple[str, ...] = ("quantitative", "binary")

#: Released sample counts, each subject to ``min_count`` and ``round_n``.
COUNT_COLUMNS: tuple[str, ...] = ("n", "n_cases", "n_controls")

#: Relative slack on MACs computed from a frequency (float, 17 digits).
MAC_RELATIVE_SLACK = 1e-9

#: How sample sizes are released: one per trait (default) or per variant, coarsened.
RELEASE_N: tuple[str, ...] = tuple(property_schema("export_gate.release_n")["enum"])


@dataclass(frozen=True)
class GateRules:
    """Thresholds of the export gate (see the module docstring for their sources).

    Defaults and valid ranges are the config schema's keys
    ``export_gate.<name>`` (:mod:`crosscohort.schemas`).
    """

    min_count: int = schema_default("export_gate.min_count")
    round_n: int = schema_default("export_gate.round_n")
    min_mac: float = float(schema_default("export_gate.min_mac"))
    min_mac_group: float = float(schema_default("export_gate.min_mac_group"))
    min_residual_df: int = schema_default("export_gate.min_residual_df")
    release_n: str = schema_default("export_gate.release_n")

    def __post_init__(self) -> None:
        for name in ("min_count", "round_n", "min_mac", "min_mac_group", "min_residual_df"):
            value = getattr(self, name)
            rule = out_of_range(f"export_gate.{name}", value)
            if rule:
                raise ConfigError(f"gate rule {name} {rule}; got {value!r}")
        if self.release_n not in RELEASE_N:
            raise ConfigError(f"gate rule release_n must be one of {RELEASE_N}; got {self.release_n!r}")
        if self.release_n == "per_variant" and self.round_n <= self.min_count:
            raise ConfigError(
                "gate rule release_n=per_variant releases each variant's counts, so they must be "
                "coarsened: round_n must exceed min_count (then two released counts differ by 0 or "
                f"by more than min_count); got round_n={self.round_n}, min_count={self.min_count}"
            )

    def threshold(self, rule: str) -> float | int | None:
        """Threshold of ``rule`` (``None`` for ``no_estimate``)."""
        return {
            "no_estimate": None,
            "min_count": self.min_count,
            "min_mac": self.min_mac,
            "min_mac_group": self.min_mac_group,
            "min_residual_df": self.min_residual_df,
            "released_mac": self.min_mac,
        }[rule]

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)

    @classmethod
    def from_options(cls, options: object) -> GateRules:
        """The rules given as command-line options (``--min-count`` ... ``--release-n``)."""
        return cls(**{f.name: getattr(options, f.name) for f in fields(cls)})

    @property
    def n_margin(self) -> int:
        """Sample sizes within this of the released ``n`` must all fit the released EAF."""
        return max(self.min_count, self.round_n)


@dataclass(frozen=True)
class GateResult:
    """One trait through the gate: the releasable table and what was withheld."""

    released: pl.DataFrame
    ledger: Ledger
    trait_type: str
    columns_released: tuple[str, ...]
    columns_internal_stripped: tuple[str, ...]
    columns_dropped: tuple[str, ...]

    @property
    def suppressed(self) -> dict[str, int]:
        return dict(self.ledger.removed)


def round_counts(df: pl.DataFrame, *, round_n: int) -> pl.DataFrame:
    """``df`` with its count columns rounded to the nearest multiple of ``round_n`` (halves up)."""
    if round_n <= 0:
        return df
    cols = [c for c in COUNT_COLUMNS if c in df.columns]
    return df.with_columns(
        [((pl.col(c).cast(pl.Float64) / round_n + 0.5).floor() * round_n).cast(pl.Int64).alias(c)
         for c in cols]
    )


def eaf_decimals(n_released: pl.Expr, *, rules: GateRules) -> pl.Expr:
    """Decimals of the released EAF for a row of released sample size ``n_released``.

    The largest ``d`` with ``10**d <= 2 n_low``, ``n_low = max(1, n_released -
    max(min_count, round_n))`` (see the module docstring); null when
    ``n_released`` is null.
    """
    n_low = (n_released.cast(pl.Float64) - rules.n_margin).clip(lower_bound=1.0)
    # The 1e-9 guards floor() against log10(1000) = 2.9999999999999996.
    return ((2.0 * n_low).log10() + 1e-9).floor().cast(pl.Int32)


#: The most decimals a released EAF can need (n up to 5 * 10**17).
_MAX_EAF_DECIMALS = 18


def round_eaf(eaf: pl.Expr, decimals: pl.Expr, *, values: list[int] | None = None) -> pl.Expr:
    """``eaf`` rounded (halves away from zero) to ``decimals`` places, per row.

    ``values``: the decimal counts that occur (default: every one from 0 to
    18); each costs one pass over the column.

    Built from :meth:`polars.Expr.round` per decimal count, which returns the
    float nearest the decimal (``0.83``); scaling and dividing can print
    ``0.8300000000000001`` (polars multiplies by the reciprocal of a
    constant divisor), 17 digits out again.
    """
    eaf = eaf.cast(pl.Float64)
    out = pl.lit(None, dtype=pl.Float64)
    for d in sorted(range(_MAX_EAF_DECIMALS + 1) if values is None else values, reverse=True):
        out = pl.when(decimals == d).then(eaf.round(d, mode="half_away_from_zero")).otherwise(out)
    return out


def _round_value(c: int | None, round_n: int) -> int | None:
    """One count rounded as :func:`round_counts` rounds a column (halves up)."""
    if c is None or round_n <= 0:
        return None if c is None else int(c)
    return (2 * int(c) + round_n) // (2 * round_n) * round_n


def _count_fails(col: pl.Expr, min_count: int) -> pl.Expr:
    # Missing counts fail too: a row with an estimate but no count cannot be checked.
    return col.is_null() | ((col > 0) & (col <= min_count))


def _mac_from_freq(n: pl.Expr, eaf: pl.Expr) -> pl.Expr:
    eaf = eaf.cast(pl.Float64)
    return 2.0 * n.cast(pl.Float64) * pl.min_horizontal(eaf, 1.0 - eaf)


def _below(value: pl.Expr, threshold: float, *, slack: bool) -> pl.Expr:
    limit = threshold * (1.0 - MAC_RELATIVE_SLACK) if slack else threshold
    # NaN or null compares as failing: the gate is fail-closed.
    return value.is_null() | value.is_nan() | (value < limit)


def _require(df: pl.DataFrame, cols: list[str], *, source: str, why: str, trait: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise GateBlock(
            f"{source}: missing column(s) {missing}, needed by {why}; present: {df.columns}",
            # Not the path, not the input's other column names: those stay in the TRE.
            released=f"input of trait {trait}: missing column(s) {missing}, needed by {why}",
        )


def apply_gate(
    df: pl.DataFrame,
    *,
    trait_type: str,
    rules: GateRules,
    cohort: str,
    trait: str,
    source: str = "sumstats",
    caps: Mapping[str, int] | None = None,
) -> GateResult:
    """Rows and columns of one association table that may leave the TRE.

    Parameters
    ----------
    df
        Association results as read by :func:`crosscohort.contract.sumstats.read_sumstats`:
        GWAS-SSF columns plus the internal columns.
    trait_type
        ``"quantitative"`` or ``"binary"``.
    rules
        Thresholds.
    cohort, trait
        Labels for the ledger.
    source
        File name used in error messages.
    caps
        ``release_n="trait"`` only: upper bounds of the released ``n``,
        ``n_cases``, ``n_controls`` (from
        :func:`crosscohort.tre.gate.bundle.coarsen_between_traits`, so that two
        traits' released sizes differ by 0 or by more than ``min_count``).

    Returns
    -------
    GateResult
        The released table (allow-listed columns, rounded counts), and a
        :class:`~crosscohort.contract.ledger.Ledger` (stage ``export_gate``) counting
        suppressed rows per rule in :data:`RULE_ORDER`.

    Raises
    ------
    ConfigError
        Unknown ``trait_type``, or a quantitative trait whose file has case
        columns.
    GateError
        A column a rule needs is missing (the gate fails closed).
    """
    if trait_type not in TRAIT_TYPES:
        raise ConfigError(f"trait {trait!r}: trait type must be one of {TRAIT_TYPES}; got {trait_type!r}")
    binary = trait_type == "binary"
    if not binary:
        case_cols = [c for c in ("n_cases", "n_controls", "mac_cases", "mac_controls") if c in df.columns]
        if case_cols:
            raise ConfigError(
                f"{source}: trait {trait!r} is declared quantitative but has case/control column(s) "
                f"{case_cols}; declare it with --trait-type {trait}=binary"
            )
    _require(df, ["n"], source=source, why="rule min_count and released_mac (per-variant sample size)",
             trait=trait)
    if binary:
        _require(df, ["n_cases", "n_controls"], source=source, why="rule min_count for a binary trait",
                 trait=trait)
        if rules.min_mac_group > 0:
            _require(df, ["mac_cases", "mac_controls"], source=source, why="rule min_mac_group", trait=trait)
    if rules.min_residual_df > 0:
        _require(df, ["residual_df"], source=source, why="rule min_residual_df", trait=trait)
    _require(df, ["effect_allele_frequency"], source=source, why="rule released_mac", trait=trait)

    count_cols = [c for c in COUNT_COLUMNS if c in df.columns]

    fails: dict[str, pl.Expr] = {}
    est = [pl.col(c).cast(pl.Float64) for c in ("beta", "standard_error", "p_value")]
    no_est = pl.any_horizontal([e.is_null() | ~e.is_finite() for e in est])
    if "error_code" in df.columns:
        code = pl.col("error_code").cast(pl.String).str.strip_chars()
        no_est = no_est | (code.is_not_null() & (code != ""))
    fails["no_estimate"] = no_est
    fails["min_count"] = pl.any_horizontal([_count_fails(pl.col(c), rules.min_count) for c in count_cols])
    if "mac" in df.columns:
        fails["min_mac"] = _below(pl.col("mac").cast(pl.Float64), rules.min_mac, slack=False)
    else:
        fails["min_mac"] = _below(
            _mac_from_freq(pl.col("n"), pl.col("effect_allele_frequency")), rules.min_mac, slack=True
        )
    if binary and rules.min_mac_group > 0:
        fails["min_mac_group"] = _below(
            pl.col("mac_cases").cast(pl.Float64), rules.min_mac_group, slack=False
        ) | _below(pl.col("mac_controls").cast(pl.Float64), rules.min_mac_group, slack=False)
    else:
        fails["min_mac_group"] = pl.lit(False)
    if rules.min_residual_df > 0:
        fails["min_residual_df"] = _below(
            pl.col("residual_df").cast(pl.Float64), rules.min_residual_df, slack=False
        )
    else:
        fails["min_residual_df"] = pl.lit(False)
    row_rules = RULE_ORDER[:-1]
    work = df.with_columns([fails[r].fill_null(True).alias(f"__fails_{r}") for r in row_rules])

    # Released sample sizes: one per trait from the rows the row rules keep, or each row's, rounded.
    if rules.release_n == "trait":
        # Maxima over the passing rows, without a filtered copy of the table.
        passes = ~pl.any_horizontal([pl.col(f"__fails_{r}") for r in row_rules])
        top = work.select([pl.col(c).filter(passes).max() for c in count_cols]).row(0, named=True)
        if binary and top["n_cases"] is not None and top["n_controls"] is not None:
            top["n"] = int(top["n_cases"]) + int(top["n_controls"])
        released_n = {c: _round_value(top[c], rules.round_n) for c in count_cols}
        if caps:
            released_n = {c: v if v is None or caps.get(c) is None else min(v, int(caps[c]))
                          for c, v in released_n.items()}
        work = work.with_columns([pl.lit(released_n[c], dtype=pl.Int64).alias(f"__released_{c}")
                                  for c in count_cols])
    else:
        rounded = round_counts(df.select(count_cols), round_n=rules.round_n)
        work = work.with_columns([rounded[c].alias(f"__released_{c}") for c in count_cols])
        del rounded
    # A released count of 1..min_count fails; a missing one means its row already failed
    # (per-variant) or that no row passes the row rules (trait): no row is released either way.
    released_small = pl.any_horizontal(
        [(pl.col(f"__released_{c}") > 0) & (pl.col(f"__released_{c}") <= rules.min_count)
         for c in count_cols]
    )
    work = work.with_columns(
        (pl.col("__fails_min_count") | released_small.fill_null(False)).alias("__fails_min_count"),
        eaf_decimals(pl.col("__released_n"), rules=rules).alias("__eaf_decimals"),
    )
    present = [int(d) for d in work["__eaf_decimals"].unique().drop_nulls()]
    work = work.with_columns(
        round_eaf(pl.col("effect_allele_frequency"), pl.col("__eaf_decimals"), values=present)
        .alias("__released_eaf")
    )
    work = work.with_columns(
        _below(_mac_from_freq(pl.col("__released_n"), pl.col("__released_eaf")), rules.min_mac, slack=True)
        .fill_null(True)
        .alias("__fails_released_mac")
    )
    # First failing rule wins, so each suppressed row is counted exactly once.
    reason = pl.lit(None, dtype=pl.String)
    for rule in reversed(RULE_ORDER):
        reason = pl.when(pl.col(f"__fails_{rule}")).then(pl.lit(rule)).otherwise(reason)
    work = work.with_columns(reason.alias("__reason"))

    ledger = Ledger(stage="export_gate", cohort=cohort, trait=trait, unit="variants", n_in=work.height)
    counts = dict(work.group_by("__reason").len().iter_rows())
    for rule in RULE_ORDER:
        ledger.remove(rule, int(counts.get(rule, 0)))

    released_cols = tuple(c for c in COLUMNS if c in df.columns)
    internal = tuple(c for c in INTERNAL_COLUMNS if c in df.columns)
    dropped = tuple(c for c in df.columns if c not in COLUMNS and c not in INTERNAL_COLUMNS)
    kept = (
        work.filter(pl.col("__reason").is_null())
        .with_columns([pl.col(f"__released_{c}").alias(c) for c in count_cols]
                      + [pl.col("__released_eaf").alias("effect_allele_frequency")])
        .select(list(released_cols))
    )
    ledger.n_kept = kept.height
    ledger.check()
    return GateResult(
        released=kept,
        ledger=ledger,
        trait_type=trait_type,
        columns_released=released_cols,
        columns_internal_stripped=internal,
        columns_dropped=dropped,
    )


def released_violations(df: pl.DataFrame, *, rules: GateRules) -> dict[str, int]:
    """Rows of a *released* table that break a rule checkable from released values alone.

    Used to re-check the gate's own output after it is written, and by
    :mod:`crosscohort.central.verify`. Returns ``{rule: rows}`` for rules with at
    least one violating row, plus ``columns_outside_allow_list`` when the
    table has a column that is not a GWAS-SSF column and
    ``per_variant_counts`` (the number of count columns) when
    ``release_n="trait"`` but a count column holds more than one value.
    """
    out: dict[str, int] = {}
    extra = [c for c in df.columns if c not in COLUMNS]
    if extra:
        out["columns_outside_allow_list"] = len(extra)
    checks: dict[str, pl.Expr] = {}
    est = [pl.col(c).cast(pl.Float64) for c in ("beta", "standard_error", "p_value") if c in df.columns]
    if est:
        checks["no_estimate"] = pl.any_horizontal([e.is_null() | ~e.is_finite() for e in est])
    counts = [c for c in COUNT_COLUMNS if c in df.columns]
    if counts:
        checks["min_count"] = pl.any_horizontal([_count_fails(pl.col(c), rules.min_count) for c in counts])
    if "n" in df.columns and "effect_allele_frequency" in df.columns:
        checks["released_mac"] = _below(
            _mac_from_freq(pl.col("n"), pl.col("effect_allele_frequency")), rules.min_mac, slack=True
        )
    if "n" in df.columns and "effect_allele_frequency" in df.columns:
        # The released EAF carries no more decimals than eaf_decimals allows for its row.
        eaf = pl.col("effect_allele_frequency").cast(pl.Float64)
        df = df.with_columns(eaf_decimals(pl.col("n"), rules=rules).alias("__eaf_decimals"))
        present = [int(d) for d in df["__eaf_decimals"].unique().drop_nulls()]
        checks["eaf_precision"] = (
            eaf - round_eaf(eaf, pl.col("__eaf_decimals"), values=present)
        ).abs() > 1e-12
    if counts and df.height:
        if rules.release_n == "trait":
            # One count per trait (and group): nothing to difference between rows.
            varying = [c for c in counts if df[c].n_unique() > 1]
            if varying:
                out["per_variant_counts"] = len(varying)
        elif rules.round_n > 0:
            checks["counts_not_coarsened"] = pl.any_horizontal(
                [(pl.col(c) % rules.round_n) != 0 for c in counts]
            )
    for rule, expr in checks.items():
        bad = int(df.select(expr.fill_null(True).sum()).item())
        if bad:
            out[rule] = bad
    return out
