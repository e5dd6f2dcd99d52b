"""Per-cohort association: which samples enter each trait's fit, and the chunked scan.

The engine joins phenotypes and covariates onto the genotype samples, builds
one design per trait (its own complete-case samples, standardised covariates
plus intercept), then streams variant chunks through the kernels in
:mod:`crosscohort.tre.association._kernels`. Memory is bounded by the chunk size,
not by the number of variants. Every requested variant gets a row; a variant
that cannot be fitted carries NA statistics and an ``error_code``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import polars as pl

from crosscohort.contract.errors import InputError
from crosscohort.contract.ledger import Ledger
from crosscohort.contract.stats import neg_log10_p_from_z, p_from_z
from crosscohort.contract.sumstats import float_column, genotype_chrom_code, variant_id
from crosscohort.runtime.jit import SMALL_BINARY_JOB_CELLS, SMALL_JOB_CELLS, small_job
from crosscohort.runtime.progress import Progress
from crosscohort.tre.association import _firth as F
from crosscohort.tre.association import _kernels as K
from crosscohort.tre.genotypes import Genotypes, read_id_list
from crosscohort.tre.phenotypes import (
    BLOM_OFFSET,
    PhenoTransform,
    StudyTables,
    TraitType,
    case_control_outcome,
    detect_trait_type,
    expand_names,
    inverse_normal_transform,
    read_sample_list,
    read_study_tables,
    require_numeric,
)

__all__ = [
    "ERROR_CODES",
    "TraitDesign",
    "AssocResult",
    "part_slice",
    "StudyInputs",
    "read_study",
    "sample_selection",
    "select_variants",
    "variant_ledger",
    "build_designs",
    "X_LABELS",
    "chrx_designs",
    "read_step",
    "scan",
    "run_assoc",
    "MISSING_MODES",
]

#: ``crosscohort assoc --missing``: how a missing genotype call enters a variant's fit.
MISSING_MODES: dict[str, str] = {
    "drop": "a sample with a missing call is left out of that variant's fit (plink2 --glm)",
    "fill": "a missing call is filled with its variant's hard call of the mean over the --keep samples, "
            "as crosscohort sufficient fills it (the sumstats then describe the genotypes the sums do)",
}

#: Every error code a result row may carry, with its meaning.
ERROR_CODES: dict[str, str] = {
    K.CONST_ALLELE: "the dosage takes one value among the variant's analysed samples (monomorphic)",
    K.TOO_FEW_SAMPLES: "no residual degree of freedom: observed samples <= covariates + 2",
    K.VIF_TOO_HIGH: "the dosage is (almost) a linear function of the covariates (VIF above --vif)",
    K.SINGULAR_COVARIATES: "the covariates are singular among the samples with an observed call",
    K.ZERO_RESIDUAL_VARIANCE: "the model reproduces the trait exactly; no standard error",
    K.LOGISTIC_CONVERGE_FAIL: "logistic Newton-Raphson did not converge (e.g. complete separation); "
                              "with Firth fallback off (--no-firth) only",
    F.FIRTH_CONVERGE_FAIL: "neither the logistic nor the Firth-penalised fit converged",
}

#: Covariate correlation-matrix eigenvalue below which covariates are called collinear.
_COLLINEAR_EIGENVALUE = 1e-8

#: Largest samples x variants float64 array the scan allocates per chunk (bytes). glibc's
#: malloc serves blocks below its mmap threshold (which it raises up to 32 MiB) from a heap
#: it reuses; a bigger block gets fresh pages from the kernel on every chunk, and their
#: faults and zeroing cost more than decoding and centring the dosages (figures in
#: benchmarks/README.md, "Chunks capped at 16 MiB"). Smaller chunks also lower peak memory.
_CHUNK_BYTES = 16 * 2**20
#: Fewest variants a chunk holds whatever the sample count (per-chunk overhead).
_MIN_CHUNK = 16


@dataclass(frozen=True)
class TraitDesign:
    """One trait's analysis: its samples, outcome and covariate design.

    Attributes
    ----------
    rows
        Increasing indices of the analysed samples among the genotype samples.
    y
        Outcome of those samples (0/1 for binary traits).
    design
        (n, k) intercept followed by the standardised covariates.
    ledger
        Samples in (genotyped) = used + removed per reason.
    """

    name: str
    trait_type: TraitType
    rows: np.ndarray
    y: np.ndarray
    design: np.ndarray
    covariate_names: tuple[str, ...]
    ledger: Ledger

    @property
    def n(self) -> int:
        return int(self.rows.size)

    @property
    def n_cases(self) -> int | None:
        return int(self.y.sum()) if self.trait_type == "binary" else None

    @property
    def n_controls(self) -> int | None:
        return int(self.n - self.y.sum()) if self.trait_type == "binary" else None


@dataclass(frozen=True)
class AssocResult:
    """Result tables (one per trait, rows in variant order) and the ledgers of the run."""

    tables: dict[str, pl.DataFrame]
    designs: tuple[TraitDesign, ...]
    ledgers: tuple[Ledger, ...] = field(default_factory=tuple)


# ------------------------------------------------------------------ samples and designs


def _aligned(samples: pl.DataFrame, table: pl.DataFrame, *, source: str) -> tuple[np.ndarray, pl.DataFrame]:
    """Rows of ``table`` in genotype-sample order; returns (present mask, aligned table).

    A table without FIDs (``#IID`` header) matches on IID alone, which needs
    IIDs unique among the genotype samples.
    """
    by_iid = table.get_column("fid").null_count() == table.height
    key = ["iid"] if by_iid else ["fid", "iid"]
    if by_iid and samples.get_column("iid").n_unique() != samples.height:
        raise InputError(
            f"{source}: has IIDs only (#IID header) but IIDs repeat across families in the genotype "
            "samples; add the FID column"
        )
    right = table.drop("fid") if by_iid else table
    joined = (
        samples.select("fid", "iid")
        .with_row_index("_row")
        .join(right.with_columns(pl.lit(True).alias("_present")), on=key, how="left")
        .sort("_row")
    )
    present = joined.get_column("_present").fill_null(False).to_numpy()
    return present, joined


def _collinear_sets(z: np.ndarray, names: Sequence[str]) -> list[str] | None:
    """Names of covariates taking part in an (almost) exact linear dependence, else None."""
    if z.shape[1] < 2:
        return None
    corr = (z.T @ z) / z.shape[0]
    vals, vecs = np.linalg.eigh(corr)
    small = vals < _COLLINEAR_EIGENVALUE
    if not small.any():
        return None
    # Loadings on the null direction(s); tiny ones are rounding, not participation.
    involved = np.any(np.abs(vecs[:, small]) > 1e-3, axis=1)
    return [names[j] for j in np.flatnonzero(involved)]


def build_designs(
    samples: pl.DataFrame,
    pheno: pl.DataFrame,
    covars: Sequence[pl.DataFrame] = (),
    *,
    traits: Sequence[str] | None = None,
    covariate_names: Sequence[str] | None = None,
    keep: pl.DataFrame | None = None,
    trait_types: Mapping[str, TraitType] | None = None,
    cohort: str = "cohort",
    pheno_source: str = "phenotype file",
    covar_sources: Sequence[str] = (),
    pheno_transform: PhenoTransform | None = None,
    int_offset: float = BLOM_OFFSET,
    log: TextIO | None = None,
) -> list[TraitDesign]:
    """One analysis design per trait: the complete-case samples, outcome and covariates.

    Parameters
    ----------
    samples
        Genotype samples (``fid``, ``iid``; ``source`` for the fileset when stacked).
    pheno
        Phenotype table from :func:`crosscohort.tre.phenotypes.read_table`.
    covars
        Covariate tables; joined on FID+IID. A sample absent from one has missing covariates.
    traits
        Phenotype columns to analyse (default all).
    covariate_names
        Covariate columns to use (default all columns of all covariate tables).
    keep
        Samples to restrict to (``fid``, ``iid``; ``fid`` null to match on IID).
    trait_types
        Declared trait types overriding detection.
    pheno_transform
        ``"int"``: replace each quantitative trait by its rank-based
        inverse-normal transform over the trait's analysed samples (after
        sample selection; see :func:`crosscohort.tre.phenotypes.inverse_normal_transform`).
        Binary traits are never transformed.
    int_offset
        The transform's offset c in ``(rank - c) / (n - 2c + 1)``: 3/8 (Blom,
        default), 1/2 (plink2 ``--pheno-quantile-normalize``).

    Returns
    -------
    list of TraitDesign
        In the order of ``traits``.

    Raises
    ------
    InputError
        Unknown trait or covariate name, no overlapping samples (with the
        counts), constant or collinear covariates among a trait's samples
        (named), fewer samples than parameters, a binary trait without cases
        or controls, a logistic null model that does not converge.
    """
    log = log if log is not None else sys.stderr
    trait_types = dict(trait_types or {})
    columns = [c for c in pheno.columns if c not in ("fid", "iid")]
    all_traits = [c for c in columns if pheno.schema[c] != pl.String]
    if traits:
        traits = expand_names(traits, columns, option="--pheno-name", sources=pheno_source)
        for t in traits:
            require_numeric(pheno, t, source=pheno_source, kind="phenotype", role=f"trait {t!r} values")
    else:
        traits = all_traits
        text = [c for c in columns if c not in all_traits]
        if text:
            print(f"assoc: {pheno_source}: text column(s) {text} are not traits (not numbers); skipped",
                  file=log)
        if not traits:
            raise InputError(f"{pheno_source}: no numeric phenotype column; columns are {columns}")
    bad_types = [t for t in trait_types if t not in traits]
    if bad_types:
        raise InputError(f"--trait-type names trait(s) {bad_types} that are not analysed; traits are {traits}")

    if pheno_transform is not None and not 0.0 <= int_offset <= 0.5:
        raise InputError(f"--int-offset must be in [0, 0.5]; got {int_offset}")
    n_geno = samples.height
    present_p, pheno_al = _aligned(samples, pheno, source=pheno_source)

    # Covariates: every file aligned to the genotype samples. Numeric columns as float
    # (NaN = missing), text columns (categorical) as object arrays (None = missing).
    cov_cols: dict[str, np.ndarray] = {}
    cov_origin: dict[str, list[str]] = {}
    cov_levels: dict[str, list[str]] = {}
    present_c = np.ones(n_geno, dtype=bool)
    cov_rows: list[int] = []
    for i, table in enumerate(covars):
        src = covar_sources[i] if i < len(covar_sources) else f"covariate file {i + 1}"
        present, al = _aligned(samples, table, source=src)
        present_c &= present
        cov_rows.append(int(present.sum()))
        for name in table.columns:
            if name in ("fid", "iid"):
                continue
            cov_origin.setdefault(name, []).append(src)
            if name in cov_cols:
                continue
            col = al.get_column(name)
            if col.dtype == pl.String:
                cov_cols[name] = np.asarray(col.to_list(), dtype=object)
                # plink2's level order: first appearance in the file (the first is the reference)
                cov_levels[name] = table.get_column(name).drop_nulls().unique(maintain_order=True).to_list()
            else:
                cov_cols[name] = col.cast(pl.Float64).fill_null(np.nan).to_numpy()
    sources = ", ".join(dict.fromkeys(covar_sources)) or "the covariate files"
    if covariate_names is not None:
        header = list(cov_origin)
        if "sex" not in cov_origin and "sex" in samples.columns:
            header.append("sex")  # plink2's sex covariate: from the .fam/.psam
        names = expand_names(covariate_names, header, option="--covar-name", sources=sources)
    else:
        names = list(cov_origin)
    twice = [n for n in names if len(cov_origin.get(n, ())) > 1 and len(set(cov_origin[n])) > 1]
    if twice:
        n = twice[0]
        raise InputError(f"{cov_origin[n][1]}: covariate {n!r} also in {cov_origin[n][0]}; "
                         "a covariate used must be in one file only")
    if "sex" in names and "sex" not in cov_origin:
        if "sex" not in samples.columns:
            raise InputError(f"--covar-name: no column 'sex' in {sources}, and the genotype samples carry "
                             "no sex (.fam/.psam)")
        sex = samples.get_column("sex").to_numpy()
        cov_cols["sex"] = np.where((sex == 1) | (sex == 2), sex, np.nan).astype(np.float64)
        print("assoc: covariate sex from the genotype samples' sex (.fam/.psam: 1 male, 2 female; "
              f"unknown sex is missing): {int(np.isnan(cov_cols['sex']).sum())} unknown", file=log)
    cov_cols = {c: cov_cols[c] for c in names}
    cov_names = tuple(cov_cols)
    categorical = {c for c, v in cov_cols.items() if v.dtype == object}
    cov_missing = np.zeros(n_geno, dtype=bool)
    for c, v in cov_cols.items():
        cov_missing |= np.equal(v, None) if c in categorical else np.isnan(v)
    cov_complete = present_c & ~cov_missing

    in_keep = np.ones(n_geno, dtype=bool)
    unlisted = 0  # listed in --keep but not among the genotype samples: said, not silently dropped
    if keep is not None:
        in_keep, _ = _aligned(samples, keep.unique(), source="--keep list")
        unlisted = keep.unique().height - int(in_keep.sum())

    print(
        f"assoc: {n_geno} genotyped samples; phenotype file {pheno_source}: {pheno.height} lines, "
        f"{int(present_p.sum())} genotyped"
        + "".join(
            f"; covariate file {covar_sources[i] if i < len(covar_sources) else i + 1}: "
            f"{covars[i].height} lines, {cov_rows[i]} genotyped"
            for i in range(len(covars))
        )
        + (f"; --keep: {int(in_keep.sum())} genotyped samples listed" if keep is not None else "")
        + (f", {unlisted} listed sample(s) not among the genotype samples" if unlisted > 0 else ""),
        file=log,
    )

    designs: list[TraitDesign] = []
    for trait in traits:
        values = pheno_al.get_column(trait).cast(pl.Float64).fill_null(np.nan).to_numpy()
        declared = trait_types.get(trait)
        ttype = detect_trait_type(values[present_p & in_keep], declared=declared, column=trait,
                                  source=pheno_source)
        has_value = present_p & ~np.isnan(values)
        used = in_keep & has_value & cov_complete
        ledger = Ledger(stage="assoc", cohort=cohort, trait=trait, unit="samples", n_in=n_geno)
        remaining = np.ones(n_geno, dtype=bool)
        for reason, ok in (
            ("not_in_keep", in_keep),
            ("no_phenotype_line", present_p),
            ("phenotype_missing", has_value),
            ("no_covariate_line", present_c),
            ("covariate_missing", cov_complete),
        ):
            ledger.remove(reason, int((remaining & ~ok).sum()))
            remaining &= ok
        ledger.n_kept = int(used.sum())
        ledger.check()
        n_used = int(used.sum())
        if n_used == 0:
            raise InputError(
                f"trait {trait!r}: no sample has genotype, phenotype and all covariates: "
                f"{n_geno} genotyped, {int(present_p.sum())} of them in {pheno_source} "
                f"({int(has_value.sum())} with a {trait} value), "
                f"{int(present_c.sum())} in the covariate file(s) ({int(cov_complete.sum())} complete)"
                + (f", {int(in_keep.sum())} in --keep" if keep is not None else "")
                + "; check that FID/IID match the .fam"
            )
        rows = np.flatnonzero(used)
        y = values[rows]
        if ttype == "binary":
            y = case_control_outcome(y, column=trait, source=pheno_source)
            n_cases = int(y.sum())
            if n_cases == 0 or n_cases == n_used:
                raise InputError(
                    f"trait {trait!r}: binary trait needs both cases and controls among the {n_used} "
                    f"analysed samples; got {n_cases} cases, {n_used - n_cases} controls"
                )
        elif np.ptp(y) == 0:
            raise InputError(f"trait {trait!r}: quantitative trait is constant ({y[0]:g}) among the {n_used} analysed samples")
        elif pheno_transform == "int":
            y = inverse_normal_transform(y, offset=int_offset)
            print(f"assoc: trait {trait}: rank-based inverse-normal transform over its {n_used} "
                  f"analysed samples (offset {int_offset:g}, ties averaged)", file=log)
        elif pheno_transform is not None:
            raise InputError(f"--pheno-transform {pheno_transform!r}: expected 'int'")
        x, design_names = _covariate_matrix(cov_cols, rows, cov_levels, trait=trait, log=log)
        n_params = x.shape[1] + 2  # intercept + covariates + dosage
        if n_used <= n_params:
            raise InputError(
                f"trait {trait!r}: the number of samples must exceed the number of parameters "
                f"(intercept + covariates + dosage); got N={n_used}, parameters={n_params}"
            )
        sd = x.std(axis=0)
        const = [design_names[j] for j in np.flatnonzero(~(sd > 0))]
        if const:
            raise InputError(
                f"trait {trait!r}: covariate(s) {const} constant among the {n_used} analysed samples; "
                "drop them (--covar-name) or check the covariate file"
            )
        z = (x - x.mean(axis=0)) / sd if x.shape[1] else x
        collinear = _collinear_sets(z, design_names)
        if collinear:
            raise InputError(
                f"trait {trait!r}: covariates {collinear} are collinear (one is a linear combination of "
                f"the others) among the {n_used} analysed samples; drop one of them (--covar-name)"
            )
        design = np.column_stack([np.ones(n_used), z])
        print(
            f"assoc: trait {trait}: {ttype}, {n_used} samples used"
            + (f" ({int(y.sum())} cases, {n_used - int(y.sum())} controls)" if ttype == "binary" else "")
            + f", {len(cov_names)} covariates ({x.shape[1]} design columns)"
            + "".join(f"; {v} {k.replace('_', ' ')}" for k, v in ledger.removed.items() if v),
            file=log,
        )
        designs.append(TraitDesign(trait, ttype, rows, y, design, tuple(design_names), ledger))
    return designs


def _covariate_matrix(cov_cols: Mapping[str, np.ndarray], rows: np.ndarray,
                      levels_in_file: Mapping[str, Sequence[str]], *,
                      trait: str, log: TextIO) -> tuple[np.ndarray, list[str]]:
    """The covariate columns of one trait's samples, categorical ones dummy-coded as plink2 does.

    A text covariate (a key of ``levels_in_file``) with levels L1, L2, ...
    (in order of first appearance in its file, as plink2 orders them; those
    present among the trait's samples) becomes indicator columns ``name=L2``,
    ``name=L3``, ...: the first level is the reference, as in plink2 --glm.
    The variant's estimate does not depend on which level is the reference
    (the indicators span the same space).
    """
    blocks: list[np.ndarray] = []
    names: list[str] = []
    for name, values in cov_cols.items():
        v = values[rows]
        if name not in levels_in_file:
            blocks.append(v.astype(np.float64))
            names.append(name)
            continue
        present = set(v.tolist())
        levels = [level for level in levels_in_file[name] if level in present]
        for level in levels[1:]:
            blocks.append((v == level).astype(np.float64))
            names.append(f"{name}={level}")
        print(f"assoc: trait {trait}: categorical covariate {name}: {len(levels)} levels "
              f"({', '.join(levels)}), reference {levels[0]}, {max(len(levels) - 1, 0)} indicator columns",
              file=log)
        if len(levels) < 2:
            raise InputError(
                f"trait {trait!r}: categorical covariate {name!r} has one level ({levels[0] if levels else 'none'}) "
                f"among the {rows.size} analysed samples; drop it (--covar-name) or check the covariate file"
            )
    x = np.column_stack(blocks) if blocks else np.empty((rows.size, 0))
    return x, names


# ------------------------------------------------------------------------------- the scan


def part_slice(n_variants: int, part: tuple[int, int] | None) -> slice:
    """The I-th of N equal contiguous parts (1-based) of ``n_variants``; sizes differ by at most 1."""
    if part is None:
        return slice(0, n_variants)
    i, n = part
    if not (1 <= i <= n):
        raise InputError(f"--part {i}/{n}: expected 1 <= I <= N")
    return slice((i - 1) * n_variants // n, i * n_variants // n)


def _chromosome_codes(labels: pl.Series, source: str) -> pl.Series:
    """GWAS-SSF codes of genotype-file labels, read in PLINK's numbering (25 = XY, 26 = MT)."""
    mapping: dict[str, int] = {}
    for lab in labels.unique().to_list():
        try:
            mapping[lab] = genotype_chrom_code(lab)
        except InputError as exc:
            raise InputError(f"{source}: {exc}") from exc
    return labels.replace_strict(mapping, return_dtype=pl.Int64)


#: ``.bim`` chromosome labels analysed with the chromosome X model (``XY``, the
#: pseudo-autosomal region, is diploid in both sexes and stays autosomal, as in plink2).
X_LABELS: frozenset[str] = frozenset({"X", "23", "CHRX", "CHR23"})


def chrx_designs(designs: Sequence[TraitDesign], sex: np.ndarray, *,
                 log: TextIO | None = None) -> list[TraitDesign]:
    """The chromosome X designs of the traits: sex always a covariate, unknown-sex samples out.

    plink2 ``--glm`` adds sex (from the .fam/.psam) as a covariate for chrX
    variants and leaves out samples of unknown sex there; males' haploid
    calls are stored as homozygous in a PLINK 1 ``.bed`` and so count 0/2
    (plink2's default ``--xchr-model 2``). A trait whose covariates already
    include a column named ``sex`` (any case) keeps it and gets no second one.

    Parameters
    ----------
    designs
        The autosomal designs from :func:`build_designs`.
    sex
        (n_genotyped,) ``.fam`` sex codes: 1 male, 2 female, other unknown.

    Returns
    -------
    list of TraitDesign
        In the order of ``designs``.

    Raises
    ------
    InputError
        When a trait is left without samples, or (binary) without cases or
        controls, once samples of unknown sex are removed.
    """
    log = log if log is not None else sys.stderr
    sex = np.asarray(sex)
    out: list[TraitDesign] = []
    for d in designs:
        s = sex[d.rows]
        known = (s == 1) | (s == 2)
        has_sex = any(c.lower() == "sex" or c.lower().startswith("sex=") for c in d.covariate_names)
        rows, y, design = d.rows[known], d.y[known], d.design[known]
        ledger = Ledger(stage="assoc", cohort=d.ledger.cohort, trait=d.name, unit="samples",
                        n_in=d.ledger.n_in, removed=dict(d.ledger.removed))
        ledger.remove("sex_unknown_chrx", int((~known).sum()))
        ledger.n_kept = int(known.sum())
        ledger.check()
        if rows.size <= design.shape[1] + 2:
            raise InputError(
                f"trait {d.name!r}: chromosome X needs sex; {rows.size} of its {d.n} samples have sex "
                f"1 or 2 in the .fam, fewer than the parameters ({design.shape[1] + 2})"
            )
        if d.trait_type == "binary" and not (0 < y.sum() < y.size):
            raise InputError(
                f"trait {d.name!r}: among the {y.size} samples of known sex (chromosome X) there are "
                f"{int(y.sum())} cases and {int(y.size - y.sum())} controls; need both"
            )
        names = d.covariate_names
        added = ""
        if not has_sex:
            male = (s[known] == 1).astype(np.float64)
            if np.ptp(male) > 0:
                design = np.column_stack([design, (male - male.mean()) / male.std()])
                names = (*names, "sex")
                added = "sex added as a covariate from the .fam"
            else:
                added = "one sex only among its samples, so no sex covariate"
        else:
            # The covariate design was centred on all samples; re-centring is not needed
            # (the intercept absorbs any shift).
            added = "sex already a covariate"
        print(f"assoc: trait {d.name}: chromosome X: {rows.size} samples of known sex "
              f"({int((~known).sum())} of unknown sex left out), {added}; males coded 0/2",
              file=log)
        out.append(TraitDesign(d.name, d.trait_type, rows, y, design, names, ledger))
    return out


def read_step(chunk_size: int, n_samples: int) -> int:
    """Variants the scan reads and fits at once: ``chunk_size``, capped so that one float64
    samples x variants array stays under 16 MiB (at least 16 variants)."""
    return max(1, min(chunk_size, max(_MIN_CHUNK, _CHUNK_BYTES // (8 * max(n_samples, 1)))))


def _is_x(labels: pl.Series) -> np.ndarray:
    return labels.str.to_uppercase().is_in(list(X_LABELS)).to_numpy()


def _scan_part(genotypes: Genotypes, designs: Sequence[TraitDesign], variant_index: np.ndarray, *,
               chunk_size: int, max_vif: float, firth: bool, fill_reference: np.ndarray | None = None,
               progress: Progress | None = None) -> list[dict[str, list[np.ndarray]]]:
    """Statistics of ``variant_index`` (one model: autosomal or X) as per-trait column parts."""
    acc: list[dict[str, list[np.ndarray]]] = [{} for _ in designs]
    if variant_index.size == 0:
        return acc
    union = np.unique(np.concatenate([d.rows for d in designs]))
    if fill_reference is not None:
        # Imported here: crosscohort.tre.sufficient imports this module.
        from crosscohort.tre.sufficient import fill_missing, hard_call_fill

        fill_reference = np.unique(np.asarray(fill_reference, dtype=np.int64))
        union = np.union1d(union, fill_reference)
        ref_pos = np.searchsorted(union, fill_reference)
    all_samples = union.size == genotypes.n_samples
    positions = [np.searchsorted(union, d.rows) for d in designs]
    models = [_kernel_model(d) for d in designs]

    def put(store: dict[str, list[np.ndarray]], **cols: np.ndarray) -> None:
        for k, v in cols.items():
            store.setdefault(k, []).append(v)

    step = read_step(chunk_size, union.size)
    for _vi, dos in genotypes.chunks(variant_index, step, None if all_samples else union):
        if fill_reference is not None:  # --missing fill: every call filled as the sums fill it
            dos = fill_missing(dos, hard_call_fill(dos if ref_pos.size == dos.shape[0] else dos[ref_pos]))
        for d, model, pos, store in zip(designs, models, positions, acc, strict=True):
            g = dos if (pos.size == dos.shape[0]) else dos[pos]
            chunk = K.prepare_chunk(g, cases=d.y if d.trait_type == "binary" else None)
            m = g.shape[1]
            used_firth = np.zeros(m, dtype=bool)
            if d.trait_type == "binary":
                fit = K.logistic_chunk(model, chunk, max_vif=max_vif)
                beta, se, err = fit.beta.copy(), fit.standard_error.copy(), fit.error_code.copy()
                p_value, nlp = fit.p_value.copy(), fit.neg_log_10_p_value.copy()
                redo = np.flatnonzero(err == K.LOGISTIC_CONVERGE_FAIL) if firth else np.empty(0, int)
                if redo.size:
                    ff = F.firth_chunk(model.covariates, d.y, chunk.centred[:, redo],
                                       chunk.observed[:, redo], start=model.beta_null)
                    ok = ff.converged
                    done = redo[ok]
                    beta[done], se[done] = ff.beta[ok], ff.standard_error[ok]
                    z = beta[done] / se[done]
                    p_value[done] = p_from_z(z)
                    nlp[done] = neg_log10_p_from_z(z)
                    err[done] = None
                    err[redo[~ok]] = F.FIRTH_CONVERGE_FAIL
                    used_firth[redo] = True
            else:
                fit = K.linear_chunk(model, chunk, max_vif=max_vif)
                beta, se, err = fit.beta, fit.standard_error, fit.error_code
                p_value, nlp = fit.p_value, fit.neg_log_10_p_value
            n = chunk.n_obs
            alt = chunk.alt_count
            with np.errstate(invalid="ignore", divide="ignore"):
                eaf = np.where(n > 0, alt / (2.0 * n), np.nan)
            alt_is_minor = alt <= 2.0 * n - alt
            put(store, beta=beta, standard_error=se,
                effect_allele_frequency=eaf, p_value=p_value,
                neg_log_10_p_value=nlp, n=n.astype(np.int64),
                mac=np.minimum(alt, 2.0 * n - alt), residual_df=fit.residual_df,
                error_code=err)
            if d.trait_type == "binary":
                n_cases, alt_cases = chunk.n_cases, chunk.alt_cases
                alt_controls = alt - alt_cases
                n_controls = n - n_cases
                put(store, n_cases=np.rint(n_cases).astype(np.int64),
                    n_controls=np.rint(n_controls).astype(np.int64),
                    mac_cases=np.where(alt_is_minor, alt_cases, 2.0 * n_cases - alt_cases),
                    mac_controls=np.where(alt_is_minor, alt_controls, 2.0 * n_controls - alt_controls),
                    firth=used_firth)
        if progress is not None:
            progress.update(len(_vi))
    return acc


def scan(genotypes: Genotypes, designs: Sequence[TraitDesign], *, variant_index: np.ndarray,
         chunk_size: int = 1000, max_vif: float = 50.0, firth: bool = True,
         fill_reference: np.ndarray | None = None, log: TextIO | None = None) -> dict[str, pl.DataFrame]:
    """Association statistics of every variant in ``variant_index`` for every trait.

    Parameters
    ----------
    genotypes
        The genotype source.
    designs
        From :func:`build_designs`.
    variant_index
        Variant indices in output order.
    chunk_size
        Most variants read and fitted at once; fewer when a float64 array of
        samples x chunk_size would exceed 16 MiB (:func:`read_step`), so
        memory is ~ a few x min(samples x chunk_size x 8 bytes, 16 MiB).
    max_vif
        Genotype variance-inflation factor above which a fit is refused (plink2 ``--vif``).
    firth
        Refit with Firth's penalised likelihood the variants whose ordinary
        logistic fit fails (plink2's default ``firth-fallback``); such rows have
        ``firth`` True. False: they stay NA with ``LOGISTIC_CONVERGE_FAIL``
        (plink2 ``no-firth``).
    fill_reference
        ``--missing fill``: the samples (genotype indices, the cohort's
        ``--keep`` samples) whose calls set each variant's fill of a missing
        call, :func:`crosscohort.tre.sufficient.hard_call_fill`, as
        ``crosscohort sufficient`` fills it; every analysed sample then
        counts in every variant (n is the trait's n). Default None: a sample
        with a missing call is left out of that variant's fit (plink2).

    Returns
    -------
    dict
        Trait name -> GWAS-SSF table (plus internal columns), one row per variant.

    Notes
    -----
    Chromosome X variants (``.bim`` label ``X`` or ``23``) use the designs of
    :func:`chrx_designs`: sex a covariate, unknown-sex samples left out, males
    0/2 as stored in the ``.bed``, as plink2 ``--glm``. A heterozygous male
    call (a genotyping error) is kept as dosage 1, as plink2 2.00a3.5 does
    (plink 1.9 would set it missing); set such calls missing upstream if
    that matters.
    """
    log = log if log is not None else sys.stderr
    variant_index = np.asarray(variant_index, dtype=np.int64)
    bim = genotypes.variants[variant_index]
    on_x = _is_x(bim.get_column("chrom"))
    # Long jobs say how far they are (rule log, or a bar on a terminal): issue 9.
    progress = Progress(variant_index.size, label="assoc", stream=log)
    n_rows = np.unique(np.concatenate([d.rows for d in designs])).size if designs else 0
    step = read_step(chunk_size, n_rows)
    if step < chunk_size and variant_index.size > step:
        print(f"assoc: {step} variants read at a time (--chunk-size {chunk_size} capped: one chunk of "
              f"{n_rows} samples in float64 stays under {_CHUNK_BYTES >> 20} MiB)", file=log)
    parts = _scan_part(genotypes, designs, variant_index[~on_x], chunk_size=chunk_size,
                       max_vif=max_vif, firth=firth, fill_reference=fill_reference, progress=progress)
    if on_x.any():
        sex = genotypes.samples.get_column("sex").to_numpy()
        xd = chrx_designs(designs, sex, log=log)
        x_parts = _scan_part(genotypes, xd, variant_index[on_x], chunk_size=chunk_size,
                             max_vif=max_vif, firth=firth, fill_reference=fill_reference, progress=progress)
        # Back to the requested order: autosomal rows first, then X, then reorder.
        order = np.argsort(np.concatenate([np.flatnonzero(~on_x), np.flatnonzero(on_x)]),
                           kind="stable")
        merged = []
        for a, b in zip(parts, x_parts, strict=True):
            keys = a.keys() | b.keys()
            merged.append({k: [np.concatenate(a.get(k, []) + b.get(k, []))[order]] for k in keys})
        parts = merged
    progress.close()

    base = pl.DataFrame({
        "chromosome": _chromosome_codes(bim.get_column("chrom"), "the .bim chromosome column"),
        "base_pair_location": bim.get_column("pos"),
        "effect_allele": bim.get_column("a1"),
        "other_allele": bim.get_column("a2"),
        "rsid": bim.get_column("id"),
    })
    base = base.with_columns(variant_id(pl.col("chromosome"), pl.col("base_pair_location"),
                                        pl.col("other_allele"), pl.col("effect_allele")))
    tables: dict[str, pl.DataFrame] = {}
    for d, store in zip(designs, parts, strict=True):
        cols: dict[str, pl.Series] = {}
        m = len(variant_index)
        for name, chunks in store.items():
            arr = np.concatenate(chunks) if chunks else np.empty(0)
            if name == "error_code":
                cols[name] = pl.Series(name, arr.tolist() if m else [], dtype=pl.String)
            elif name in ("n", "n_cases", "n_controls", "residual_df"):
                cols[name] = pl.Series(name, arr, dtype=pl.Int64)
            elif name == "firth":
                cols[name] = pl.Series(name, arr, dtype=pl.Boolean)
            else:
                cols[name] = float_column(name, arr)
        stats = pl.DataFrame(list(cols.values())) if cols else pl.DataFrame()
        order = ["chromosome", "base_pair_location", "effect_allele", "other_allele", "beta",
                 "standard_error", "effect_allele_frequency", "p_value", "neg_log_10_p_value",
                 "variant_id", "rsid", "n", "n_cases", "n_controls", "mac", "mac_cases",
                 "mac_controls", "residual_df", "error_code", "firth"]
        if stats.height == 0 and m == 0:
            stats = _empty_stats(d.trait_type)
        table = pl.concat([base, stats], how="horizontal")
        tables[d.name] = table.select([c for c in order if c in table.columns])
    return tables


def _empty_stats(trait_type: TraitType) -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {
        "beta": pl.Float64(), "standard_error": pl.Float64(), "effect_allele_frequency": pl.Float64(),
        "p_value": pl.Float64(), "neg_log_10_p_value": pl.Float64(), "n": pl.Int64(), "mac": pl.Float64(),
        "residual_df": pl.Int64(), "error_code": pl.String(),
    }
    if trait_type == "binary":
        schema |= {"n_cases": pl.Int64(), "n_controls": pl.Int64(), "mac_cases": pl.Float64(),
                   "mac_controls": pl.Float64(), "firth": pl.Boolean()}
    return pl.DataFrame(schema=schema)


def _kernel_model(d: TraitDesign) -> K.LinearModel | K.LogisticModel:
    """The kernel's per-trait precomputation (null fit for binary traits)."""
    if d.trait_type == "binary":
        model = K.logistic_model(d.y, d.design)
        if not model.converged:
            raise InputError(
                f"trait {d.name!r}: the covariates-only logistic model did not converge in "
                f"{model.iterations} iterations (covariates separate cases from controls?)"
            )
        return model
    return K.linear_model(d.y, d.design)


@dataclass(frozen=True)
class StudyInputs:
    """What ``assoc``, ``wgr`` and ``sufficient`` read first: genotypes, the study's tables, one design per trait.

    Attributes
    ----------
    genotypes
        The (stacked) genotype inputs.
    tables
        Phenotype and covariate tables with the name lists resolved.
    designs
        One :class:`TraitDesign` per trait, in the order of ``tables.pheno_names``.
    cohort
        The cohort label of ledgers and messages.
    covar_sources
        The covariate file names, for messages.
    keep
        The ``--keep`` (minus ``--remove``) sample table, or None when neither was given.
    """

    genotypes: Genotypes
    tables: StudyTables
    designs: tuple[TraitDesign, ...]
    cohort: str
    covar_sources: tuple[str, ...]
    keep: pl.DataFrame | None = None


def sample_selection(genotypes: Genotypes, *, keep: str | Path | None = None,
                     remove: str | Path | None = None) -> pl.DataFrame | None:
    """The ``--keep`` list minus the ``--remove`` list as a keep table (None when neither is given)."""
    if keep is None and remove is None:
        return None
    samples = genotypes.samples.select("fid", "iid")
    for path, how in ((keep, "semi"), (remove, "anti")):
        if path is not None:
            table = read_sample_list(path)
            cols = ["iid"] if table.get_column("fid").is_null().all() else ["fid", "iid"]
            samples = samples.join(table.select(cols).unique(), on=cols, how=how)
    return samples


def read_study(
    sources: Sequence,
    pheno: str | Path,
    *,
    pheno_names: Sequence[str] | None = None,
    covar: Sequence[str | Path] = (),
    covar_names: Sequence[str] | None = None,
    keep: str | Path | None = None,
    remove: str | Path | None = None,
    trait_types: Mapping[str, TraitType] | None = None,
    pheno_transform: PhenoTransform | None = None,
    int_offset: float = BLOM_OFFSET,
    cohort: str | None = None,
    log: TextIO,
) -> StudyInputs:
    """Open the genotypes, read the phenotype and covariate tables and build each trait's design.

    The one opening of ``assoc`` (glm and ``--pred``), ``wgr`` and
    ``sufficient``, so that the same options select the same samples in all
    of them. ``keep`` is applied as a ``--keep`` list (IID-only lists need
    unique IIDs); with ``remove`` (REGENIE's ``--remove``), the keep list
    minus the remove list (:func:`sample_selection`). ``cohort`` defaults to
    the first source's name.

    Raises
    ------
    InputError
        As :func:`build_designs` and the table readers.
    """
    geno = Genotypes(list(sources))
    cohort = cohort or Path(str(sources[0])).name
    tables = read_study_tables(pheno, covar, pheno_names=pheno_names, covar_names=covar_names)
    covar_sources = tuple(str(c) for c in covar)
    if remove is not None:
        keep_table = sample_selection(geno, keep=keep, remove=remove)
    else:
        keep_table = read_sample_list(keep) if keep is not None else None
    designs = build_designs(
        geno.samples, tables.pheno, tables.covar, traits=tables.pheno_names, covariate_names=tables.covar_names,
        keep=keep_table, trait_types=trait_types, cohort=cohort, pheno_source=str(pheno),
        covar_sources=list(covar_sources), pheno_transform=pheno_transform, int_offset=int_offset, log=log,
    )
    return StudyInputs(geno, tables, tuple(designs), cohort, covar_sources, keep_table)


def select_variants(genotypes: Genotypes, *, extract: str | Path | None = None,
                    part: tuple[int, int] | None = None, stage: str = "assoc", log: TextIO) -> np.ndarray:
    """Indices of the variants a run analyses: the ``--extract`` IDs (genotype order), then the ``--part`` slice.

    Raises
    ------
    InputError
        When none of the ``--extract`` IDs is among the genotype variants; a bad ``--part``.
    """
    if extract is not None:
        ids = read_id_list(extract)
        vidx = genotypes.variant_index(ids)
        n_missing = len(set(ids)) - vidx.size
        print(f"{stage}: --extract {extract}: {len(set(ids))} IDs, {vidx.size} variants found"
              + (f", {n_missing} IDs not among the genotype variants" if n_missing > 0 else ""), file=log)
        if vidx.size == 0:
            raise InputError(f"{extract}: none of its {len(ids)} variant IDs is among the genotype variants")
    else:
        vidx = np.arange(genotypes.n_variants)
    vidx = vidx[part_slice(vidx.size, part)]
    if part is not None:
        print(f"{stage}: --part {part[0]}/{part[1]}: {vidx.size} variants", file=log)
    return vidx


def variant_ledger(table: pl.DataFrame, *, cohort: str, trait: str, stage: str = "assoc") -> Ledger:
    """The variant ledger of one trait's result table: tested, and NA per ``error_code``."""
    codes = table.get_column("error_code")
    led = Ledger(stage=stage, cohort=cohort, trait=trait, unit="variants", n_in=table.height,
                 n_kept=int(codes.null_count()))
    for code, count in codes.drop_nulls().value_counts(sort=True).iter_rows():
        led.remove(code, int(count))
    return led.check()


def run_assoc(
    bfiles: Sequence[str | Path],
    pheno: str | Path,
    *,
    pheno_names: Sequence[str] | None = None,
    covar: Sequence[str | Path] = (),
    covar_names: Sequence[str] | None = None,
    keep: str | Path | None = None,
    extract: str | Path | None = None,
    trait_types: Mapping[str, TraitType] | None = None,
    chunk_size: int = 1000,
    part: tuple[int, int] | None = None,
    max_vif: float = 50.0,
    firth: bool = True,
    pheno_transform: PhenoTransform | None = None,
    int_offset: float = BLOM_OFFSET,
    cohort: str | None = None,
    missing: str = "drop",
    log: TextIO | None = None,
) -> AssocResult:
    """Run ``crosscohort assoc`` from file paths: read inputs, build designs, scan variants.

    Parameters mirror the command's options (plink2 ``--glm`` names):
    ``bfiles`` are PLINK 1 prefixes (several = stacked samples, identical
    .bim), ``extract`` a file of variant IDs, ``part`` = (I, N) to analyse the
    I-th of N contiguous parts of the extracted variants. ``firth``: Firth
    fallback for failed logistic fits (plink2's default; ``--no-firth`` turns
    it off). ``pheno_transform="int"``: rank-based inverse-normal transform of
    each quantitative trait over its analysed samples (``--pheno-transform``).
    ``missing="fill"`` (``--missing fill``): each missing call is filled with
    its variant's hard call of the mean over the ``keep`` samples (all
    genotyped samples without ``keep``), exactly as ``crosscohort sufficient``
    fills it, so that the sumstats and the sums of a bundle describe the same
    genotypes; default ``"drop"``: plink2's semantics.

    Returns
    -------
    AssocResult
        One table per trait plus the sample ledger of each trait and the
        variant ledger (fitted vs. NA with each error code) of each trait.
    """
    log = log if log is not None else sys.stderr
    if chunk_size < 1:
        raise InputError(f"--chunk-size must be at least 1; got {chunk_size}")
    if missing not in MISSING_MODES:
        raise InputError(f"--missing must be one of {list(MISSING_MODES)}; got {missing!r}")
    study = read_study(bfiles, pheno, pheno_names=pheno_names, covar=covar, covar_names=covar_names, keep=keep,
                       trait_types=trait_types, pheno_transform=pheno_transform, int_offset=int_offset,
                       cohort=cohort, log=log)
    geno, designs, cohort = study.genotypes, list(study.designs), study.cohort
    vidx = select_variants(geno, extract=extract, part=part, log=log)
    # A small job decodes and fits with numpy rather than load numba (crosscohort.runtime.jit).
    binary = any(d.trait_type == "binary" for d in designs)
    with small_job(geno.n_samples * vidx.size <= (SMALL_BINARY_JOB_CELLS if binary else SMALL_JOB_CELLS)):
        tables = scan(geno, designs, variant_index=vidx, chunk_size=chunk_size, max_vif=max_vif,
                      firth=firth, log=log,
                      fill_reference=geno.sample_index(study.keep) if missing == "fill" else None)
    if missing == "fill":
        print("assoc: --missing fill: each missing call filled with its variant's hard call of the mean over "
              "the --keep samples (as crosscohort sufficient); every analysed sample counts in every variant",
              file=log)
    ledgers: list[Ledger] = [d.ledger for d in designs]
    for d in designs:
        t = tables[d.name]
        led = variant_ledger(t, cohort=cohort, trait=d.name)
        ledgers.append(led)
        na = ", ".join(f"{k} {v}" for k, v in led.removed.items())
        n_firth = int(t.get_column("firth").sum()) if "firth" in t.columns else 0
        print(f"assoc: trait {d.name}: {led.n_kept} of {led.n_in} variants fitted"
              + (f" ({n_firth} by Firth regression after the logistic fit failed)" if n_firth else "")
              + (f"; NA: {na}" if na else ""), file=log)
    return AssocResult(tables, tuple(designs), tuple(ledgers))
