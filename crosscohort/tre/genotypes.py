"""Genotype sources: PLINK 1 ``.bed/.bim/.fam``, PLINK 2, BGEN v1.2, VCF/BCF, read in variant chunks.

A :class:`Genotypes` is one fileset, or several filesets with identical
variant lists whose samples are concatenated (the pooled arm). Dosages are
counts of the ALT allele (``variants.a1``, the effect allele), as plink2
counts them; missing calls are NaN.

PLINK 1 filesets (a plain prefix) are decoded from the packed 2-bit calls
by the compiled kernels of :mod:`crosscohort.tre._bed` (the fast path). Other
containers are given as :class:`~crosscohort.tre.genotype_formats.GenotypeSource`
and read by the small classes of :mod:`crosscohort.tre.genotype_formats`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from crosscohort.contract.errors import InputError
from crosscohort.contract.table_io import read_text
from crosscohort.tre import _bed
from crosscohort.tre.genotype_formats import Container, GenotypeSource, open_container

__all__ = ["HARD_CALL_THRESHOLD", "Genotypes", "GenotypeSource", "hard_calls", "read_bim", "read_fam",
           "read_id_list"]

_BED_MAGIC = bytes([0x6C, 0x1B, 0x01])

#: plink2's default ``--hard-call-threshold``: a dosage within this of 0, 1 or 2 is that hard call.
HARD_CALL_THRESHOLD = 0.1


def hard_calls(dosages: np.ndarray, threshold: float = HARD_CALL_THRESHOLD) -> np.ndarray:
    """Hard calls (0, 1, 2; NaN = none) of ALT dosages, as plink2 derives them on import.

    Parameters
    ----------
    dosages
        float ALT dosages in [0, 2], any shape; NaN = missing.
    threshold
        plink2's ``--hard-call-threshold``: a dosage whose distance to the
        nearest integer is at most this becomes that integer; a dosage
        further from every hard call has no hard call (NaN).

    Returns
    -------
    numpy.ndarray
        float64, same shape. Hard-call input is returned unchanged.

    Notes
    -----
    plink2 measures the distance as ``0.5 * sum_i |x_i - round(x_i)|`` over
    the allele dosages ``x_i``; for a biallelic variant (``x = (d, 2 - d)``)
    that is ``|d - round(d)|``. Which statistics use hard calls and which
    dosages follows plink2: call rates (``--geno``/``--mind`` without their
    ``dosage`` modifier), the Hardy-Weinberg test, KING kinship, LD pruning
    (``--indep-pairwise``: unphased hard-call r²) and clumping use hard
    calls; allele frequencies, MAF/MAC (``--freq``, ``--maf``, ``--mac``)
    and PCA use dosages.
    """
    d = np.asarray(dosages, dtype=np.float64)
    r = np.rint(d)
    with np.errstate(invalid="ignore"):
        far = np.abs(d - r) > threshold * (1 + 2.0**-44)
    return np.where(far, np.nan, r)


def read_bim(path: str | Path) -> pl.DataFrame:
    """Read a ``.bim`` file: columns ``chrom, id, cm, pos, a1, a2`` (a1 = ALT, counted)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file (the .bim of a PLINK 1 fileset)")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; expected the .bim of a PLINK 1 fileset")
    try:
        df = pl.read_csv(
            path,
            separator="\t",
            has_header=False,
            new_columns=["chrom", "id", "cm", "pos", "a1", "a2"],
            schema_overrides={"chrom": pl.String, "id": pl.String, "cm": pl.Float64,
                              "pos": pl.Int64, "a1": pl.String, "a2": pl.String},
        )
    except pl.exceptions.PolarsError as exc:
        if "utf-8" in str(exc).lower():  # name the line: read_text finds the byte
            read_text(path, ".bim of a PLINK 1 fileset")
        raise InputError(f"{path}: not a 6-column tab-separated .bim file ({str(exc).splitlines()[0]})") from exc
    if df.height == 0:
        raise InputError(f"{path}: no variants")
    # polars reads a blank line as a row of nulls and a cut line as a short row filled with
    # nulls: the .bed would then be checked against a wrong count, or a variant lose its alleles.
    cut = df.select(pl.any_horizontal(pl.col("chrom", "id", "pos", "a1", "a2").is_null()).arg_true().first()).item()
    if cut is not None:
        raise InputError(f"{path}, line {cut + 1}: blank, or fewer than 6 fields; rule: each line of a "
                         f".bim is 'chrom id cm pos a1 a2', tab-separated, one per variant of the .bed")
    return df


