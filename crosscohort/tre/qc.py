"""In-cohort sample and variant QC with plink2's semantics, streamed in variant chunks.

The rules and their order are plink2's (checked against its log, see
``tests/test_qc.py``):

1. ``--mind``: samples whose missing call rate over all variants exceeds
   ``mind`` are removed;
2. on the remaining samples, per variant: ``--geno`` (missing call rate above
   ``geno``), ``--hwe`` (Hardy-Weinberg exact test p below ``hwe``), ``--maf``
   (minor allele frequency below ``maf``) and ``--mac`` (minor allele count
   below ``mac``).

A variant failing several rules is counted once, under the first it fails in
the order geno, hwe, maf, mac, so that the ledger adds up.

3. ``--king-cutoff`` (default 0.0884, closer than third degree): on the kept
   samples and the autosomal kept variants, KING-robust kinship of every
   pair (:mod:`crosscohort.tre.relatedness`); one sample of each pair above the
   cutoff is removed by plink2's greedy rule (the sample in most related
   pairs first), counted as ``related_above_king_cutoff``. The same pass
   keeps every pair above ``relatives_min_kinship`` (``crosscohort qc``'s
   default 0.0442, third degree or closer), written as ``O.king.tsv`` whether or not the cutoff
   removes anyone: whole-genome regression keeps relatives and calibrates
   its step 2 with them (``crosscohort assoc --relatives``).

Like plink2, allele frequencies, minor allele counts and the HWE test use
founders only (samples whose father and mother are both ``0`` in the
``.fam``) unless ``nonfounders=True``; call rates use every sample. Unlike
plink2, every variant is treated as diploid: chrX/Y/MT get no haploid
handling (plink2 uses Graffelman-Weir on chrX and ignores female chrY calls).

Every genotype container (:class:`crosscohort.tre.genotypes.Genotypes`: ``.bed``,
``.pgen``, BGEN, VCF/BCF) gives the same results for the same hard calls.
Containers holding dosages (``.pgen``, BGEN, VCF ``DS``) are treated as
plink2 treats them: call rates (``--geno``/``--mind`` without their
``dosage`` modifier), the HWE exact test and KING use hard calls, a dosage
within 0.1 of 0, 1 or 2 being that call and any other having none
(``--hard-call-threshold 0.1``, :func:`crosscohort.tre.genotypes.hard_calls`);
allele frequencies, MAF and MAC use the dosages themselves (``--freq``,
``--maf``, ``--mac``), so a MAC may be fractional.
"""

from __future__ import annotations

import gzip
import json
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TextIO

import numpy as np
import polars as pl

from crosscohort.contract.errors import InputError
from crosscohort.contract.ledger import Ledger
from crosscohort.runtime.atomic import write_bytes
from crosscohort.schemas import default as schema_default
from crosscohort.schemas import out_of_range
from crosscohort.tre.genotypes import Genotypes, hard_calls
from crosscohort.tre.relatedness import KING_THIRD_DEGREE, king_cutoff_removal, king_related_pairs

__all__ = [
    "QcThresholds",
    "QcResult",
    "VARIANT_REASONS",
    "SAMPLE_REASON",
    "KING_REASON",
    "hwe_exact_p",
    "sample_missing_rates",
    "founder_mask",
    "run_qc",
    "write_qc",
]

#: Ledger reasons for removed variants, in the order they are applied.
VARIANT_REASONS: tuple[str, ...] = ("call_rate_below_geno", "hwe_below", "maf_below", "mac_below")
#: Ledger reason for removed samples.
SAMPLE_REASON = "call_rate_below_mind"
#: Ledger reason for samples removed by ``--king-cutoff``.
KING_REASON = "related_above_king_cutoff"

# plink2 compares thresholds with a relative tolerance of 2^-44 (kSmallEpsilon),
# so a value exactly at the threshold, give or take rounding, passes.
_EPS = 2.0**-44
# Het counts whose probability is within this relative distance of the observed
# one count as ties (in the tail); plink2 uses 2^-44 on its own recurrence, our
# log-gamma evaluation is accurate to ~1e-12 relative for N up to millions.
_TIE_LOG_TOL = 1e-9
# Cells of one padded (variants x het-states) block in the HWE kernel.
_HWE_BLOCK_CELLS = 4_000_000


