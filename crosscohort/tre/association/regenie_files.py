"""REGENIE's step-1 files (``_pred.list`` + ``.loco``) and its step-2 column layout, read and written.

So that a TRE that already runs REGENIE's step 1 can run crosscohort's step
2, and the reverse, the LOCO predictions travel in REGENIE's own layout
(REGENIE 3.x/4.x ``Data::write_predictions``):

- ``PREFIX_pred.list``: one line per trait, ``TRAIT PATH`` (PATH to the trait's ``.loco``);
- ``PREFIX_<k>.loco`` (``.loco.gz`` when compressed), k the trait's 1-based
  position: a header ``FID_IID id_1 ... id_n`` with each analysed sample as
  ``FID_IID`` (sorted as strings, as REGENIE's ``std::map`` orders them),
  then one line per chromosome 1..23 (X = 23): the chromosome number
  followed by each sample's LOCO prediction, ``NA`` where the sample's
  phenotype is missing. For a quantitative trait the prediction is on the
  scale of the covariate-residualised, standardised phenotype; for a binary
  trait it is the linear predictor (log-odds) without the covariates' part.

REGENIE prints 6 significant digits; we write 17 (a round trip is exact) and
read either.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from scipy.special import ndtri_exp

from crosscohort.contract.errors import InputError
from crosscohort.contract.table_io import read_text
from crosscohort.runtime.atomic import write_bytes

__all__ = [
    "N_CHROM",
    "LocoPredictions",
    "sample_key",
    "write_loco",
    "read_loco",
    "write_pred_list",
    "read_pred_list",
    "REGENIE_COLUMNS",
    "to_regenie_table",
    "write_regenie",
]

#: Chromosome rows of a ``.loco`` file: 1-22 and X as 23 (REGENIE's default ``nChrom``).
N_CHROM = 23

#: REGENIE's step-2 output columns (single-variant additive test).
REGENIE_COLUMNS: tuple[str, ...] = (
    "CHROM", "GENPOS", "ID", "ALLELE0", "ALLELE1", "A1FREQ", "INFO", "N", "TEST", "BETA", "SE",
    "CHISQ", "LOG10P", "EXTRA",
)


def sample_key(fid: str, iid: str) -> str:
    """A sample's ``.loco`` column name: ``FID_IID``."""
    return f"{fid}_{iid}"


@dataclass(frozen=True)
class LocoPredictions:
    """One trait's LOCO predictions.

    Attributes
    ----------
    samples
        Column names (``FID_IID``), in file order.
    values
        (23, n) prediction of chromosome c's model in row c - 1; NaN = NA.
    """

    samples: tuple[str, ...]
    values: np.ndarray

    def aligned(self, keys: Sequence[str]) -> np.ndarray:
        """(len(keys), 23) predictions of the given samples; NaN for a sample not in the file."""
        index = {k: i for i, k in enumerate(self.samples)}
        out = np.full((len(keys), N_CHROM), np.nan)
        pos = np.array([index.get(k, -1) for k in keys], dtype=np.int64)
        found = pos >= 0
        out[found] = self.values[:, pos[found]].T
        return out


def write_loco(path: str | Path, keys: Sequence[str], loco: np.ndarray) -> Path:
    """Write one trait's ``.loco`` file (gzip when the path ends in ``.gz``).

    Parameters
    ----------
    keys
        ``FID_IID`` of the analysed samples.
    loco
        (n, 23) LOCO prediction per sample and chromosome 1..23; NaN = NA.
    """
    if loco.shape != (len(keys), N_CHROM):
        raise ValueError(f"loco must be (samples, {N_CHROM}); got {loco.shape} for {len(keys)} samples")
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    buf = io.StringIO()
    buf.write("FID_IID " + " ".join(keys[i] for i in order) + " \n")
    vals = loco[order]
    for c in range(N_CHROM):
        col = vals[:, c]
        buf.write(f"{c + 1} " + " ".join("NA" if np.isnan(v) else repr(float(v)) for v in col) + " \n")
    data = buf.getvalue().encode()
    if str(path).endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    return write_bytes(path, data)


def _open_text(path: Path) -> io.TextIOBase:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"))
    return open(path, encoding="utf-8")


