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
    When > 0, ``n``, ``n_cases`` and ``n_controls`` are rounded to the
    nearest multiple of ``round_n`` (halves up) before the count check,
    in every row and in the metadata alike.
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
    ``2 n_released min(eaf, 1 - eaf)``, must also be ``>= min_mac`` (a
    relative slack of 1e-9 absorbs float rounding of the 17-digit
    frequency); ``eaf * 2n`` would otherwise reveal a count the gate hides.

Setting ``min_mac_group`` or ``min_residual_df`` to 0 switches that rule off
(and its column is then not required).

Order: a suppressed row is counted under the *first* rule it fails, in
:data:`RULE_ORDER` (``no_estimate``, ``min_count``, ``min_mac``,
``min_mac_group``, ``min_residual_df``, ``released_mac``), so
``rows in = rows released + sum(rows suppressed)``.

Columns: only the GWAS-SSF columns of :data:`crosscohort.sumstats.COLUMNS`
are released; the internal columns are used, then stripped; any other input
column is dropped and listed in the audit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import polars as pl

from crosscohort.errors import ConfigError, GateError
from crosscohort.ledger import Ledger
from crosscohort.sumstats import COLUMNS, INTERNAL_COLUMNS

__all__ = [
    "GateRules",
    "GateResult",
    "RULE_ORDER",
    "RULE_DESCRIPTIONS",
    "TRAIT_TYPES",
    "COUNT_COLUMNS",
    "MAC_RELATIVE_SLACK",
    "apply_gate",
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


@dataclass(frozen=True)
class GateRules:
    """Thresholds of the export gate (see the module docstring for their sources)."""

    min_count: int = 20
    round_n: int = 0
    min_mac: float = 20.0
    min_mac_group: float = 20.0
    min_residual_df: int = 10

    def __post_init__(self) -> None:
        for name in ("min_count", "round_n", "min_mac", "min_mac_group", "min_residual_df"):
            value = getattr(self, name)
            if not (value >= 0):
                raise ConfigError(f"gate rule {name} must be >= 0; got {value!r}")

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

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


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


def _require(df: pl.DataFrame, cols: list[str], *, source: str, why: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise GateError(f"{source}: missing column(s) {missing}, needed by {why}; present: {df.columns}")


def apply_gate(
    df: pl.DataFrame,
    *,
    trait_type: str,
    rules: GateRules,
    cohort: str,
    trait: str,
    source: str = "sumstats",
) -> GateResult:
    """Rows and columns of one association table that may leave the TRE.

    Parameters
    ----------
    df
        Association results as read by :func:`crosscohort.sumstats.read_sumstats`:
        GWAS-SSF columns plus the internal columns.
    trait_type
        ``"quantitative"`` or ``"binary"``.
    rules
        Thresholds.
    cohort, trait
        Labels for the ledger.
    source
        File name used in error messages.

    Returns
    -------
    GateResult
        The released table (allow-listed columns, rounded counts), and a
        :class:`~crosscohort.ledger.Ledger` (stage ``export_gate``) counting
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
    _require(df, ["n"], source=source, why="rule min_count and released_mac (per-variant sample size)")
    if binary:
        _require(df, ["n_cases", "n_controls"], source=source, why="rule min_count for a binary trait")
        if rules.min_mac_group > 0:
            _require(df, ["mac_cases", "mac_controls"], source=source, why="rule min_mac_group")
    if rules.min_residual_df > 0:
        _require(df, ["residual_df"], source=source, why="rule min_residual_df")

    rounded = round_counts(df, round_n=rules.round_n)
    count_cols = [c for c in COUNT_COLUMNS if c in df.columns]

    fails: dict[str, pl.Expr] = {}
    est = [pl.col(c).cast(pl.Float64) for c in ("beta", "standard_error", "p_value")]
    no_est = pl.any_horizontal([e.is_null() | ~e.is_finite() for e in est])
    if "error_code" in df.columns:
        code = pl.col("error_code").cast(pl.String).str.strip_chars()
        no_est = no_est | (code.is_not_null() & (code != ""))
    fails["no_estimate"] = no_est
    true_counts = [_count_fails(pl.col(c), rules.min_count) for c in count_cols]
    released_counts = [_count_fails(pl.col(f"__released_{c}"), rules.min_count) for c in count_cols]
    fails["min_count"] = pl.any_horizontal(true_counts + released_counts)
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
    fails["released_mac"] = _below(
        _mac_from_freq(pl.col("__released_n"), pl.col("effect_allele_frequency")),
        rules.min_mac,
        slack=True,
    )

    work = df.with_columns([rounded[c].alias(f"__released_{c}") for c in count_cols])
    # First failing rule wins, so each suppressed row is counted exactly once.
    reason = pl.lit(None, dtype=pl.String)
    for rule in reversed(RULE_ORDER):
        reason = pl.when(fails[rule].fill_null(True)).then(pl.lit(rule)).otherwise(reason)
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
        .with_columns([pl.col(f"__released_{c}").alias(c) for c in count_cols])
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
    :mod:`crosscohort.verify`. Returns ``{rule: rows}`` for rules with at
    least one violating row, plus ``columns_outside_allow_list`` when the
    table has a column that is not a GWAS-SSF column.
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
    for rule, expr in checks.items():
        bad = int(df.select(expr.fill_null(True).sum()).item())
        if bad:
            out[rule] = bad
    return out