def read_fam(path: str | Path) -> pl.DataFrame:
    """Read a ``.fam`` file: ``fid, iid, father, mother, sex, pheno`` (sex 1 = male, 2 = female, 0 = unknown)."""
    path = Path(path)
    rows = []
    for lineno, line in enumerate(read_text(path, ".fam of a PLINK 1 fileset").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 6:
            raise InputError(f"{path}, line {lineno}: expected 6 fields (FID IID father mother sex pheno), got {len(parts)}")
        rows.append(parts)
    if not rows:
        raise InputError(f"{path}: no samples")
    df = pl.DataFrame(rows, schema=["fid", "iid", "father", "mother", "sex", "pheno"], orient="row")
    return df.with_columns(pl.col("sex").cast(pl.Int64, strict=False).fill_null(0))


def read_id_list(path: str | Path) -> list[str]:
    """Read a one-column ID list (``.variants.keep``), ignoring ``#`` lines."""
    text = read_text(path, "variant ID list (--extract)")
    return [ln.split()[0] for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


@dataclass(frozen=True)
class _Fileset:
    prefix: Path
    n_samples: int
    n_variants: int
    #: None for a PLINK 1 fileset (packed fast path), else the container reader.
    container: Container | None = None


class Genotypes:
    """One or more genotype filesets read as a samples x variants dosage matrix.

    Parameters
    ----------
    prefixes
        PLINK 1 fileset prefixes (without ``.bed``), or
        :class:`~crosscohort.tre.genotype_formats.GenotypeSource` for a PLINK 2,
        BGEN or VCF/BCF input (mixing is allowed). With several, their
        variant lists (chrom, id, pos, alleles) must be identical and their
        samples are stacked in order.
    """

    def __init__(self, prefixes: Sequence[str | Path | GenotypeSource]):
        if not prefixes:
            raise InputError("no genotype input given (--bfile, --pfile, --bgen or --vcf)")
        self._sets: list[_Fileset] = []
        fams = []
        bim0: pl.DataFrame | None = None
        for src in prefixes:
            if isinstance(src, GenotypeSource) and src.format != "bfile":
                container = open_container(src)
                bim, fam, p = container.variants, container.samples, Path(src.path)
            else:
                container = None
                p = Path(src)
                bim = read_bim(p.with_name(p.name + ".bim"))
                fam = read_fam(p.with_name(p.name + ".fam"))
                bed = p.with_name(p.name + ".bed")
                self._check_bed(bed, fam.height, bim.height)
            if bim0 is None:
                bim0 = bim
            elif not bim.select("chrom", "id", "pos", "a1", "a2").equals(
                bim0.select("chrom", "id", "pos", "a1", "a2")
            ):
                raise InputError(
                    f"{src} differs from {prefixes[0]} in its variants: filesets analysed together must hold the same variants in the same order"
                )
            fams.append(fam.with_columns(pl.lit(str(p)).alias("source")))
            self._sets.append(_Fileset(p, fam.height, bim.height, container))
        assert bim0 is not None
        self._sources = list(prefixes)
        self.variants: pl.DataFrame = bim0
        self.samples: pl.DataFrame = pl.concat(fams)
        dup = self.samples.group_by("fid", "iid").len().filter(pl.col("len") > 1)
        if dup.height:
            first = dup.row(0)
            raise InputError(f"sample FID={first[0]} IID={first[1]} appears {first[2]} times across {', '.join(map(str, prefixes))}")

    @staticmethod
    def _check_bed(bed: Path, n_samples: int, n_variants: int) -> None:
        if not bed.exists():
            raise InputError(f"{bed}: no such file (the .bed of a PLINK 1 fileset)")
        with open(bed, "rb") as fh:
            magic = fh.read(3)
        if magic != _BED_MAGIC:
            raise InputError(f"{bed}: not a variant-major PLINK 1 .bed file (bad magic bytes {magic.hex()})")
        expected = 3 + n_variants * ((n_samples + 3) // 4)
        size = bed.stat().st_size
        if size != expected:
            raise InputError(
                f"{bed}: {size} bytes, expected {expected} for {n_samples} samples x {n_variants} variants "
                "(truncated, or .bim/.fam from another fileset)"
            )

    @property
    def n_samples(self) -> int:
        return self.samples.height

    @property
    def hard_calls_only(self) -> bool:
        """Whether every input holds hard calls only (``.bed``, VCF ``GT``), so dosages need no rounding."""
        return all(s.hard_calls_only if isinstance(s, GenotypeSource) else True for s in self._sources)

    def read_hard_calls(self, variant_index: np.ndarray | slice,
                        sample_index: np.ndarray | None = None) -> np.ndarray:
        """Hard calls of the given variants (:meth:`read` through :func:`hard_calls`)."""
        dos = self.read(variant_index, sample_index)
        return dos if self.hard_calls_only else hard_calls(dos)

    @property
    def n_variants(self) -> int:
        return self.variants.height

    def read(self, variant_index: np.ndarray | slice, sample_index: np.ndarray | None = None) -> np.ndarray:
        """Dosages (float64, samples x variants, NaN = missing) of the given variants.

        ``sample_index`` indexes the stacked samples (all when None) and must
        be increasing, as :meth:`sample_index` returns it. The result is in
        Fortran order (each variant's dosages contiguous), the layout the
        association kernels and BLAS read fastest.

        Notes
        -----
        The packed 2-bit calls of the requested variants are read straight
        from the ``.bed`` (one read per run of consecutive variants) and
        decoded through a 4-entry table by a compiled kernel
        (:mod:`crosscohort.tre._bed`); memory is the packed block plus the
        float64 result, whatever the size of the file.
        """
        if sample_index is not None:
            sample_index = np.asarray(sample_index, dtype=np.int64)
            if np.any(np.diff(sample_index) <= 0):
                raise ValueError("sample_index must be strictly increasing")
        vi = np.arange(self.n_variants)[variant_index] if isinstance(variant_index, slice) else \
            np.asarray(variant_index, dtype=np.int64).reshape(-1)
        if vi.size and (vi.min() < 0 or vi.max() >= self.n_variants):
            raise IndexError(f"variant index out of range 0..{self.n_variants - 1}")
        n_out = self.n_samples if sample_index is None else int(sample_index.size)
        out = np.empty((vi.size, n_out), dtype=np.float64)  # variant-major; returned transposed
        start = row0 = 0
        for fs in self._sets:
            stop = start + fs.n_samples
            if sample_index is None:
                local = None
                width = fs.n_samples
            else:
                lo, hi = np.searchsorted(sample_index, [start, stop])
                local = sample_index[lo:hi] - start
                width = int(local.size)
                if width == 0:
                    start = stop
                    continue
                if width == fs.n_samples:  # every sample of this fileset: the faster full decode
                    local = None
            if fs.container is not None:
                out[:, row0 : row0 + width] = fs.container.read(vi, local)
            else:
                bed = fs.prefix.with_name(fs.prefix.name + ".bed")
                packed = _bed.read_packed(bed, vi, fs.n_samples)
                _bed.decode_dosages(packed, fs.n_samples, samples=local, out=out, row0=row0)
            row0 += width
            start = stop
        return out.T

    def chunks(self, variant_index: np.ndarray, size: int, sample_index: np.ndarray | None = None
               ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(variant_index_chunk, dosages)`` over ``variant_index`` in chunks of ``size``."""
        if size < 1:
            raise InputError(f"chunk size must be at least 1; got {size}")
        for s in range(0, len(variant_index), size):
            vi = np.asarray(variant_index[s : s + size])
            yield vi, self.read(vi, sample_index)

    def sample_index(self, keep: pl.DataFrame | None, *, require_all: bool = False) -> np.ndarray:
        """Indices of the samples listed in ``keep``, in genotype order.

        ``keep`` has columns ``fid`` and ``iid`` (:func:`crosscohort.tre.phenotypes.read_sample_list`);
        a list whose ``fid`` is all null (IIDs only) is matched on IID alone. With
        ``require_all``, a listed sample absent from the genotypes is an error.
        """
        if keep is None:
            return np.arange(self.n_samples)
        cols = ["iid"] if keep.get_column("fid").is_null().all() else ["fid", "iid"]
        if require_all:
            missing = keep.join(self.samples, on=cols, how="anti")
            if missing.height:
                first = missing.row(0, named=True)
                raise InputError(f"--keep lists {missing.height} sample(s) absent from the .fam, "
                                 f"e.g. FID={first['fid']} IID={first['iid']}")
        idx = self.samples.with_row_index("_i").join(keep.select(cols), on=cols, how="semi")
        return np.sort(idx.get_column("_i").to_numpy()).astype(np.int64)

    def variant_index(self, extract: Sequence[str] | None) -> np.ndarray:
        """Indices of the variants whose ID is in ``extract``, in file order."""
        if extract is None:
            return np.arange(self.n_variants)
        mask = self.variants.get_column("id").is_in(list(extract)).to_numpy()
        return np.flatnonzero(mask)
