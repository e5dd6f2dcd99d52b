"""The federated pooled fit against the individual-level fit of the same model (issue 24).

``crosscohort pool-fit`` solves, from the sums the opted-in cohorts
released, the pooled regression that an individual-level fit of their
stacked samples would give: cohort intercepts, shared covariate effects
(quantitative traits), each cohort's own PCs as cohort-specific covariates.
The demo, where pooling individuals is allowed, also runs that fit on the
individuals (``pool --fill-missing`` + ``pool --specific`` + ``assoc``). This
module measures how far the two tables are apart, variant by variant:
for a quantitative trait the claim is equality to rounding (1e-10
relative); for a binary trait the federated fit is a one-step estimate and
the difference is its measured error against the logistic fit.

Why the scales: β is compared relative to max(|β|, SE) of the
individual-level fit (a β near zero has no useful relative error; SE is the
scale the estimate is known on), SE and p relative to themselves; a p that
underflows in either arm is compared through its ``neg_log_10_p_value``
(p_f / p_i = 10^(nlp_i - nlp_f)).

Every variant of either table is counted once, in one class: compared
(same variant, both arms estimable, same n), different samples (the
federated fit summed fewer people, e.g. a cohort's gate withheld the
variant), not estimable in an arm, federated only, individual only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from crosscohort.contract.errors import InputError
from crosscohort.runtime.atomic import write_json

__all__ = ["REQUIRED", "TOLERANCE", "SameModelComparison", "compare_same_model", "write_same_model"]

#: Columns each table must have.
REQUIRED = ("chromosome", "base_pair_location", "effect_allele", "other_allele", "beta", "standard_error",
            "p_value", "n")
#: The issue's bar for a quantitative trait: federated = individual-level to this relative difference.
TOLERANCE = 1e-10
#: Below this a p is compared through -log10 p (a double's smallest normal number).
_P_FLOOR = float(np.finfo(float).tiny)


@dataclass(frozen=True)
class SameModelComparison:
    """How far the federated pooled fit is from the individual-level fit of the same model.

    The ``max_rel_*`` and ``median_rel_*`` are over the compared variants
    (NaN when none): β as |β_f − β_i| / max(|β_i|, SE_i), SE as
    |SE_f − SE_i| / SE_i, p as |p_f − p_i| / p_i (i = individual-level).
    ``n_union = n_compared + n_different_samples + n_not_estimable +
    n_federated_only + n_individual_only``. ``tolerance`` is
    :data:`TOLERANCE` for a quantitative trait (the exactness claim) and None
    for a binary one (the one-step estimator's error is measured, not bounded).
    """

    trait_type: str
    n_federated: int
    n_individual: int
    n_union: int
    n_compared: int
    n_different_samples: int
    n_not_estimable: int
    n_federated_only: int
    n_individual_only: int
    n_alleles_swapped: int
    max_rel_beta: float
    max_rel_se: float
    max_rel_p: float
    median_rel_beta: float
    median_rel_se: float
    median_rel_p: float
    worst_beta_variant: str | None
    tolerance: float | None
    within_tolerance: bool | None

    def to_dict(self) -> dict:
        """JSON-ready (NaN as null)."""
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()}


_ARM_NAMES = {"f": "federated", "i": "individual"}


def _keyed(df: pl.DataFrame, arm: str) -> pl.DataFrame:
    """The arm's rows keyed on chromosome, position and the unordered allele pair (columns suffixed ``_arm``)."""
    ea, oa = pl.col("effect_allele").str.to_uppercase(), pl.col("other_allele").str.to_uppercase()
    out = df.select(
        pl.col("chromosome").cast(pl.Int64),
        pl.col("base_pair_location").cast(pl.Int64),
        pl.min_horizontal(ea, oa).alias("_a1"),
        pl.max_horizontal(ea, oa).alias("_a2"),
        ea.alias(f"ea_{arm}"),
        *(pl.col(c).cast(pl.Float64).alias(f"{c}_{arm}") for c in ("beta", "standard_error", "p_value")),
        (pl.col("neg_log_10_p_value") if "neg_log_10_p_value" in df.columns else pl.lit(None))
        .cast(pl.Float64).alias(f"nlp_{arm}"),
        pl.col("n").cast(pl.Int64).alias(f"n_{arm}"),
    )
    dup = out.group_by("chromosome", "base_pair_location", "_a1", "_a2").len().filter(pl.col("len") > 1)
    if dup.height:
        r = dup.row(0, named=True)
        raise InputError(f"{_ARM_NAMES[arm]} table: variant {r['chromosome']}:{r['base_pair_location']}:{r['_a1']}:{r['_a2']} "
                         f"appears {r['len']} times; each variant must have one row to be compared")
    return out


def _median(x: np.ndarray) -> float:
    return float(np.median(x)) if x.size else float("nan")


def _max(x: np.ndarray) -> float:
    return float(np.max(x)) if x.size else float("nan")


def compare_same_model(federated: pl.DataFrame, individual: pl.DataFrame, *,
                       trait_type: str) -> SameModelComparison:
    """Per-variant relative differences of β, SE and p between the federated and the individual-level fit.

    Parameters
    ----------
    federated
        ``crosscohort pool-fit``'s table (GWAS-SSF, with ``n``).
    individual
        ``crosscohort assoc``'s table of the same model on the stacked individuals.
    trait_type
        ``quantitative`` (exactness claimed: :data:`TOLERANCE`) or ``binary``.

    Returns
    -------
    SameModelComparison

    Raises
    ------
    InputError
        An unknown trait type, a missing column, or a variant twice in a table.
    """
    if trait_type not in ("quantitative", "binary"):
        raise InputError(f"--trait-type must be quantitative or binary; got {trait_type!r}")
    for arm, df in (("federated", federated), ("individual", individual)):
        missing = [c for c in REQUIRED if c not in df.columns]
        if missing:
            raise InputError(f"{arm} table: column(s) {missing} missing; the comparison needs {list(REQUIRED)}")
    key = ["chromosome", "base_pair_location", "_a1", "_a2"]
    j = _keyed(federated, "f").join(_keyed(individual, "i"), on=key, how="full", coalesce=True)
    in_f, in_i = j.get_column("ea_f").is_not_null().to_numpy(), j.get_column("ea_i").is_not_null().to_numpy()
    both = in_f & in_i

    def col(name: str) -> np.ndarray:
        return j.get_column(name).to_numpy().astype(float)

    swapped = both & (j.get_column("ea_f") != j.get_column("ea_i")).fill_null(False).to_numpy()
    bf, sf, pf, nlf = col("beta_f"), col("standard_error_f"), col("p_value_f"), col("nlp_f")
    bi, si, pi, nli = col("beta_i"), col("standard_error_i"), col("p_value_i"), col("nlp_i")
    bi = np.where(swapped, -bi, bi)
    estimable = np.isfinite(bf) & np.isfinite(sf) & np.isfinite(pf) & np.isfinite(bi) & np.isfinite(si) \
        & np.isfinite(pi) & (si > 0)
    same_n = (j.get_column("n_f") == j.get_column("n_i")).fill_null(False).to_numpy()
    not_estimable = both & ~estimable
    different = both & estimable & ~same_n
    compared = both & estimable & same_n
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_beta = np.abs(bf - bi) / np.maximum(np.abs(bi), si)
        rel_se = np.abs(sf - si) / si
        tiny = (pi < _P_FLOOR) | (pf < _P_FLOOR)
        rel_p = np.where(tiny, np.abs(np.expm1(np.log(10.0) * (nli - nlf))), np.abs(pf - pi) / pi)
    if np.any(compared & tiny & ~(np.isfinite(nli) & np.isfinite(nlf))):
        raise InputError("a p underflows to 0 in one arm and the tables carry no neg_log_10_p_value to compare it by")
    rb, rs, rp = rel_beta[compared], rel_se[compared], rel_p[compared]
    worst = None
    if rb.size:
        r = j.filter(pl.Series(compared)).row(int(np.argmax(rb)), named=True)
        worst = f"{r['chromosome']}:{r['base_pair_location']}:{r['_a1']}:{r['_a2']}"
    maxima = (_max(rb), _max(rs), _max(rp))
    tol = TOLERANCE if trait_type == "quantitative" else None
    within = None if tol is None or not rb.size else bool(max(maxima) <= tol)
    return SameModelComparison(
        trait_type=trait_type, n_federated=federated.height, n_individual=individual.height, n_union=j.height,
        n_compared=int(compared.sum()), n_different_samples=int(different.sum()),
        n_not_estimable=int(not_estimable.sum()), n_federated_only=int((in_f & ~in_i).sum()),
        n_individual_only=int((in_i & ~in_f).sum()), n_alleles_swapped=int(swapped.sum()),
        max_rel_beta=maxima[0], max_rel_se=maxima[1], max_rel_p=maxima[2],
        median_rel_beta=_median(rb), median_rel_se=_median(rs), median_rel_p=_median(rp),
        worst_beta_variant=worst, tolerance=tol, within_tolerance=within,
    )


def write_same_model(result: SameModelComparison, path: str | Path, **context: object) -> Path:
    """Write the comparison's JSON (``context``, e.g. the two files compared, first) atomically."""
    return write_json(Path(path), {**context, **result.to_dict()})
