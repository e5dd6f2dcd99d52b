"""LD clumping of summary statistics against genotypes, as plink 1.9's ``--clump``.

Where genotypes are at hand (the pooled arm of the demo, a cohort inside its
TRE, or a reference panel), significant variants are grouped by linkage
disequilibrium rather than by distance alone: the most significant remaining
variant becomes an index variant and takes every not yet clumped variant
within the window whose p passes ``p2`` and whose r² with it reaches ``r2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from crosscohort.contract.errors import ConfigError, InputError
from crosscohort.contract.keys import normalise_chromosomes
from crosscohort.contract.stats import neg_log10_p_of_table
from crosscohort.contract.sumstats import write_sumstats
from crosscohort.runtime.atomic import write_json
from crosscohort.tre.genotypes import Genotypes

__all__ = ["Clumps", "clump", "dosage_r2", "haplotype_r2", "match_genotypes", "write_clumps"]


@dataclass(frozen=True)
class Clumps:
    """Result of :func:`clump`.

    ``clumps`` has one row per index variant, most significant first: the
    index's columns of the summary statistics, ``clump`` (1-based), ``bim_id``
    (the genotype ID), ``n_members`` (variants clumped to it, index excluded,
    plink's ``TOTAL``), ``members`` (their genotype IDs, plink's ``SP2``),
    ``span_start``/``span_end`` (lowest and highest position of index and
    members) and, when the summary statistics have ``variant_id``,
    ``member_variant_ids`` (the members' ``variant_id``, in the same order).
    ``n_not_in_genotypes`` variants of the summary statistics with p ≤ p2 had
    no genotype (plink warns and skips them too); they are listed in
    ``not_in_genotypes`` and neither index nor member.
    """

    clumps: pl.DataFrame
    n_candidates: int
    n_not_in_genotypes: int
    not_in_genotypes: tuple[str, ...]
    p1: float
    p2: float
    r2: float
    window_kb: float


def dosage_r2(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Squared Pearson correlation of one dosage vector with each column of a matrix.

    Parameters
    ----------
    x
        Dosages of one variant, shape (n_samples,); NaN = missing.
    y
        Dosages of k variants, shape (n_samples, k); NaN = missing.

    Returns
    -------
    numpy.ndarray
        r² of shape (k,), over the samples called at both variants; NaN where
        either variant is monomorphic among them.

    Notes
    -----
    This is the genotype (allele-count) correlation that plink 1.9 reports with
    plain ``--r2``; with complete calls it is the Pearson r² of dosages.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float).reshape(x.size, -1)
    ok = np.isfinite(x)[:, None] & np.isfinite(y)
    w = ok.astype(float)
    xv = np.where(ok, x[:, None], 0.0)
    yv = np.where(ok, y, 0.0)
    n = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = xv.sum(axis=0) / n
        my = yv.sum(axis=0) / n
        cov = (xv * yv).sum(axis=0) / n - mx * my
        vx = (xv * xv).sum(axis=0) / n - mx * mx
        vy = (yv * yv).sum(axis=0) / n - my * my
        r2 = cov * cov / (vx * vy)
    r2[~((vx > 1e-12) & (vy > 1e-12))] = np.nan
    return np.clip(r2, 0.0, 1.0)


def haplotype_r2(x: np.ndarray, y: np.ndarray, *, max_iter: int = 1000, tol: float = 1e-12) -> np.ndarray:
    """r² between one variant and each of k others from EM haplotype frequencies (unphased genotypes).

    Parameters
    ----------
    x
        Hard-call dosages (0, 1, 2; NaN = missing) of one variant, shape (n_samples,).
    y
        Hard-call dosages of k variants, shape (n_samples, k).
    max_iter, tol
        EM iterations and convergence tolerance on the double-heterozygote phase share.

    Returns
    -------
    numpy.ndarray
        r² = D² / (p_A (1-p_A) p_B (1-p_B)) of shape (k,), over samples called
        at both variants; NaN where either is monomorphic among them.

    Notes
    -----
    Haplotype counts are known for every two-locus genotype but the double
    heterozygote, whose phase (AB/ab or Ab/aB) is split by the EM update
    φ = p_AB p_ab / (p_AB p_ab + p_Ab p_aB) (Excoffier & Slatkin 1995). This
    is the r² that plink 1.9 uses for ``--clump`` and reports with
    ``--r2 dprime``; it differs from the genotype correlation
    (:func:`dosage_r2`, plink's plain ``--r2``) by a few hundredths near a
    threshold, enough to change which variant leads a clump.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float).reshape(x.size, -1)
    k = y.shape[1]
    xo = np.stack([x == v for v in (0.0, 1.0, 2.0)], axis=1).astype(float)  # (n, 3)
    yo = np.stack([y == v for v in (0.0, 1.0, 2.0)], axis=1).astype(float)  # (n, 3, k)
    c = np.einsum("na,nbk->kab", xo, yo)  # two-locus genotype counts, (k, 3, 3)
    # Haplotypes carrying the counted allele at A and/or B, known without phase.
    h11 = 2 * c[:, 2, 2] + c[:, 2, 1] + c[:, 1, 2]
    h10 = 2 * c[:, 2, 0] + c[:, 2, 1] + c[:, 1, 0]
    h01 = 2 * c[:, 0, 2] + c[:, 1, 2] + c[:, 0, 1]
    h00 = 2 * c[:, 0, 0] + c[:, 0, 1] + c[:, 1, 0]
    dh = c[:, 1, 1]
    total = 2.0 * c.sum(axis=(1, 2))
    phi = np.full(k, 0.5)
    with np.errstate(invalid="ignore", divide="ignore"):
        for _ in range(max_iter):
            p11 = (h11 + dh * phi) / total
            p00 = (h00 + dh * phi) / total
            p10 = (h10 + dh * (1 - phi)) / total
            p01 = (h01 + dh * (1 - phi)) / total
            num = p11 * p00
            den = num + p10 * p01
            new = np.where(den > 0, num / den, 0.5)
            done = np.nanmax(np.abs(new - phi)) < tol if k else True
            phi = new
            if done:
                break
        p11 = (h11 + dh * phi) / total
        pa = (h11 + h10 + dh) / total
        pb = (h11 + h01 + dh) / total
        d = p11 - pa * pb
        denom = pa * (1 - pa) * pb * (1 - pb)
        r2 = d * d / denom
    r2[~(denom > 1e-12)] = np.nan
    return np.clip(r2, 0.0, 1.0)


def _match_genotypes(sumstats: pl.DataFrame, genotypes: Genotypes) -> pl.DataFrame:
    """``sumstats`` with ``_g`` = row of the variant in the genotypes (null when absent).

    Matched on chromosome, position and the allele pair in either orientation,
    so a sumstats row aligned to another reference still finds its genotype.
    """
    bim = genotypes.variants.with_row_index("_g").with_columns(
        normalise_chromosomes(genotypes.variants.get_column("chrom")).alias("_chr"),
        pl.col("a1").str.to_uppercase(), pl.col("a2").str.to_uppercase())
    fwd = bim.select("_g", "_chr", "pos", pl.col("a1").alias("_ea"), pl.col("a2").alias("_oa"))
    rev = bim.select("_g", "_chr", "pos", pl.col("a2").alias("_ea"), pl.col("a1").alias("_oa"))
    keyed = sumstats.with_row_index("_row").with_columns(
        normalise_chromosomes(sumstats.get_column("chromosome")).alias("_chr"),
        pl.col("base_pair_location").cast(pl.Int64).alias("pos"),
        pl.col("effect_allele").str.to_uppercase().alias("_ea"),
        pl.col("other_allele").str.to_uppercase().alias("_oa"))
    on = ["_chr", "pos", "_ea", "_oa"]
    hit = pl.concat([keyed.join(fwd, on=on, how="inner"), keyed.join(rev, on=on, how="inner")])
    hit = hit.unique(subset="_row", keep="first").select("_row", "_g")
    out = keyed.join(hit, on="_row", how="left").sort("_row")
    return out.drop("_row", "pos", "_ea", "_oa").join(
        bim.select("_g", pl.col("id").alias("bim_id")), on="_g", how="left")


def match_genotypes(sumstats: pl.DataFrame, genotypes: Genotypes) -> pl.Series:
    """Whether each row of ``sumstats`` has a genotype (chromosome, position, alleles in either orientation).

    Parameters
    ----------
    sumstats
        GWAS-SSF table with ``chromosome``, ``base_pair_location``,
        ``effect_allele`` and ``other_allele``.
    genotypes
        The genotypes LD is measured in.

    Returns
    -------
    polars.Series
        Boolean ``matched``, one per row of ``sumstats``, in its order; the
        same rule :func:`clump` uses, so counts from it agree with the clumps.
    """
    return _match_genotypes(sumstats, genotypes).get_column("_g").is_not_null().alias("matched")


def clump(
    sumstats: pl.DataFrame,
    genotypes: Genotypes,
    *,
    p1: float = 1e-4,
    p2: float = 1e-2,
    r2: float = 0.5,
    window_kb: float = 250.0,
    sample_index: np.ndarray | None = None,
) -> Clumps:
    """LD-based loci: plink 1.9 ``--clump`` on summary statistics and genotypes.

    Parameters
    ----------
    sumstats
        GWAS-SSF table: ``chromosome``, ``base_pair_location``,
        ``effect_allele``, ``other_allele`` and ``neg_log_10_p_value`` and/or
        ``p_value`` (the former wins when p underflows).
    genotypes
        Genotype reader of the samples LD is measured in.
    p1
        Index variants have p ≤ ``p1`` (plink ``--clump-p1``, default 1e-4).
    p2
        Clumped variants have p ≤ ``p2`` (``--clump-p2``, default 0.01).
    r2
        Clumped variants have r² ≥ ``r2`` with the index (``--clump-r2``, default 0.5).
    window_kb
        Clumped variants lie less than ``window_kb`` kb from the index (``--clump-kb``, default 250).
    sample_index
        Samples of ``genotypes`` to measure LD in (default all), increasing.

    Returns
    -------
    Clumps

    Raises
    ------
    ConfigError
        For thresholds outside their ranges.
    InputError
        When a required column is missing.

    Notes
    -----
    Greedy, as plink 1.9: candidates with p ≤ p1 are taken in increasing p
    (ties in input order); a candidate already clumped into an earlier index
    cannot become an index; each index takes every not yet clumped variant
    with p ≤ p2, on its chromosome within the window, with r² ≥ ``r2``
    from EM haplotype frequencies (:func:`haplotype_r2`, as plink 1.9). r² is only computed for the variants that can join
    a clump, so the cost grows with the number of significant variants, not
    the genome.
    """
    if not 0 < p1 <= 1 or not 0 < p2 <= 1:
        raise ConfigError(f"clump: p1 and p2 must lie in (0, 1]; got p1={p1}, p2={p2}")
    if p2 < p1:
        raise ConfigError(f"clump: p2 must be >= p1 (plink's rule); got p1={p1}, p2={p2}")
    if not 0 <= r2 <= 1:
        raise ConfigError(f"clump: r2 must lie in [0, 1]; got {r2}")
    if window_kb < 0:
        raise ConfigError(f"clump: window_kb must be >= 0; got {window_kb}")
    missing = [c for c in ("chromosome", "base_pair_location", "effect_allele", "other_allele")
               if c not in sumstats.columns]
    if missing:
        raise InputError(f"clump: sumstats missing column(s) {missing}; present: {sumstats.columns}")
    nlp = neg_log10_p_of_table(sumstats)
    t1, t2 = -np.log10(p1), -np.log10(p2)
    # Compare on -log10 p with a relative tolerance: plink reads p as text, so
    # p exactly at the threshold must count as passing it.
    eps = 1e-12
    cand = sumstats.with_columns(pl.Series("_nlp", nlp)).filter(pl.col("_nlp") >= t2 * (1 - eps) - eps)
    matched = _match_genotypes(cand, genotypes)
    absent = matched.filter(pl.col("_g").is_null())
    label = "variant_id" if "variant_id" in matched.columns else "bim_id"
    not_in = tuple(
        str(v) for v in (absent.get_column(label).to_list() if label in absent.columns else [])) \
        if absent.height else ()
    m = matched.filter(pl.col("_g").is_not_null()).with_row_index("_order")
    # Stable sort by -log10 p, ties keep input order (plink's).
    m = m.sort(["_nlp", "_order"], descending=[True, False])
    chrom = m.get_column("_chr").to_numpy()
    pos = m.get_column("base_pair_location").cast(pl.Int64).to_numpy()
    g = m.get_column("_g").cast(pl.Int64).to_numpy()
    y = m.get_column("_nlp").to_numpy()
    ids = m.get_column("bim_id").to_list()
    is_index_candidate = y >= t1 * (1 - eps) - eps
    assigned = np.zeros(m.height, dtype=bool)
    w = window_kb * 1000.0
    rows: list[int] = []
    n_members: list[int] = []
    members: list[list[str]] = []
    member_vids: list[list[str]] = []
    vids = m.get_column("variant_id").to_list() if "variant_id" in m.columns else None
    span: list[tuple[int, int]] = []
    for i in range(m.height):
        if not is_index_candidate[i] or assigned[i]:
            continue
        assigned[i] = True
        # plink's window excludes its edge: a variant exactly window_kb away is outside.
        near = np.flatnonzero(~assigned & (chrom == chrom[i]) & (np.abs(pos - pos[i]) < w))
        taken: np.ndarray = near[:0]
        if near.size:
            cols = np.concatenate([[g[i]], g[near]])
            order = np.argsort(cols, kind="stable")
            dos = np.empty((genotypes.n_samples if sample_index is None else len(sample_index), cols.size))
            # EM haplotype r² counts two-locus hard-call genotypes (plink 1.9 reads hard calls only)
            dos[:, order] = genotypes.read_hard_calls(cols[order], sample_index)
            rr = haplotype_r2(dos[:, 0], dos[:, 1:])
            taken = near[np.nan_to_num(rr, nan=-1.0) >= r2 - 1e-12]
            assigned[taken] = True
        rows.append(i)
        n_members.append(int(taken.size))
        # Members listed by position, as plink's SP2.
        by_pos = taken[np.argsort(pos[taken], kind="stable")]
        members.append([ids[j] for j in by_pos])
        if vids is not None:
            member_vids.append([vids[j] for j in by_pos])
        span.append((int(min(pos[i], pos[taken].min(initial=pos[i]))),
                     int(max(pos[i], pos[taken].max(initial=pos[i])))))
    out = m[rows].drop("_order", "_chr", "_g", "_nlp") if rows else m.head(0).drop(
        "_order", "_chr", "_g", "_nlp")
    out = out.with_columns(
        pl.Series("clump", np.arange(1, len(rows) + 1, dtype=np.int64)),
        pl.Series("n_members", n_members, dtype=pl.Int64),
        pl.Series("members", members, dtype=pl.List(pl.String)),
        pl.Series("span_start", [a for a, _ in span], dtype=pl.Int64),
        pl.Series("span_end", [b for _, b in span], dtype=pl.Int64),
    )
    if vids is not None:
        out = out.with_columns(pl.Series("member_variant_ids", member_vids, dtype=pl.List(pl.String)))
    return Clumps(clumps=out, n_candidates=int(is_index_candidate.sum()),
                  n_not_in_genotypes=len(not_in), not_in_genotypes=not_in,
                  p1=p1, p2=p2, r2=r2, window_kb=window_kb)


def write_clumps(result: Clumps, path: str | Path, *, rows_in: int, matched: int) -> tuple[Path, Path]:
    """Write the clumps as a TSV (one row per clump) and their counts as ``<stem>.json``.

    Parameters
    ----------
    result
        Output of :func:`clump` on summary statistics with ``variant_id``.
    path
        The TSV (``OUT.tsv`` or ``OUT.tsv.gz``); the counts go to ``OUT.json`` beside it.
    rows_in, matched
        Rows of the summary statistics read, and how many of them have a
        genotype (:func:`match_genotypes`); ``rows_in - matched`` is reported
        as ``not_in_genotypes``, so the counts add up.

    Returns
    -------
    tuple of pathlib.Path
        The TSV and the JSON.

    Notes
    -----
    The TSV holds the index variant's key columns (``chromosome``,
    ``base_pair_location``, ``effect_allele``, ``other_allele``,
    ``variant_id``, ``rsid`` where present, ``p_value``,
    ``neg_log_10_p_value``), then ``clump``, ``bim_id``, ``n_members``,
    ``members`` (member ``variant_id``s ordered by position, comma-separated,
    ``NONE`` when empty, as plink's ``SP2``), ``span_start`` and ``span_end``.
    """
    path = Path(path)
    c = result.clumps
    if "member_variant_ids" not in c.columns:
        raise InputError("write_clumps: the clumped summary statistics need a variant_id column")
    key = [k for k in ("chromosome", "base_pair_location", "effect_allele", "other_allele", "variant_id",
                       "rsid", "p_value", "neg_log_10_p_value") if k in c.columns]
    table = c.select(
        *key, "clump", "bim_id", "n_members",
        pl.when(pl.col("n_members") > 0).then(pl.col("member_variant_ids").list.join(","))
        .otherwise(pl.lit("NONE")).alias("members"),
        "span_start", "span_end")
    tsv = write_sumstats(table, path)
    counts = {
        "rows_in": rows_in,
        "matched": matched,
        "not_in_genotypes": rows_in - matched,
        # Of those, the ones that could have joined a clump (p <= p2), by variant_id.
        "not_in_genotypes_p2": result.n_not_in_genotypes,
        "not_in_genotypes_p2_ids": list(result.not_in_genotypes),
        "index_candidates": result.n_candidates,
        "clumps": c.height,
        "clumped_members": int(c.get_column("n_members").sum()) if c.height else 0,
        "p1": result.p1, "p2": result.p2, "r2": result.r2, "window_kb": result.window_kb,
    }
    stem = path.name.removesuffix(".gz").removesuffix(".tsv")
    js = path.with_name(stem + ".json")
    write_json(js, counts, sort_keys=False)
    return tsv, js