def read_loco(path: str | Path) -> LocoPredictions:
    """Read a ``.loco`` (or ``.loco.gz``) file written by REGENIE or by :func:`write_loco`.

    Raises
    ------
    InputError
        A missing file, a header not starting ``FID_IID``, a line whose length
        differs from the header's, a chromosome outside 1..23 or repeated, a
        value that is neither a number nor ``NA``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file (a .loco file of a step-1 prediction list)")
    values = np.full((N_CHROM, 0), np.nan)
    with _open_text(path) as fh:
        header = fh.readline().split()
        if not header or header[0] != "FID_IID":
            raise InputError(f"{path}, line 1: expected a header starting 'FID_IID' (REGENIE .loco layout); "
                             f"got {' '.join(header[:3])!r}")
        samples = tuple(header[1:])
        values = np.full((N_CHROM, len(samples)), np.nan)
        seen: set[int] = set()
        for lineno, line in enumerate(fh, start=2):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != len(samples) + 1:
                raise InputError(f"{path}, line {lineno}: {len(parts) - 1} values for the header's "
                                 f"{len(samples)} samples")
            try:
                chrom = int(parts[0])
            except ValueError:
                raise InputError(f"{path}, line {lineno}: chromosome {parts[0]!r} is not a number 1..{N_CHROM}") from None
            if not 1 <= chrom <= N_CHROM or chrom in seen:
                raise InputError(f"{path}, line {lineno}: chromosome {chrom} outside 1..{N_CHROM} or repeated")
            seen.add(chrom)
            try:
                values[chrom - 1] = [np.nan if v == "NA" else float(v) for v in parts[1:]]
            except ValueError as exc:
                raise InputError(f"{path}, line {lineno}: a value is neither a number nor NA ({exc})") from None
    return LocoPredictions(samples, values)


def write_pred_list(path: str | Path, loco_paths: Mapping[str, str | Path]) -> Path:
    """Write ``_pred.list``: ``TRAIT PATH`` per trait (absolute paths, as REGENIE writes them)."""
    text = "".join(f"{t} {Path(p).resolve()}\n" for t, p in loco_paths.items())
    return write_bytes(path, text.encode())


def read_pred_list(path: str | Path) -> dict[str, Path]:
    """Read a ``_pred.list``: trait name -> ``.loco`` path (relative paths resolved against the list's folder)."""
    path = Path(path)
    out: dict[str, Path] = {}
    for lineno, line in enumerate(read_text(path, "--pred list (the _pred.list of step 1)").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise InputError(f"{path}, line {lineno}: expected 'TRAIT PATH'; got {line.strip()!r}")
        trait, loco = parts
        if trait in out:
            raise InputError(f"{path}, line {lineno}: trait {trait!r} listed twice")
        p = Path(loco)
        if not p.is_absolute() and not p.exists():
            p = path.parent / p
        out[trait] = p
    if not out:
        raise InputError(f"{path}: lists no trait (--pred)")
    return out


def to_regenie_table(table: pl.DataFrame) -> pl.DataFrame:
    """A crosscohort association table in REGENIE's step-2 column layout.

    ``ALLELE1`` is the effect (counted) allele, ``A1FREQ`` its frequency,
    ``CHISQ`` the 1-df chi-square of the row's p-value (the score or the
    Firth likelihood-ratio statistic), ``LOG10P`` = -log10 p, ``INFO`` 1
    (hard calls or dosages without an INFO measure), ``EXTRA`` the row's
    error code or NA.
    """
    nlp = table.get_column("neg_log_10_p_value").to_numpy()
    # chi2 = z^2 with p/2 = Phi(-|z|), from log p so that p below 1e-308 keeps a finite statistic.
    with np.errstate(invalid="ignore"):
        chisq = ndtri_exp(-nlp * np.log(10.0) - np.log(2.0)) ** 2
    extra = table.get_column("error_code") if "error_code" in table.columns else pl.Series([None] * table.height)
    return pl.DataFrame({
        "CHROM": table.get_column("chromosome"),
        "GENPOS": table.get_column("base_pair_location"),
        "ID": table.get_column("rsid"),
        "ALLELE0": table.get_column("other_allele"),
        "ALLELE1": table.get_column("effect_allele"),
        "A1FREQ": table.get_column("effect_allele_frequency"),
        "INFO": pl.Series([1.0] * table.height, dtype=pl.Float64),
        "N": table.get_column("n"),
        "TEST": pl.Series(["ADD"] * table.height, dtype=pl.String),
        "BETA": table.get_column("beta"),
        "SE": table.get_column("standard_error"),
        "CHISQ": pl.Series(chisq, dtype=pl.Float64),
        "LOG10P": table.get_column("neg_log_10_p_value"),
        "EXTRA": extra.cast(pl.String),
    })


def write_regenie(table: pl.DataFrame, path: str | Path) -> Path:
    """Write an association table in REGENIE's step-2 layout (space-separated, ``NA`` missing, 17 digits)."""
    out = to_regenie_table(table)
    buf = io.BytesIO()
    out.write_csv(buf, separator=" ", null_value="NA", float_precision=None)
    data = buf.getvalue()
    if str(path).endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    return write_bytes(path, data)
