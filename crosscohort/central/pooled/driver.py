"""``crosscohort pool-fit``: read the cohorts' released sums, align the variants, solve, write.

Variants are matched across cohorts on chromosome, position and the
unordered allele pair; the effect allele is the first cohort's (in the
order given). A cohort whose effect allele is the other one contributes its
sums mirrored (g -> 2 - g: g~ -> -g~, so every cross-product with g~
changes sign and ``gg``/``gwg`` do not; ``sum_g`` -> 2n - ``sum_g``). Alleles
are taken as given: the cohorts' bundles must be on one build and strand
(the export's reference), as harmonise would make them; strand flips and
palindromes are not resolved here.

A variant is fitted over the cohorts that released it (the gate may
suppress it in one cohort, or a cohort may not have it): variants are
grouped by the set of cohorts carrying them and each set is solved with its
own pooled covariate design, which equals the individual-level fit of those
cohorts' samples.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import polars as pl

from crosscohort.central.pooled.fit import PooledFit, solve_linear, solve_logistic_onestep
from crosscohort.contract.errors import InputError
from crosscohort.contract.sums import BLOCK_SUFFIX, VARIANT_SUFFIX, CohortBlock, read_block
from crosscohort.contract.sumstats import (
    float_column,
    variant_id,
)
from crosscohort.contract.table_io import (
    BLOCK_BYTES,
    Blocks,
    header_line,
    header_names,
    parse_block,
)

__all__ = ["PoolFitResult", "read_sums", "pool_fit", "pool_fit_to_file", "sufficient_paths"]

#: Variants solved at once (bounds the solver's variants x covariates temporaries).
SOLVE_ROWS = 16_384

#: Sum columns that keep their sign when the effect allele is the other one (the rest
#: are cross-products with g~, which change sign; sum_g becomes 2n - sum_g).
_EVEN = ("n", "sum_g", "gg", "gwg")


def sufficient_paths(directory: str | Path, trait: str) -> tuple[Path, Path]:
    """``(block, sums)`` paths of ``trait`` in a ``sufficient/`` directory."""
    d = Path(directory)
    return d / f"{trait}{BLOCK_SUFFIX}", d / f"{trait}{VARIANT_SUFFIX}"


def _needed(block: CohortBlock) -> list[str]:
    from crosscohort.contract.sums import gwx_column, gx_column

    if block.trait_type == "quantitative":
        sums = ["n", "sum_g", "gg", "gy", *(gx_column(c) for c in block.covariates)]
    else:
        sums = ["n", "sum_g", "u", "gwg", gwx_column("1"), *(gwx_column(c) for c in block.covariates)]
    return ["chromosome", "base_pair_location", "effect_allele", "other_allele", *sums]


#: The columns that name a row's variant: never empty in released sums.
_KEY_COLUMNS = ("chromosome", "base_pair_location", "effect_allele", "other_allele")
_TEXT = {"effect_allele": pl.String, "other_allele": pl.String, "variant_id": pl.String, "rsid": pl.String}
_INT = {"chromosome": pl.Int64, "base_pair_location": pl.Int64, "n": pl.Int64}


def _sum_pieces(path: Path, block: CohortBlock, *, block_bytes: int) -> Iterator[tuple[int, pl.DataFrame]]:
    """A released sums table as ``(code, rows)`` pieces: each parse block cut at its chromosome changes.

    Raises
    ------
    InputError
        Unreadable file, a column the block's trait type needs absent, or
        chromosomes out of order.
    """
    # The contract's header reader: a cut gzip stream (EOFError), a non-UTF-8 or empty
    # header and a byte-order mark are handled there, as for every other table.
    names = header_names(header_line(path))
    need = _needed(block)
    missing = [c for c in need if c not in names]
    if missing:
        raise InputError(f"{path}: column(s) {missing} missing (a {block.trait_type} trait with covariates "
                         f"{list(block.covariates)} needs {need})")
    keep = [c for c in names if c in need or c == "rsid"]
    schema = {c: _TEXT.get(c, _INT.get(c, pl.Float64)) for c in names}
    done: set[int] = set()
    current: int | None = None
    blocks = Blocks(path, block_bytes=block_bytes)
    for blk in blocks:
        # the contract's block parser: a value that is not its column's type names its line
        df = parse_block(blk, path=path, schema=schema, columns=keep)
        for c in _KEY_COLUMNS:
            if (nulls := df.get_column(c).null_count()):
                i = int(df.get_column(c).is_null().arg_true()[0])
                raise InputError(f"{path}: line {blk.first_line() + i}: column {c} is empty "
                                 f"({nulls} row(s) in lines {blk.first_line()}-"
                                 f"{blk.first_line() + df.height - 1}); rule: every row of "
                                 "released sums names its variant (a blank or cut line?)")
        del blk
        codes = df.get_column("chromosome").to_numpy()
        cuts = np.flatnonzero(np.diff(codes)) + 1
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, codes.size], strict=True):
            code = int(codes[a])
            if code != current:
                if code in done or (current is not None and code < current):
                    raise InputError(f"{path}: chromosome {code} after {current}; the rows must be in "
                                     "ascending chromosome runs, as crosscohort sufficient writes them")
                if current is not None:
                    done.add(current)
                current = code
            yield code, df.slice(int(a), int(b - a))


class _Chromosomes:
    """One cohort's sums taken a chromosome at a time, reading no further than one block ahead.

    ``head`` is the first piece not yet taken (or None at the end): its code
    says which chromosome the stream has next without reading that
    chromosome's rows, so the other cohorts' next chromosomes are not read
    while the current one is fitted.
    """

    def __init__(self, pieces: Iterator[tuple[int, pl.DataFrame]]) -> None:
        self._pieces = pieces
        self.head: tuple[int, pl.DataFrame] | None = next(pieces, None)

    def take(self, code: int) -> Iterator[pl.DataFrame]:
        """The pieces of chromosome ``code``, read as they are taken (none unless it is the stream's next)."""
        while self.head is not None and self.head[0] == code:
            piece = self.head[1]
            self.head = None  # drop the reference before reading on
            yield piece
            del piece
            self.head = next(self._pieces, None)


def read_sums(path: str | Path, block: CohortBlock, *,
              block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, pl.DataFrame]]:
    """A released ``{trait}.sufficient.tsv.gz``, one chromosome at a time: ``(code, rows)``.

    Memory follows the largest chromosome, not the genome. The file must be
    in ascending chromosome runs (as ``crosscohort sufficient`` writes it).

    Raises
    ------
    InputError
        Unreadable file, a column the block's trait type needs absent, or
        chromosomes out of order.
    """
    stream = _Chromosomes(_sum_pieces(Path(path), block, block_bytes=block_bytes))
    while stream.head is not None:
        code = stream.head[0]
        yield code, pl.concat(list(stream.take(code)), rechunk=False)