@dataclass(frozen=True)
class QcThresholds:
    """plink2-style QC thresholds (plink2's flags of the same names).

    Defaults and valid ranges are the config schema's keys ``qc.<name>``
    (:mod:`crosscohort.schemas`), the one place the workflow, the command
    and this class read them from.
    """

    geno: float = float(schema_default("qc.geno"))
    mind: float = float(schema_default("qc.mind"))
    maf: float = float(schema_default("qc.maf"))
    mac: float = float(schema_default("qc.mac"))
    hwe: float = float(schema_default("qc.hwe"))

    def check(self) -> QcThresholds:
        """Raise :class:`InputError` on a threshold outside the schema's range for it."""
        for f in fields(self):
            value = getattr(self, f.name)
            rule = out_of_range(f"qc.{f.name}", value)
            if rule:
                raise InputError(f"--{f.name} {rule}; got {value}")
        return self


@dataclass(frozen=True)
class QcResult:
    """What QC kept and why the rest went.

    Attributes
    ----------
    samples
        The input samples (``fid``, ``iid``, ...) with a boolean ``keep`` and
        ``missing_rate`` column.
    variant_stats
        One row per input variant: ``id, n_called, alt_freq, mac,
        missing_rate, hwe_p, qc_reason`` (``qc_reason`` empty when kept).
    sample_ledger, variant_ledger
        The counts: in = kept + removed per reason.
    king_pairs
        Related pairs (``fid1, iid1, fid2, iid2, nsnp, hethet, ibs0,
        kinship``) among the samples KING ran on: those above the lower of
        the KING cutoff and ``relatives_min_kinship``; None when both were
        off, empty when KING could not run (no autosomal variant).
    """

    samples: pl.DataFrame
    variant_stats: pl.DataFrame
    sample_ledger: Ledger
    variant_ledger: Ledger
    king_pairs: pl.DataFrame | None = None

    @property
    def kept_variant_ids(self) -> list[str]:
        """IDs of the variants passing every rule, in file order."""
        return self.variant_stats.filter(pl.col("qc_reason") == "").get_column("id").to_list()


def hwe_exact_p(n_het: np.ndarray, n_hom1: np.ndarray, n_hom2: np.ndarray) -> np.ndarray:
    """Two-sided Hardy-Weinberg exact test p-values of biallelic genotype counts.

    Parameters
    ----------
    n_het, n_hom1, n_hom2
        Counts of heterozygotes and of the two homozygotes, one entry per
        variant (integer-valued, same shape).

    Returns
    -------
    numpy.ndarray
        float64 p-values: the probability, given the allele counts, of a
        heterozygote count at most as likely as the observed one. 1 for a
        variant with no called genotype or a monomorphic one.

    Notes
    -----
    The SNP-HWE exact test of Wigginton, Cutler & Abecasis (2005), without the
    mid-p correction (plink2's default). Conditional on ``n`` genotypes and
    ``r`` copies of the rare allele, ``P(h) = n! 2^h / (h! ((r-h)/2)! (n-h-(r-h)/2)!)
    * r! (2n-r)! / (2n)!``, for ``h`` of the parity of ``r``. Here every
    ``log P(h)`` is evaluated with log-gamma at once and the tail summed with
    log-sum-exp, so p stays accurate down to ~1e-300. Variants sharing a
    count triple are computed once; the rest are padded into blocks of
    similar support and done without a Python loop over het counts.

    References
    ----------
    Wigginton JE, Cutler DJ, Abecasis GR (2005). A note on exact tests of
    Hardy-Weinberg equilibrium. Am J Hum Genet 76:887-893.
    """
    het = np.asarray(n_het, dtype=np.int64)
    h1 = np.asarray(n_hom1, dtype=np.int64)
    h2 = np.asarray(n_hom2, dtype=np.int64)
    if not (het.shape == h1.shape == h2.shape):
        raise ValueError(f"count arrays differ in shape: {het.shape}, {h1.shape}, {h2.shape}")
    shape = het.shape
    homr = np.minimum(h1, h2).ravel()
    homc = np.maximum(h1, h2).ravel()
    het = het.ravel()
    triples, inverse = np.unique(np.stack([het, homr, homc], axis=1), axis=0, return_inverse=True)
    p_unique = np.ones(len(triples))
    het_u, homr_u, homc_u = triples.T
    n = het_u + homr_u + homc_u
    rare = 2 * homr_u + het_u
    states = rare // 2 + 1  # het counts rare%2, rare%2+2, ..., rare
    todo = np.flatnonzero((n > 0) & (rare > 0))
    todo = todo[np.argsort(states[todo], kind="stable")]
    start = 0
    while start < len(todo):
        width = int(states[todo[start]])
        stop = start + 1
        # grow the block while the padded size stays small (widths are sorted)
        while stop < len(todo) and int(states[todo[stop]]) * (stop + 1 - start) <= max(
            _HWE_BLOCK_CELLS, width
        ):
            stop += 1
        idx = todo[start:stop]
        p_unique[idx] = _hwe_block(het_u[idx], rare[idx], n[idx], int(states[idx].max()))
        start = stop
    return p_unique[inverse.ravel()].reshape(shape)


