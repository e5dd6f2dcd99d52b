"""Genotype containers other than PLINK 1: PLINK 2 ``.pgen``, BGEN v1.2, VCF/BCF.

:class:`crosscohort.tre.genotypes.Genotypes` is the public face. Each container
here is one small class with the same three members, the internal protocol
:class:`Container`:

``samples``
    ``fid, iid, father, mother, sex, pheno`` (as a ``.fam``; sex 1 = male,
    2 = female, 0 = unknown).
``variants``
    ``chrom, id, cm, pos, a1, a2`` (as a ``.bim``; ``a1`` is the counted ALT
    allele, the effect allele).
``read(variant_index, sample_index)``
    float64 dosages of ``a1``, **variants x samples**, NaN = missing.

Which allele is counted, per container
--------------------------------------
- ``.pgen``: the ``.pvar`` ALT (pgenlib's ALT1 dosage), as plink2 counts it.
- BGEN: the second allele of each variant by default (``ref_first=True``:
  the first allele is REF, the layout of UK Biobank's files and plink2's
  ``--bgen ... ref-first``). plink2 ``--export bgen-1.2`` writes **ALT
  first** (ref-last) unless given ``ref-first``; read such files with
  ``ref_first=False`` (``--bgen-ref last``), which counts the first allele.
- VCF/BCF: the ALT. ``field="auto"`` reads FORMAT ``DS`` when the header
  declares it, else ``GT``; haploid calls (males' chrX as plink2 exports
  them) count 0/2, as plink2 does.

A VCF holds sample IDs only: a ``.psam`` or ``.fam`` of the same samples in
the same order (``GenotypeSource.sample``; ``--psam`` on the command line)
gives their FIDs, parents and sex, which chromosome X association (sex) and
founder-only QC frequencies (parents) need.

Samples without a family ID (``.psam`` with ``#IID`` only, VCF) get FID
``0``, as plink2 writes them to a ``.fam``, so a phenotype file written for
the PLINK 1 fileset still matches (phenotype files with IIDs only match on
IID anyway).

Multi-allelic variants are refused (split them with ``plink2
--make-pgen --max-alleles 2`` or ``bcftools norm -m-``): the output has one
effect allele per row.

References
----------
PLINK 2 formats: https://www.cog-genomics.org/plink/2.0/formats ;
BGEN v1.2: https://www.well.ox.ac.uk/~gav/bgen_format/spec/v1.2.html ;
VCF 4.3: https://samtools.github.io/hts-specs/VCFv4.3.pdf
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import polars as pl

from crosscohort.contract.errors import InputError
from crosscohort.contract.table_io import raise_first_non_utf8, read_text, utf8_line

__all__ = [
    "GenotypeSource",
    "Container",
    "PgenContainer",
    "BgenContainer",
    "VcfContainer",
    "open_container",
    "read_psam",
    "read_pvar",
    "read_bgen_sample",
    "container_files",
    "vcf_sample_sidecar",
]

Format = Literal["bfile", "pfile", "bgen", "vcf"]

_FAM_COLUMNS = ["fid", "iid", "father", "mother", "sex", "pheno"]
_PGEN_MAGIC = bytes([0x6C, 0x1B])


@dataclass(frozen=True)
class GenotypeSource:
    """One genotype input and its container, as named on the command line.

    It is path-like (``os.fspath`` gives ``path``), so code that takes a
    PLINK 1 prefix (a cohort name from ``Path(x).name``, a message) works
    unchanged with any container.

    Parameters
    ----------
    format
        ``bfile`` (PLINK 1 prefix), ``pfile`` (PLINK 2 prefix), ``bgen``
        (a ``.bgen`` file) or ``vcf`` (``.vcf``, ``.vcf.gz`` or ``.bcf``).
    path
        The prefix or file.
    sample
        BGEN: the ``.sample`` file (default: ``path`` with ``.sample`` in
        place of ``.bgen``). VCF: an optional ``.psam`` or ``.fam`` giving
        the FIDs, parents and sex a VCF does not hold (its IIDs must be the
        VCF's, in the same order), as plink2's ``--vcf ... --psam``.
    bgen_ref_first
        BGEN only: True when the first allele is REF (the second, ALT, is
        counted); False for plink2's default ref-last export.
    vcf_field
        VCF only: ``auto`` (DS when declared, else GT), ``GT`` or ``DS``.
    """

    format: Format
    path: str
    sample: str | None = None
    bgen_ref_first: bool = True
    vcf_field: Literal["auto", "GT", "DS"] = "auto"

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path

    @property
    def hard_calls_only(self) -> bool:
        """Whether every dosage read is a hard call (0, 1, 2 or missing) by construction.

        PLINK 1 ``.bed`` and VCF ``GT`` hold hard calls only; a ``.pgen``, a
        BGEN or a VCF ``DS`` field may hold fractional dosages, from which QC
        derives hard calls as plink2 does (:func:`crosscohort.tre.genotypes.hard_calls`).
        """
        return self.format == "bfile" or (self.format == "vcf" and self.vcf_field == "GT")


class Container(Protocol):
    """What :class:`crosscohort.tre.genotypes.Genotypes` needs of one container."""

    samples: pl.DataFrame
    variants: pl.DataFrame

    def read(self, variant_index: np.ndarray, sample_index: np.ndarray | None) -> np.ndarray:
        """Dosages of ``a1``, float64 variants x samples, NaN = missing."""
        ...


def vcf_sample_sidecar(path: str | Path) -> Path:
    """The ``.psam`` a workflow looks for beside a VCF: ``x.vcf.gz`` -> ``x.psam`` (used when present)."""
    p = Path(path)
    name = p.name
    for suffix in (".vcf.gz", ".vcf.bgz", ".vcf", ".bcf"):
        if name.endswith(suffix):
            return p.with_name(name.removesuffix(suffix) + ".psam")
    return p.with_name(name + ".psam")


def container_files(format: Format, path: str, *, sample: str | None = None) -> list[str]:
    """The files one genotype input is read from, as paths in the form given (for existence checks, DAGs).

    ``bfile``: ``P.bed/.bim/.fam``; ``pfile``: ``P.pgen/.pvar/.psam``;
    ``bgen``: the file and its ``.sample`` (``sample``, default beside it);
    ``vcf``: the file, and ``sample`` (a ``.psam``/``.fam``) when given.
    """
    if format == "bfile":
        return [f"{path}{ext}" for ext in (".bed", ".bim", ".fam")]
    if format == "pfile":
        return [f"{path}{ext}" for ext in (".pgen", ".pvar", ".psam")]
    if format == "bgen":
        return [path, sample if sample is not None else str(Path(path).with_suffix(".sample"))]
    if format == "vcf":
        return [path] + ([sample] if sample is not None else [])
    raise ValueError(f"unknown genotype format {format!r}; expected bfile, pfile, bgen or vcf")


def open_container(source: GenotypeSource) -> Container:
    """The container reader for ``source`` (not PLINK 1, which :mod:`crosscohort.tre.genotypes` keeps)."""
    if source.format == "pfile":
        return PgenContainer(source.path)
    if source.format == "bgen":
        return BgenContainer(source.path, sample=source.sample, ref_first=source.bgen_ref_first)
    if source.format == "vcf":
        return VcfContainer(source.path, field=source.vcf_field, sample=source.sample)
    raise ValueError(f"no container reader for format {source.format!r}")


# ---------------------------------------------------------------- text side files


def _require(path: Path, what: str) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file ({what})")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; expected {what}")


def _fam_frame(rows: list[list[str]]) -> pl.DataFrame:
    df = pl.DataFrame(rows, schema=_FAM_COLUMNS, orient="row")
    return df.with_columns(pl.col("sex").cast(pl.Int64, strict=False).fill_null(0))


def read_psam(path: str | Path) -> pl.DataFrame:
    """Read a ``.psam`` (or ``.fam``-layout) file as ``fid, iid, father, mother, sex, pheno``.

    A header line starting ``#FID`` or ``#IID`` names the columns (``SEX``,
    ``PAT``, ``MAT`` and the first phenotype are used); without one the
    file is read as a ``.fam``. Missing FIDs become ``0`` (plink2's .fam
    export does the same).
    """
    path = Path(path)
    _require(path, "the .psam of a PLINK 2 fileset")
    header: list[str] | None = None
    rows: list[list[str]] = []
    for lineno, line in enumerate(read_text(path, ".psam of a PLINK 2 fileset").splitlines(), 1):
        parts = line.split()
        if not parts or line.startswith("##"):
            continue
        if header is None and not rows and parts[0] in ("#FID", "#IID"):
            header = [parts[0][1:]] + parts[1:]
            continue
        width = len(header) if header is not None else 6
        if len(parts) != width:
            raise InputError(f"{path}, line {lineno}: expected {width} fields, got {len(parts)}")
        if header is None:
            rows.append(parts)
            continue
        rec = dict(zip(header, parts, strict=True))
        pheno_cols = [c for c in header if c not in ("FID", "IID", "SID", "PAT", "MAT", "SEX")]
        rows.append([
            rec.get("FID", "0"), rec["IID"], rec.get("PAT", "0"), rec.get("MAT", "0"),
            {"1": "1", "2": "2", "M": "1", "F": "2", "m": "1", "f": "2"}.get(rec.get("SEX", "0"), "0"),
            rec[pheno_cols[0]] if pheno_cols else "-9",
        ])
    if not rows:
        raise InputError(f"{path}: no samples")
    return _fam_frame(rows)


def read_pvar(path: str | Path) -> pl.DataFrame:
    """Read a ``.pvar`` (or ``.bim``-layout) file as ``chrom, id, cm, pos, a1, a2`` (a1 = ALT)."""
    path = Path(path)
    _require(path, "the .pvar of a PLINK 2 fileset")
    header: list[str] | None = None
    skip = 0
    with open(path, "rb") as fh:
        for i, raw_line in enumerate(fh):
            line = utf8_line(raw_line, path=path, line=i + 1)
            if line.startswith("##"):
                skip += 1
                continue
            if line.startswith("#CHROM"):
                header = line[1:].split()
                skip += 1
            break
    try:
        if header is None:  # .bim layout: chrom id cm pos a1(ALT) a2(REF)
            raw = pl.read_csv(path, separator="\t", has_header=False, skip_rows=skip,
                              new_columns=["CHROM", "ID", "CM", "POS", "ALT", "REF"],
                              infer_schema=False)
        else:
            raw = pl.read_csv(path, separator="\t", has_header=False, skip_rows=skip,
                              new_columns=header, infer_schema=False)
    except pl.exceptions.PolarsError as exc:
        raise_first_non_utf8(path)  # text that is not UTF-8: named by its line
        raise InputError(f"{path}: not a tab-separated .pvar file ({str(exc).splitlines()[0]})") from exc
    missing = [c for c in ("CHROM", "POS", "ID", "REF", "ALT") if c not in raw.columns]
    if missing:
        raise InputError(f"{path}: header lacks column(s) {', '.join(missing)}")
    if raw.height == 0:
        raise InputError(f"{path}: no variants")
    df = raw.select(
        pl.col("CHROM").alias("chrom"),
        pl.col("ID").alias("id"),
        (pl.col("CM") if "CM" in raw.columns else pl.lit("0")).cast(pl.Float64, strict=False)
        .fill_null(0.0).alias("cm"),
        pl.col("POS").cast(pl.Int64, strict=False).alias("pos"),
        pl.col("ALT").alias("a1"),
        pl.col("REF").alias("a2"),
    )
    bad = df.with_row_index("_i").filter(pl.col("pos").is_null())
    if bad.height:
        i = int(bad.get_column("_i")[0])
        raise InputError(f"{path}, variant {i + 1}: POS {raw.get_column('POS')[i]!r} is not an integer")
    _refuse_multiallelic(df, path)
    return _fill_ids(df)


def _fill_ids(df: pl.DataFrame) -> pl.DataFrame:
    """Variants without an ID ('.' or empty) get ``chrom:pos:ref:alt``, the GWAS-SSF variant_id form."""
    made = pl.concat_str([pl.col("chrom"), pl.col("pos").cast(pl.String), pl.col("a2"), pl.col("a1")],
                         separator=":")
    return df.with_columns(
        pl.when(pl.col("id").is_null() | pl.col("id").is_in([".", ""])).then(made)
        .otherwise(pl.col("id")).alias("id")
    )


def _refuse_multiallelic(df: pl.DataFrame, path: Path) -> None:
    multi = df.with_row_index("_i").filter(pl.col("a1").str.contains(",", literal=True))
    if multi.height:
        r = multi.row(0, named=True)
        raise InputError(
            f"{path}: variant {r['id']} ({r['chrom']}:{r['pos']}) has ALT {r['a1']!r}: "
            f"{multi.height} multi-allelic variant(s); split them first "
            "(plink2 --max-alleles 2, or bcftools norm -m-)"
        )


def read_bgen_sample(path: str | Path) -> pl.DataFrame:
    """Read an Oxford ``.sample`` file as ``fid, iid, father, mother, sex, pheno``.

    ``ID_1`` is the FID and ``ID_2`` the IID (plink2 writes them so); a
    column named ``sex`` of type ``D`` gives the sex (1/2, or male/female).
    """
    path = Path(path)
    _require(path, "the .sample file of a BGEN")
    lines = [ln.split() for ln in read_text(path, ".sample file of a BGEN").splitlines() if ln.strip()]
    if len(lines) < 2 or len(lines[0]) < 2 or [c.upper() for c in lines[0][:2]] != ["ID_1", "ID_2"]:
        raise InputError(f"{path}: not an Oxford .sample file (first line must start 'ID_1 ID_2')")
    names = [c.lower() for c in lines[0]]
    types = lines[1]
    if len(types) != len(names):
        raise InputError(f"{path}, line 2: expected {len(names)} column types, got {len(types)}")
    sex_col = names.index("sex") if "sex" in names else None
    rows = []
    for lineno, parts in enumerate(lines[2:], 3):
        if len(parts) != len(names):
            raise InputError(f"{path}, line {lineno}: expected {len(names)} fields, got {len(parts)}")
        sex = parts[sex_col].lower() if sex_col is not None else "0"
        sex = {"1": "1", "2": "2", "m": "1", "f": "2", "male": "1", "female": "2"}.get(sex, "0")
        rows.append([parts[0], parts[1], "0", "0", sex, "-9"])
    if not rows:
        raise InputError(f"{path}: no samples")
    return _fam_frame(rows)


def _nan_missing(dos: np.ndarray) -> np.ndarray:
    dos[dos < 0] = np.nan  # pgenlib writes -9 for a missing dosage
    return dos


# ---------------------------------------------------------------- PLINK 2


class PgenContainer:
    """A PLINK 2 ``.pgen/.pvar/.psam`` fileset, read with pgenlib (plink2's own reader).

    Dosages are pgenlib's ALT1 dosages, so hard calls and stored dosages
    both come out as plink2 ``--glm`` sees them.
    """

    def __init__(self, prefix: str | Path):
        import pgenlib  # PLINK 2's own reader; imported here so PLINK 1 users need not have it

        self._pgenlib = pgenlib
        prefix = Path(prefix)
        self.pgen = prefix.with_name(prefix.name + ".pgen")
        self.variants = read_pvar(prefix.with_name(prefix.name + ".pvar"))
        self.samples = read_psam(prefix.with_name(prefix.name + ".psam"))
        _require(self.pgen, "the .pgen of a PLINK 2 fileset")
        with open(self.pgen, "rb") as fh:
            magic = fh.read(3)
        if magic[:2] != _PGEN_MAGIC:
            raise InputError(f"{self.pgen}: not a .pgen file (bad magic bytes {magic.hex()})")
        try:
            reader = pgenlib.PgenReader(bytes(str(self.pgen), "utf8"), raw_sample_ct=self.samples.height,
                                        variant_ct=self.variants.height)
            reader.close()
        except RuntimeError as exc:
            raise InputError(f"{self.pgen}: {_first_line(exc)} (.pvar has {self.variants.height} "
                             f"variants, .psam {self.samples.height} samples)") from exc

    def read(self, variant_index: np.ndarray, sample_index: np.ndarray | None) -> np.ndarray:
        n = self.samples.height
        subset = None if sample_index is None else np.asarray(sample_index, dtype=np.uint32)
        width = n if subset is None else int(subset.size)
        out = np.empty((variant_index.size, width), dtype=np.float64)
        if variant_index.size == 0 or width == 0:
            return out
        vi = np.asarray(variant_index)
        try:
            reader = self._pgenlib.PgenReader(bytes(str(self.pgen), "utf8"), raw_sample_ct=n,
                                              variant_ct=self.variants.height, sample_subset=subset)
            try:
                if np.all(np.diff(vi) == 1):  # a contiguous chunk: one range read
                    reader.read_dosages_range(int(vi[0]), int(vi[-1]) + 1, out)
                else:
                    reader.read_dosages_list(vi.astype(np.uint32), out)
            finally:
                reader.close()
        except RuntimeError as exc:
            raise InputError(f"{self.pgen}: cannot read variants {int(vi.min()) + 1}..{int(vi.max()) + 1} "
                             f"({_first_line(exc)}; truncated file?)") from exc
        return _nan_missing(out)


def _first_line(exc: BaseException) -> str:
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf8", "replace")
    return str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__


# ---------------------------------------------------------------- BGEN


class BgenContainer:
    """A BGEN v1.2 file with its ``.sample`` file, read with cbgen (the bgen C library).

    Dosages are expected allele counts from the genotype probabilities:
    ``P(het) + 2 P(hom counted)`` for diploid calls, ``2 P(counted)`` for
    haploid ones (plink2's 0/2 coding of males' chrX), the sum over
    haplotypes for phased data. Hard calls stored at any bit depth are
    exact (probabilities 0 and 1 are exact in BGEN's fixed-point coding).

    The variant index (identifiers, alleles, block offsets) is walked here
    in one buffered pass, which also refuses a truncated file; cbgen's own
    "metafile" index would need a file written somewhere and reads past
    the end of a cut file.
    """

    def __init__(self, path: str | Path, *, sample: str | Path | None = None, ref_first: bool = True):
        import cbgen  # the BGEN C library's Python binding; imported here so PLINK 1 users need not have it

        self.path = Path(path)
        _require(self.path, "the BGEN file")
        sample_path = Path(sample) if sample is not None else self.path.with_suffix(".sample")
        self.samples = read_bgen_sample(sample_path)
        self.ref_first = ref_first
        with open(self.path, "rb") as fh:
            head = fh.read(24)
            if len(head) == 24:
                header_len = int.from_bytes(head[4:8], "little")
                fh.seek(header_len)  # flags: the last 4 bytes of the header block (which starts at byte 4)
                flags = int.from_bytes(fh.read(4), "little")
        if len(head) < 24 or head[16:20] not in (b"bgen", b"\x00\x00\x00\x00"):
            raise InputError(f"{self.path}: not a BGEN file (no 'bgen' magic number in the header)")
        if (flags >> 2) & 0xF != 2:
            raise InputError(f"{self.path}: BGEN layout {(flags >> 2) & 0xF}; only layout 2 (BGEN v1.2/1.3) is read")
        index = _bgen_index(self.path, flags)  # before cbgen sees the file: it crashes on a cut one
        try:
            self._bgen = cbgen.bgen_file(str(self.path))
        except RuntimeError as exc:
            raise InputError(f"{self.path}: cannot open the BGEN file ({_first_line(exc)})") from exc
        if self._bgen.nsamples != self.samples.height:
            raise InputError(f"{self.path}: {self._bgen.nsamples} samples, but {sample_path} lists "
                             f"{self.samples.height}")
        self._offsets = index.offsets
        chrom, rsid, vid, pos, alleles = index.chrom, index.rsid, index.vid, index.pos, index.alleles
        nalleles = np.array([len(a) for a in alleles])
        if np.any(nalleles != 2):
            i = int(np.flatnonzero(nalleles != 2)[0])
            raise InputError(f"{self.path}: variant {rsid[i] or vid[i]} ({chrom[i]}:{pos[i]}) has {nalleles[i]} "
                             "alleles; only biallelic variants are read (split them first)")
        first, second = zip(*alleles, strict=True)
        counted, other = (second, first) if ref_first else (first, second)
        ids = [r if r not in ("", ".") else v for r, v in zip(rsid, vid, strict=True)]
        df = pl.DataFrame({"chrom": chrom, "id": ids, "cm": np.zeros(pos.size), "pos": pos,
                           "a1": list(counted), "a2": list(other)},
                          schema={"chrom": pl.String, "id": pl.String, "cm": pl.Float64, "pos": pl.Int64,
                                  "a1": pl.String, "a2": pl.String})
        self.variants = _fill_ids(df)

    def read(self, variant_index: np.ndarray, sample_index: np.ndarray | None) -> np.ndarray:
        width = self.samples.height if sample_index is None else int(sample_index.size)
        out = np.empty((variant_index.size, width), dtype=np.float64)
        for row, v in enumerate(np.asarray(variant_index).tolist()):
            try:
                g = self._bgen.read_genotype(int(self._offsets[v]), precision=64)
            except RuntimeError as exc:
                raise InputError(f"{self.path}: cannot read variant {v + 1} ({_first_line(exc)}; truncated?)") from exc
            out[row] = self._dosage(g)[slice(None) if sample_index is None else sample_index]
        return out

    def _dosage(self, g) -> np.ndarray:
        p = g.probability
        ploidy = np.asarray(g.ploidy)
        c = 1 if self.ref_first else 0  # index of the counted allele
        if g.phased:  # per haplotype: [P(h1=A1), P(h1=A2), P(h2=A1), P(h2=A2)]
            dos = p[:, c] + np.where(ploidy >= 2, p[:, 2 + c] if p.shape[1] >= 4 else 0.0, p[:, c])
        else:  # diploid: [P(A1A1), P(A1A2), P(A2A2)]; haploid: [P(A1), P(A2), NaN pad]
            hom = p[:, 2] if self.ref_first else p[:, 0]
            dos = np.where(ploidy == 1, 2.0 * p[:, c], p[:, 1] + 2.0 * hom)
        dos = np.array(dos, dtype=np.float64)
        dos[np.asarray(g.missing, dtype=bool)] = np.nan
        return dos


@dataclass(frozen=True)
class _BgenIndex:
    offsets: np.ndarray  # byte offset of each variant's genotype block (what cbgen's read_genotype takes)
    vid: list[str]
    rsid: list[str]
    chrom: list[str]
    pos: np.ndarray
    alleles: list[list[str]]


def _bgen_index(path: Path, flags: int) -> _BgenIndex:
    """Walk the layout-2 variant blocks: identifiers, alleles and offsets; refuse a cut file.

    Done here rather than by cbgen's metafile: cbgen reads past the end of a
    truncated file (and can crash the process), and the walk needs no
    temporary file beside or away from the input.
    """
    size = path.stat().st_size
    offsets: list[int] = []
    vid: list[str] = []
    rsid: list[str] = []
    chrom: list[str] = []
    pos: list[int] = []
    alleles: list[list[str]] = []
    with open(path, "rb", buffering=1 << 20) as fh:
        start = int.from_bytes(fh.read(4), "little") + 4
        fh.read(4)
        n_variants = int.from_bytes(fh.read(4), "little")
        if flags >> 31:
            pass  # sample identifiers are stored; the .sample file is authoritative (as in plink2)
        fh.seek(start)
        here = start

        def take(n: int) -> bytes:
            nonlocal here
            b = fh.read(n)
            if len(b) != n:
                raise InputError(f"{path}: variant {len(offsets)} of {n_variants} is cut short at byte "
                                 f"{size} (truncated file)")
            here += n
            return b

        def text(width: int) -> str:
            raw = take(int.from_bytes(take(width), "little"))
            try:
                return raw.decode()
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}: byte {here}: identifier is not text (damaged file?)") from exc

        for _ in range(n_variants):
            vid.append(text(2))
            rsid.append(text(2))
            chrom.append(text(2))
            pos.append(int.from_bytes(take(4), "little"))
            k = int.from_bytes(take(2), "little")
            alleles.append([text(4) for _ in range(k)])
            offsets.append(here)  # cbgen's offset: the genotype block's 4-byte length
            skip = int.from_bytes(take(4), "little")
            if here + skip > size:
                raise InputError(f"{path}: variant {len(offsets)} of {n_variants} ends past the file's "
                                 f"{size} bytes (truncated file)")
            fh.seek(skip, os.SEEK_CUR)
            here += skip
    if not offsets:
        raise InputError(f"{path}: no variants")
    return _BgenIndex(np.array(offsets, dtype=np.int64), vid, rsid, chrom, np.array(pos, dtype=np.int64), alleles)


# ---------------------------------------------------------------- VCF / BCF


class VcfContainer:
    """A VCF (plain or bgzipped) or BCF file, read with cyvcf2 (htslib).

    The file is scanned once on opening for the variant list; reads then
    stream forward (a chunk after the previous one continues the same pass;
    going back reopens the file). For large cohorts convert once with
    ``plink2 --vcf FILE --make-pgen`` and use ``--pfile``: the text parse is
    the slow part.

    ``DS`` values are parsed by htslib as 32-bit floats; hard-call dosages
    (0, 1, 2) and the usual 3-decimal dosages round-trip to within 1e-7.
    """

    def __init__(self, path: str | Path, *, field: Literal["auto", "GT", "DS"] = "auto",
                 sample: str | Path | None = None):
        from cyvcf2 import VCF  # htslib binding; imported here so PLINK 1 users need not have it

        self._VCF = VCF
        self.path = Path(path)
        _require(self.path, "the VCF/BCF file")
        try:
            vcf = VCF(str(self.path), gts012=True, lazy=True)
        except Exception as exc:  # cyvcf2 raises a bare Exception for a bad header
            raise InputError(f"{self.path}: not a readable VCF/BCF file ({_first_line(exc)})") from exc
        formats = {h["ID"] for h in vcf.header_iter() if h["HeaderType"] == "FORMAT"}
        if field == "auto":
            field = "DS" if "DS" in formats else "GT"
        if field not in formats:
            raise InputError(f"{self.path}: FORMAT field {field} is not declared in the header")
        self.field = field
        try:
            iids = list(vcf.samples)
        except UnicodeDecodeError as exc:
            raise InputError(f"{self.path}: the #CHROM header line's sample IDs are not UTF-8 text "
                             f"({exc.reason}: {exc.object[max(0, exc.start - 10):exc.end + 10]!r}); "
                             "rule: VCF is UTF-8 (e.g. bcftools reheader with UTF-8 names)") from exc
        if not iids:
            raise InputError(f"{self.path}: no samples")
        n = len(iids)
        if sample is not None:
            self.samples = _vcf_sample_info(Path(sample), iids, self.path)
        else:  # a VCF holds IIDs only: no family, parents or sex (chrX association needs a --psam)
            self.samples = pl.DataFrame({"fid": ["0"] * n, "iid": iids, "father": ["0"] * n,
                                         "mother": ["0"] * n, "sex": [0] * n, "pheno": ["-9"] * n},
                                        schema={"fid": pl.String, "iid": pl.String, "father": pl.String,
                                                "mother": pl.String, "sex": pl.Int64, "pheno": pl.String})
        chrom, ids, pos, ref, alt = [], [], [], [], []
        try:
            for rec in vcf:
                chrom.append(rec.CHROM)
                ids.append(rec.ID or ".")
                pos.append(rec.POS)
                ref.append(rec.REF)
                alt.append(",".join(rec.ALT) if rec.ALT else ".")
        except Exception as exc:  # htslib raises assorted errors on a damaged stream
            raise InputError(f"{self.path}: unreadable after {len(pos)} records ({_first_line(exc)}; "
                             "truncated?)") from exc
        finally:
            vcf.close()
        if not pos:
            raise InputError(f"{self.path}: no variants")
        if str(self.path).endswith(".gz") or str(self.path).endswith(".bcf"):
            _check_bgzf_eof(self.path)
        df = pl.DataFrame({"chrom": chrom, "id": ids, "cm": np.zeros(len(pos)), "pos": pos,
                           "a1": alt, "a2": ref},
                          schema={"chrom": pl.String, "id": pl.String, "cm": pl.Float64, "pos": pl.Int64,
                                  "a1": pl.String, "a2": pl.String})
        _refuse_multiallelic(df, self.path)
        self.variants = _fill_ids(df)
        self._reader = None
        self._next = 0  # index of the record the open reader yields next

    def _records_from(self, start: int):
        if self._reader is None or start < self._next:
            if self._reader is not None:
                self._reader.close()
            self._reader = self._VCF(str(self.path), gts012=True, lazy=True)
            self._iter = iter(self._reader)
            self._next = 0
        while True:
            rec = next(self._iter)
            self._next += 1
            yield self._next - 1, rec

    def read(self, variant_index: np.ndarray, sample_index: np.ndarray | None) -> np.ndarray:
        vi = np.asarray(variant_index, dtype=np.int64)
        width = self.samples.height if sample_index is None else int(sample_index.size)
        out = np.empty((vi.size, width), dtype=np.float64)
        if vi.size == 0:
            return out
        order = np.argsort(vi, kind="stable")
        want = vi[order]
        k = 0
        pick = slice(None) if sample_index is None else sample_index
        for i, rec in self._records_from(int(want[0])):
            while k < want.size and want[k] == i:
                out[order[k]] = self._dosage(rec)[pick]
                k += 1
            if k == want.size:
                break
        return out

    def _dosage(self, rec) -> np.ndarray:
        if self.field == "GT":
            dos = rec.gt_types.astype(np.float64)  # gts012: 0 hom-ref, 1 het, 2 hom-alt / haploid alt, 3 missing
            dos[dos == 3] = np.nan
            return dos
        ds = rec.format("DS")
        if ds is None:
            return np.full(self.samples.height, np.nan)
        dos = ds[:, 0].astype(np.float64)
        dos[(dos < 0) | ~np.isfinite(dos)] = np.nan  # missing '.' comes back NaN or as htslib's int sentinel
        return dos


def _vcf_sample_info(sample: Path, iids: list[str], vcf: Path) -> pl.DataFrame:
    """The ``.psam``/``.fam`` rows of a VCF's samples; refuses a file listing other samples or another order."""
    info = read_psam(sample)
    listed = info.get_column("iid").to_list()
    if listed != iids:
        if len(listed) != len(iids):
            raise InputError(f"{sample}: {len(listed)} samples, but {vcf} has {len(iids)}; the sample "
                             "file must list the VCF's samples in the VCF's order")
        i = next(k for k, (a, b) in enumerate(zip(listed, iids, strict=True)) if a != b)
        raise InputError(f"{sample}: sample {i + 1} is IID {listed[i]!r}, but {vcf} has {iids[i]!r} there; "
                         "the sample file must list the VCF's samples in the VCF's order")
    return info


def _check_bgzf_eof(path: Path) -> None:
    """A bgzipped file ends with the 28-byte empty BGZF block; without it the file is truncated."""
    eof = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 28))
        tail = fh.read(28)
    if tail != eof:
        raise InputError(f"{path}: no BGZF end-of-file marker (truncated file?)")