def _empty(block: CohortBlock) -> pl.DataFrame:
    return pl.DataFrame(schema={c: _TEXT.get(c, _INT.get(c, pl.Float64)) for c in [*_needed(block), "rsid"]})


@dataclass(frozen=True)
class PoolFitResult:
    """The pooled table (GWAS-SSF + ``n_studies``, ``residual_df``) and the run's counts."""

    table: pl.DataFrame
    method: str
    n_variants: dict[str, int]


_KEYS = ("chromosome", "base_pair_location", "effect_allele", "other_allele", "rsid")


@dataclass(frozen=True)
class _CohortPart:
    """One cohort's rows of one chromosome: the key columns (polars) and the sums (float64, NaN = missing)."""

    keys: pl.DataFrame
    sums: dict[str, np.ndarray]


def _sum_arrays(df: pl.DataFrame) -> dict[str, np.ndarray]:
    return {c: df.get_column(c).cast(pl.Float64).fill_null(np.nan).to_numpy()
            for c in df.columns if c not in (*_KEYS, "variant_id")}


def _key_frame(df: pl.DataFrame) -> pl.DataFrame:
    rsid = df.get_column("rsid") if "rsid" in df.columns else pl.Series("rsid", [None] * df.height, pl.String)
    return df.select("chromosome", "base_pair_location", "effect_allele", "other_allele").with_columns(rsid)


def _cohort_part(pieces: Iterable[pl.DataFrame]) -> _CohortPart:
    """``pieces`` (parsed blocks' rows) as one :class:`_CohortPart`.

    The sums leave polars as numpy arrays piece by piece as the pieces are
    read, so a chromosome's sums are held once (not as a table and as arrays).
    """
    keys, sums = [], []
    for piece in pieces:
        keys.append(_key_frame(piece))
        sums.append(_sum_arrays(piece))
        del piece
    return _CohortPart(pl.concat(keys, rechunk=False),
                       {c: np.concatenate([s[c] for s in sums]) for c in sums[0]})