def _hwe_block(het: np.ndarray, rare: np.ndarray, n: np.ndarray, width: int) -> np.ndarray:
    """HWE exact p of a block of variants padded to ``width`` het states."""
    from scipy.special import gammaln, logsumexp  # at the HWE step: pca imports this module

    k = np.arange(width)[None, :]
    h = (rare % 2)[:, None] + 2 * k  # candidate het counts
    valid = h <= rare[:, None]
    h = np.where(valid, h, 0)
    homr = (rare[:, None] - h) // 2
    homc = n[:, None] - h - homr
    homc = np.where(valid, homc, 0)
    logp = h * np.log(2.0) - gammaln(h + 1.0) - gammaln(homr + 1.0) - gammaln(homc + 1.0)
    logp = np.where(valid, logp, -np.inf)
    obs = logp[np.arange(len(het)), (het - rare % 2) // 2]
    tail = logp <= obs[:, None] + _TIE_LOG_TOL * np.maximum(1.0, np.abs(obs[:, None]))
    log_tail = logsumexp(np.where(tail, logp, -np.inf), axis=1)
    log_all = logsumexp(logp, axis=1)
    return np.minimum(1.0, np.exp(log_tail - log_all))


def founder_mask(samples: pl.DataFrame) -> np.ndarray:
    """Boolean mask of founders: father and mother both ``0`` in the ``.fam`` (plink2's rule)."""
    return ((samples.get_column("father") == "0") & (samples.get_column("mother") == "0")).to_numpy()


def sample_missing_rates(genotypes: Genotypes, *, chunk_size: int = 2000) -> np.ndarray:
    """Per-sample missing call rate over all variants (one streamed pass).

    Returns
    -------
    numpy.ndarray
        float64, one rate per sample of ``genotypes``, in its order.
    """
    missing = np.zeros(genotypes.n_samples, dtype=np.int64)
    for _, dos in genotypes.chunks(np.arange(genotypes.n_variants), chunk_size):
        # plink2 --mind counts a dosage without a hard call as missing
        hc = dos if genotypes.hard_calls_only else hard_calls(dos)
        missing += np.isnan(hc).sum(axis=1)
    return missing / genotypes.n_variants


def _variant_chunk_stats(dos: np.ndarray, founders: np.ndarray, hc: np.ndarray | None = None
                         ) -> dict[str, np.ndarray]:
    """Call counts, founder genotype counts and allele counts of one dosage chunk.

    ``hc`` holds the hard calls of ``dos`` (:func:`crosscohort.tre.genotypes.hard_calls`;
    None when ``dos`` holds hard calls only). As plink2: call rates and the
    HWE genotype counts come from hard calls, allele frequencies and counts
    (``--freq``, ``--maf``, ``--mac``) from dosages, over the samples with a dosage.
    """
    hc = dos if hc is None else hc
    called = ~np.isnan(hc)
    n_called = called.sum(axis=0)
    f = hc[founders]
    n_het = (f == 1.0).sum(axis=0)
    n_alt2 = (f == 2.0).sum(axis=0)
    n_ref2 = (f == 0.0).sum(axis=0)
    fd = dos[founders]
    has_dosage = ~np.isnan(fd)
    n_obs_alleles = 2 * has_dosage.sum(axis=0)
    # exact for hard calls: a float sum of small integers
    alt_count = np.where(has_dosage, fd, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        alt_freq = alt_count / n_obs_alleles
    mac = np.minimum(alt_count, n_obs_alleles - alt_count)
    return {
        "n_called": n_called,
        "missing_rate": 1.0 - n_called / dos.shape[0],
        "alt_freq": alt_freq,
        "mac": mac,
        "n_obs_alleles": n_obs_alleles,
        "hwe_p": hwe_exact_p(n_het, n_alt2, n_ref2),
    }


def run_qc(
    genotypes: Genotypes,
    *,
    cohort: str,
    thresholds: QcThresholds = QcThresholds(),  # noqa: B008 - frozen, immutable default
    chunk_size: int = 2000,
    nonfounders: bool = False,
    king_cutoff: float | None = KING_THIRD_DEGREE,
    relatives_min_kinship: float | None = None,
    king_memory_bytes: int = 512 * 2**20,
    log: TextIO | None = None,
) -> QcResult:
    """Apply plink2's ``--mind``, ``--geno``, ``--hwe``, ``--maf``, ``--mac`` to one cohort.

    Parameters
    ----------
    genotypes
        The cohort's genotypes (one or more stacked filesets).
    cohort
        Cohort id written into the ledgers.
    thresholds
        The rules' thresholds (plink2's flags of the same names).
    chunk_size
        Variants read per chunk; memory is ``n_samples * chunk_size * 8`` bytes.
    nonfounders
        Use every sample, not only founders, for frequencies, MAC and HWE
        (plink2's ``--nonfounders``).
    king_cutoff
        Remove one sample of each pair with KING-robust kinship above this
        (plink2 ``--king-cutoff``); None turns it off. Kinship uses the kept
        samples and the kept autosomal variants.
    relatives_min_kinship
        Also report every pair with KING-robust kinship above this (in
        ``king_pairs``), whatever the cutoff removes: the related pairs
        whole-genome regression calibrates for (``relatives_min_kinship`` of
        the config schema: 0.0442, third degree or closer). None: only the
        pairs above ``king_cutoff``. KING runs when either is set, once.
    king_memory_bytes
        Memory budget of the kinship counts (see :mod:`crosscohort.tre.relatedness`).

    Returns
    -------
    QcResult
        Kept samples, per-variant statistics with the reason of removal, ledgers.

    Raises
    ------
    InputError
        On invalid thresholds, duplicate variant IDs (a keep list of IDs would
        be ambiguous) or when every sample fails ``--mind``.

    Notes
    -----
    Two streamed passes: sample missingness over all variants, then variant
    statistics on the samples kept. A variant failing several rules is
    counted under the first, in the order geno, hwe, maf, mac.
    """
    thresholds.check()
    ids = genotypes.variants.get_column("id")
    dup = ids.filter(ids.is_duplicated())
    if dup.len():
        raise InputError(
            f"variant ID {dup[0]!r} appears {int((ids == dup[0]).sum())} times in the .bim: "
            "QC keep lists are by ID, so IDs must be unique (e.g. plink2 --set-all-var-ids)"
        )
    rate = sample_missing_rates(genotypes, chunk_size=chunk_size)
    keep = ~(rate > thresholds.mind * (1 + _EPS))
    if not keep.any():
        raise InputError(
            f"--mind {thresholds.mind}: every sample fails (lowest missing call rate {rate.min():.4g})"
        )
    sample_index = np.flatnonzero(keep)
    founders = np.ones(len(sample_index), dtype=bool)
    if not nonfounders:
        founders = founder_mask(genotypes.samples)[sample_index]

    parts: dict[str, list[np.ndarray]] = {}
    for _, dos in genotypes.chunks(np.arange(genotypes.n_variants), chunk_size, sample_index):
        hc = None if genotypes.hard_calls_only else hard_calls(dos)
        for key, val in _variant_chunk_stats(dos, founders, hc).items():
            parts.setdefault(key, []).append(val)
    st = {k: np.concatenate(v) for k, v in parts.items()}

    with np.errstate(invalid="ignore"):
        maf = np.minimum(st["alt_freq"], 1.0 - st["alt_freq"])
        fails = {
            "call_rate_below_geno": st["missing_rate"] > thresholds.geno * (1 + _EPS),
            "hwe_below": st["hwe_p"] < thresholds.hwe * (1 - _EPS),
            # no founder call: no frequency, cannot pass a frequency rule
            "maf_below": ~(maf >= thresholds.maf * (1 - _EPS)),
            "mac_below": st["mac"] < thresholds.mac * (1 - _EPS),
        }
    reason = np.full(genotypes.n_variants, "", dtype=object)
    undecided = np.ones(genotypes.n_variants, dtype=bool)
    vledger = Ledger(stage="qc", cohort=cohort, unit="variants", n_in=genotypes.n_variants)
    for name in VARIANT_REASONS:
        hit = fails[name] & undecided
        reason[hit] = name
        undecided &= ~hit
        vledger.remove(name, int(hit.sum()))
    vledger.n_kept = int(undecided.sum())

    sledger = Ledger(stage="qc", cohort=cohort, unit="samples", n_in=genotypes.n_samples)
    sledger.remove(SAMPLE_REASON, int((~keep).sum()))
    sample_reason = np.where(keep, "", SAMPLE_REASON).astype(object)
    king_pairs: pl.DataFrame | None = None
    if king_cutoff is not None or relatives_min_kinship is not None:
        keep, king_pairs, n_related = _apply_king(
            genotypes, keep, np.flatnonzero(undecided), cutoff=king_cutoff,
            floor=relatives_min_kinship, chunk_size=chunk_size, memory_bytes=king_memory_bytes, log=log)
        if king_cutoff is not None:
            sledger.remove(KING_REASON, n_related)
        sample_reason[~keep & (sample_reason == "")] = KING_REASON
    sledger.n_kept = int(keep.sum())

    stats = pl.DataFrame(
        {
            "id": ids,
            "n_called": st["n_called"].astype(np.int64),
            "alt_freq": st["alt_freq"].astype(np.float64),
            "mac": st["mac"].astype(np.float64),
            "missing_rate": st["missing_rate"].astype(np.float64),
            "hwe_p": st["hwe_p"].astype(np.float64),
            "qc_reason": pl.Series(reason.tolist(), dtype=pl.String),
        }
    ).with_columns(pl.col("alt_freq").fill_nan(None))
    samples = genotypes.samples.with_columns(
        pl.Series("keep", keep), pl.Series("missing_rate", rate),
        pl.Series("qc_reason", sample_reason.tolist(), dtype=pl.String),
    )
    return QcResult(samples, stats, sledger.check(), vledger.check(), king_pairs)


def _apply_king(genotypes: Genotypes, keep: np.ndarray, variant_index: np.ndarray, *,
                cutoff: float | None, floor: float | None, chunk_size: int, memory_bytes: int,
                log: TextIO | None) -> tuple[np.ndarray, pl.DataFrame, int]:
    """KING on the kept samples: (keep mask after ``--king-cutoff``, pairs above the lower bound, removed count).

    One kinship pass at the lower of ``cutoff`` and ``floor``; the cutoff's
    removal uses the pairs above ``cutoff`` only (None: nobody removed).
    """
    log = log if log is not None else sys.stderr
    sample_index = np.flatnonzero(keep)
    threshold = min(t for t in (cutoff, floor) if t is not None)
    what = "--king-cutoff" if floor is None else "KING"
    try:
        res = king_related_pairs(genotypes, threshold=threshold, sample_index=sample_index,
                                 variant_index=variant_index, chunk_size=chunk_size,
                                 memory_bytes=memory_bytes)
    except InputError as exc:
        print(f"qc: {what} (kinship above {threshold}): not applied: {exc}", file=log)
        return keep, _pairs_frame(genotypes, sample_index, None), 0
    pr = res.pairs
    removed = np.zeros(sample_index.size, dtype=bool)
    if cutoff is not None:
        above = pr.filter(pl.col("kinship") > cutoff)
        removed = king_cutoff_removal(sample_index.size, above["i"].to_numpy(), above["j"].to_numpy())
    new_keep = keep.copy()
    new_keep[sample_index[removed]] = False
    pairs = _pairs_frame(genotypes, sample_index, pr)
    print(f"qc: KING-robust kinship of {sample_index.size} samples on {res.n_variants} autosomal variants: "
          f"{pr.height} pairs above {threshold}"
          + (f"; --king-cutoff {cutoff}: {int(removed.sum())} samples removed" if cutoff is not None
             else "; --king-cutoff none: nobody removed"), file=log)
    return new_keep, pairs, int(removed.sum())


def _pairs_frame(genotypes: Genotypes, sample_index: np.ndarray, pr: pl.DataFrame | None) -> pl.DataFrame:
    """KING pairs (positions in ``sample_index``) with the samples' IDs; empty when ``pr`` is None."""
    if pr is None:
        return pl.DataFrame(schema={"fid1": pl.String, "iid1": pl.String, "fid2": pl.String, "iid2": pl.String,
                                    "nsnp": pl.Int64, "hethet": pl.Float64, "ibs0": pl.Float64,
                                    "kinship": pl.Float64})
    ids = genotypes.samples.select("fid", "iid")[sample_index]
    a = ids[pr["i"].to_numpy()]
    b = ids[pr["j"].to_numpy()]
    return pl.DataFrame({
        "fid1": a["fid"], "iid1": a["iid"], "fid2": b["fid"], "iid2": b["iid"],
        "nsnp": pr["nsnp"], "hethet": pr["hethet"], "ibs0": pr["ibs0"], "kinship": pr["kinship"],
    })


def write_qc(result: QcResult, out_prefix: str | Path) -> dict[str, Path]:
    """Write the QC outputs next to ``out_prefix``; returns them by kind.

    Files: ``O.samples.keep`` (``#FID<TAB>IID``), ``O.variants.keep`` (one
    ``.bim`` ID a line), ``O.ledger.json`` (list: samples ledger, variants
    ledger), ``O.variant_stats.tsv.gz`` and, when KING ran (a cutoff or
    ``relatives_min_kinship``), ``O.king.tsv``: the related pairs in plink2's
    ``.kin0`` columns (``#FID1 IID1 FID2 IID2 NSNP HETHET IBS0 KINSHIP``;
    header only when there are none), the table ``crosscohort assoc
    --relatives`` reads. It names individuals: it stays inside the TRE (the
    export gate is never given it). Each file appears only once complete.
    """
    prefix = str(out_prefix)
    paths = {
        "samples": Path(prefix + ".samples.keep"),
        "variants": Path(prefix + ".variants.keep"),
        "ledger": Path(prefix + ".ledger.json"),
        "variant_stats": Path(prefix + ".variant_stats.tsv.gz"),
    }
    kept = result.samples.filter(pl.col("keep"))
    lines = ["#FID\tIID"] + [f"{f}\t{i}" for f, i in kept.select("fid", "iid").iter_rows()]
    write_bytes(paths["samples"], ("\n".join(lines) + "\n").encode())
    ids = result.kept_variant_ids
    write_bytes(paths["variants"], "".join(f"{v}\n" for v in ids).encode())
    ledgers = [result.sample_ledger.to_dict(), result.variant_ledger.to_dict()]
    write_bytes(paths["ledger"], (json.dumps(ledgers, indent=2, sort_keys=True) + "\n").encode())
    text = result.variant_stats.write_csv(separator="\t", null_value="NA", float_precision=None)
    # mtime=0: the same content gives the same bytes (stable checksums)
    write_bytes(paths["variant_stats"], gzip.compress(text.encode(), compresslevel=6, mtime=0))
    if result.king_pairs is not None:
        paths["king"] = Path(prefix + ".king.tsv")
        kp = result.king_pairs.rename({"fid1": "#FID1", "iid1": "IID1", "fid2": "FID2", "iid2": "IID2",
                                       "nsnp": "NSNP", "hethet": "HETHET", "ibs0": "IBS0",
                                       "kinship": "KINSHIP"})
        write_bytes(paths["king"], kp.write_csv(separator="\t", float_precision=None).encode())
    return paths