def _aligned(parts: list[_CohortPart]) -> tuple[pl.DataFrame, list[np.ndarray]]:
    """The union of variants (first cohort's orientation) and each cohort's row of each union variant.

    Variants are keyed by position and a 64-bit hash of the unordered allele
    pair (within one chromosome), and the alleles of every matched row are
    then compared as strings, so a hash collision cannot pair two variants.
    Returns the union and, per cohort, an int64 array over the union: the
    cohort's row of the variant, -1 where it has none. Each cohort's sums are
    mirrored in place where its effect allele is the union's other allele,
    so they are held once, in the cohort's own order.
    """
    offsets = np.cumsum([0, *(part.keys.height for part in parts)])
    pos = np.empty(offsets[-1], dtype=np.int64)
    h = np.empty(offsets[-1], dtype=np.uint64)
    for i, part in enumerate(parts):
        k = part.keys.select(pl.col("base_pair_location").alias("pos"),
                             pl.concat_str([pl.min_horizontal("effect_allele", "other_allele"),
                                            pl.max_horizontal("effect_allele", "other_allele")], separator="\t")
                             .hash(seed=0).alias("h"))
        pos[offsets[i]:offsets[i + 1]] = k.get_column("pos").to_numpy()
        h[offsets[i]:offsets[i + 1]] = k.get_column("h").to_numpy()
        del k
    # Sorted by (position, hash), stably (the first row of each key is its first occurrence); a
    # lexsort and one sorted column at a time hold less than np.unique on a structured array.
    order = np.lexsort((h, pos))
    new = np.ones(order.size, dtype=bool)
    s = pos[order]
    new[1:] = s[1:] != s[:-1]
    del s
    s = h[order]
    new[1:] |= s[1:] != s[:-1]
    del s, pos, h
    first = order[new]
    inverse = np.empty(order.size, dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    del order, new
    m = first.size
    # The union's descriptive columns from the first cohort carrying each variant.
    owner = np.searchsorted(offsets, first, side="right") - 1
    pieces = []
    for i, part in enumerate(parts):
        sel = np.flatnonzero(owner == i)
        if sel.size:
            rows = first[sel] - offsets[i]
            pieces.append(part.keys.select(pl.all().gather(rows)).with_columns(pl.Series("_u", sel)))
    union = (pl.concat(pieces).sort("_u").drop("_u") if pieces else
             pl.DataFrame(schema={"chromosome": pl.Int64, "base_pair_location": pl.Int64, "effect_allele": pl.String,
                                  "other_allele": pl.String, "rsid": pl.String}))
    del pieces
    u_ea = union.get_column("effect_allele")
    u_oa = union.get_column("other_allele")
    out: list[np.ndarray] = []
    for i, part in enumerate(parts):
        t = part.keys
        at = inverse[offsets[i]:offsets[i + 1]]
        if np.unique(at).size != at.size:
            dup = np.flatnonzero(np.bincount(at, minlength=m) > 1)[0]
            r = union.row(int(dup), named=True)
            raise InputError(f"variant {r['chromosome']}:{r['base_pair_location']} {r['other_allele']}/"
                             f"{r['effect_allele']} appears more than once in one cohort's sums (cohort "
                             f"{i + 1}); each variant must be released once")
        at_s = pl.Series("at", at)
        ea, oa = t.get_column("effect_allele"), t.get_column("other_allele")
        same = (ea == u_ea.gather(at_s)) & (oa == u_oa.gather(at_s))
        swapped = (ea == u_oa.gather(at_s)) & (oa == u_ea.gather(at_s))
        bad = ~(same | swapped)
        if bad.any():
            j = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"cohort {i + 1}: variant at {t['base_pair_location'][j]} with alleles {ea[j]}/{oa[j]} "
                             "matched another allele pair by its key hash; rename or drop one of them")
        flip = swapped.to_numpy() & ~same.to_numpy()
        if flip.any():
            for c, v in part.sums.items():
                if c == "sum_g":
                    v[flip] = 2.0 * part.sums["n"][flip] - v[flip]
                elif c not in _EVEN:
                    v[flip] = -v[flip]
        row = np.full(m, -1, dtype=np.int64)
        row[at] = np.arange(at.size)
        out.append(row)
    return union, out


def _fit_part(blocks: Sequence[CohortBlock], parts: list[_CohortPart], *, shared: Sequence[str],
              log: TextIO) -> pl.DataFrame:
    """The pooled rows of one part (one chromosome of every cohort)."""
    ttype = blocks[0].trait_type
    cohorts = [b.cohort for b in blocks]
    union, at = _aligned(parts)
    m = union.height
    # Each cohort's sums gathered into union order (NaN where the cohort has no row), one column at a time.
    def gathered(c: int, col: str, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        r, v = at[c][rows], parts[c].sums[col]
        return np.where(r >= 0, v[np.maximum(r, 0)], np.nan) if v.size else np.full(r.size, np.nan)

    present = (np.column_stack([np.isfinite(gathered(c, "n")) & np.isfinite(gathered(c, "sum_g"))
                                for c in range(len(parts))])
               if m else np.zeros((0, len(blocks)), dtype=bool))
    beta, se, p, nlp = (np.full(m, np.nan) for _ in range(4))
    df_res = np.full(m, -1, dtype=np.int64)
    n = np.zeros(m, dtype=np.int64)
    n_studies = present.sum(axis=1).astype(np.int64)
    sum_g = np.zeros(m)
    for c in range(len(parts)):
        sum_g += np.where(present[:, c], gathered(c, "sum_g"), 0.0)
    if m:
        patterns, which = np.unique(present, axis=0, return_inverse=True)
        which = np.asarray(which).reshape(-1)
    else:
        patterns, which = np.zeros((0, len(blocks)), dtype=bool), np.empty(0, dtype=np.int64)
    for k, pattern in enumerate(patterns):
        cs = np.flatnonzero(pattern)
        if cs.size == 0:
            continue
        bl = [blocks[c] for c in cs]
        all_rows = np.flatnonzero(which == k)
        # In slices: the solve's (variants x covariates) temporaries stay small at any chromosome size.
        for start in range(0, all_rows.size, SOLVE_ROWS):
            rows = all_rows[start:start + SOLVE_ROWS]
            sums = [{col: v[at[c][rows]] for col, v in parts[c].sums.items()} for c in cs]
            fit: PooledFit = (solve_linear(bl, sums, shared=shared) if ttype == "quantitative"
                              else solve_logistic_onestep(bl, sums))
            beta[rows], se[rows], p[rows], nlp[rows] = (fit.beta, fit.standard_error, fit.p_value,
                                                        fit.neg_log_10_p_value)
            df_res[rows], n[rows] = fit.residual_df, fit.n
            del sums, fit
        print(f"pool-fit: chromosome {union.get_column('chromosome')[0]}: {all_rows.size} variants in cohort(s) "
              f"{', '.join(cohorts[c] for c in cs)}", file=log)
    with np.errstate(invalid="ignore", divide="ignore"):
        eaf = np.where(n > 0, sum_g / (2.0 * n), np.nan)
    cols = {
        "chromosome": union.get_column("chromosome"),
        "base_pair_location": union.get_column("base_pair_location"),
        "effect_allele": union.get_column("effect_allele"),
        "other_allele": union.get_column("other_allele"),
        "beta": float_column("beta", beta),
        "standard_error": float_column("standard_error", se),
        "effect_allele_frequency": float_column("effect_allele_frequency", eaf),
        "p_value": float_column("p_value", p),
        "neg_log_10_p_value": float_column("neg_log_10_p_value", nlp),
        "rsid": union.get_column("rsid"),
        "n": pl.Series("n", n, dtype=pl.Int64),
        "n_studies": pl.Series("n_studies", n_studies, dtype=pl.Int64),
    }
    if ttype == "quantitative":
        cols["residual_df"] = pl.Series("residual_df", df_res, dtype=pl.Int64)
    return pl.DataFrame(cols).with_columns(
        variant_id(pl.col("chromosome"), pl.col("base_pair_location"), pl.col("other_allele"),
                   pl.col("effect_allele")))


def _blocks(inputs: Sequence[tuple[str | Path, str | Path]], shared: Sequence[str]) -> list[CohortBlock]:
    blocks = [read_block(b) for b, _ in inputs]
    traits = {(b.trait, b.trait_type) for b in blocks}
    if len(traits) != 1:
        raise InputError(f"pool-fit: the blocks are of different traits or trait types: {sorted(traits)}")
    cohorts = [b.cohort for b in blocks]
    if len(set(cohorts)) != len(cohorts):
        raise InputError(f"pool-fit: a cohort is given twice: {cohorts}")
    if blocks[0].trait_type == "binary" and shared:
        raise InputError("pool-fit: --shared applies to quantitative traits; the binary one-step fit keeps "
                         "every covariate cohort-specific")
    return blocks


def _parts(inputs: Sequence[tuple[str | Path, str | Path]], blocks: Sequence[CohortBlock], *,
           shared: Sequence[str], log: TextIO, block_bytes: int) -> Iterator[pl.DataFrame]:
    """Pooled rows one chromosome at a time (every cohort's rows of that chromosome read together)."""
    streams = [_Chromosomes(_sum_pieces(Path(t), b, block_bytes=block_bytes))
               for b, (_, t) in zip(blocks, inputs, strict=True)]
    while any(s.head is not None for s in streams):
        code = min(s.head[0] for s in streams if s.head is not None)
        # Each cohort's rows of this chromosome only: the next chromosome is read after the fit.
        parts = [_cohort_part(s.take(code)) if s.head is not None and s.head[0] == code
                 else _cohort_part([_empty(b)]) for s, b in zip(streams, blocks, strict=True)]
        yield _fit_part(blocks, parts, shared=shared, log=log)
        del parts


def _method(trait_type: str) -> str:
    return ("linear least squares (exact)" if trait_type == "quantitative"
            else "logistic one-step from the null (score / information)")


def _counts(fitted: int, total: int) -> dict[str, int]:
    return {"variants": total, "fitted": fitted, "not_estimable": total - fitted}


def pool_fit(
    inputs: Sequence[tuple[str | Path, str | Path]],
    *,
    shared: Sequence[str] = (),
    log: TextIO | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> PoolFitResult:
    """The pooled fit of one trait from the cohorts' released blocks and sums, in memory.

    Parameters
    ----------
    inputs
        ``(block.json, sufficient.tsv.gz)`` per cohort, in cohort order.
    shared
        Covariates with one effect across cohorts (quantitative traits);
        every other covariate is cohort-specific. Binary traits: every
        covariate is cohort-specific (the one-step method's null).

    Returns
    -------
    PoolFitResult

    Raises
    ------
    InputError
        Blocks of different traits or trait types, or any error of the solvers.
    """
    log = log if log is not None else sys.stderr
    blocks = _blocks(inputs, shared)
    parts = list(_parts(inputs, blocks, shared=shared, log=log, block_bytes=block_bytes))
    table = (pl.concat(parts) if parts else
             _fit_part(blocks, [_cohort_part([_empty(b)]) for b in blocks], shared=shared, log=log))
    fitted = int(table.get_column("beta").is_not_null().sum())
    print(f"pool-fit: trait {blocks[0].trait} ({_method(blocks[0].trait_type)}): {fitted} of {table.height} "
          f"variants fitted over {len(blocks)} cohorts", file=log)
    return PoolFitResult(table, _method(blocks[0].trait_type), _counts(fitted, table.height))


def pool_fit_to_file(
    inputs: Sequence[tuple[str | Path, str | Path]],
    out: str | Path,
    *,
    shared: Sequence[str] = (),
    log: TextIO | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> PoolFitResult:
    """:func:`pool_fit` written as it goes (``.tsv`` or ``.tsv.gz``): memory follows one chromosome.

    The returned :class:`PoolFitResult` has an empty table (the rows are in ``out``).
    """
    from crosscohort.contract.sumstats import open_gzip_writer, order_columns

    log = log if log is not None else sys.stderr
    out = Path(out)
    if not (out.name.endswith(".tsv") or out.name.endswith(".tsv.gz")):
        raise InputError(f"--out {out}: expected a .tsv or .tsv.gz path (written as it goes)")
    blocks = _blocks(inputs, shared)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    total = fitted = 0
    first = True
    with (open_gzip_writer(tmp) if out.name.endswith(".gz") else open(tmp, "wb")) as fh:
        for part in _parts(inputs, blocks, shared=shared, log=log, block_bytes=block_bytes):
            part = order_columns(part)
            part.write_csv(fh, separator="\t", null_value="NA", float_precision=None, include_header=first)
            first = False
            total += part.height
            fitted += int(part.get_column("beta").is_not_null().sum())
            del part  # not held while the next chromosome is read and fitted
        if first:
            empty = _fit_part(blocks, [_cohort_part([_empty(b)]) for b in blocks], shared=shared, log=log)
            order_columns(empty).write_csv(fh, separator="\t", null_value="NA")
    tmp.replace(out)
    print(f"pool-fit: trait {blocks[0].trait} ({_method(blocks[0].trait_type)}): {fitted} of {total} "
          f"variants fitted over {len(blocks)} cohorts", file=log)
    return PoolFitResult(pl.DataFrame(), _method(blocks[0].trait_type), _counts(fitted, total))
