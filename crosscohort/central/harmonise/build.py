"""Genome build: check a cohort's positions against a reference FASTA, lift over with a chain file.

Each cohort declares its build; the data are checked against the reference
genome (the share of SNPs whose allele pair contains the FASTA base at their
position); a cohort on another build is lifted over with a user-supplied UCSC
chain file (pyliftover) or refused with an error naming the cohort, the
declared and the detected build.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from crosscohort.central.harmonise.alleles import complement, is_snp
from crosscohort.contract.errors import ConfigError, InputError
from crosscohort.contract.sumstats import chrom_label

__all__ = [
    "BUILDS",
    "BUILD_MATCH_MIN",
    "BuildCheck",
    "Genome",
    "build_match",
    "check_build",
    "declared_build",
    "liftover",
    "normalise_build",
    "place_markers",
    "read_reference_ids",
]

#: Canonical build names and the spellings accepted for them.
BUILDS: dict[str, tuple[str, ...]] = {
    "GRCh37": ("grch37", "hg19", "b37", "37", "hs37d5"),
    "GRCh38": ("grch38", "hg38", "b38", "38"),
}
#: The data are on the FASTA's build when more than this share of tested SNPs match.
BUILD_MATCH_MIN = 0.95
#: SNPs tested for the build check (evenly spaced over the file; enough for +-1 %).
BUILD_SAMPLE = 20_000


def normalise_build(name: str) -> str:
    """``GRCh37`` or ``GRCh38`` for any accepted spelling (``hg19``, ``b38``...); else :class:`ConfigError`."""
    key = str(name).strip().lower()
    for canon, spellings in BUILDS.items():
        if key == canon.lower() or key in spellings:
            return canon
    raise ConfigError(f"unknown genome build {name!r}; expected GRCh37 (hg19) or GRCh38 (hg38)")


class Genome:
    """A reference FASTA (indexed by pyfaidx; ``.fai`` written if absent), by chromosome code.

    Contig names ``1``/``chr1``, ``X``/``chrX``/``23``, ``MT``/``chrM`` are all found.
    """

    def __init__(self, path: str | Path):
        import pyfaidx

        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"{self.path}: no such file (reference FASTA)")
        try:
            self._fa = pyfaidx.Fasta(str(self.path), as_raw=True, sequence_always_upper=True,
                                     rebuild=False)
        except Exception as exc:  # pyfaidx raises several types for bad files
            raise InputError(f"{self.path}: cannot index as FASTA ({exc})") from exc
        self._names: dict[int, str] = {}
        from crosscohort.contract.sumstats import SumstatsError, chrom_code

        for name in self._fa.keys():
            try:
                self._names.setdefault(chrom_code(name), name)
            except SumstatsError:
                continue

    def contig(self, code: int) -> str | None:
        """The FASTA's name of chromosome ``code``, or None."""
        return self._names.get(int(code))

    def base(self, code: int, pos: int) -> str | None:
        """Base at 1-based ``pos`` of chromosome ``code``; None outside the contig."""
        seq = self.sequence(code, pos, pos)
        return seq if seq else None

    def sequence(self, code: int, start: int, end: int) -> str:
        """Bases ``start..end`` (1-based, inclusive); empty outside the contig."""
        name = self.contig(code)
        if name is None or start < 1:
            return ""
        rec = self._fa[name]
        if start > len(rec):
            return ""
        return str(rec[start - 1:min(end, len(rec))])


@dataclass(frozen=True)
class BuildCheck:
    """Outcome of :func:`build_match`."""

    n_tested: int
    n_match: int

    @property
    def rate(self) -> float:
        return self.n_match / self.n_tested if self.n_tested else float("nan")

    @property
    def matches(self) -> bool:
        """True when more than :data:`BUILD_MATCH_MIN` of the tested SNPs match."""
        return self.n_tested > 0 and self.rate > BUILD_MATCH_MIN


def build_match(df: pl.DataFrame, genome: Genome, *, sample: int = BUILD_SAMPLE) -> BuildCheck:
    """How many of a cohort's SNPs have the FASTA base at their position among their two alleles.

    Parameters
    ----------
    df
        ``chromosome`` (labels or codes), ``base_pair_location``, ``effect_allele``,
        ``other_allele``.
    genome
        The reference genome of the build to test.
    sample
        At most this many SNPs, evenly spaced over the file, are tested.

    Notes
    -----
    The REF allele of a SNP is one of its two alleles on the forward strand
    (GWAS-SSF requires the forward strand), so on the right build nearly all
    SNPs match; on another build the base at a position is unrelated to the
    alleles and about half match. Files whose REF is not known (METAL,
    GWAMA) are handled alike. A position beyond the contig counts as a mismatch;
    a chromosome the FASTA lacks is not tested.
    """
    from crosscohort.contract.keys import normalise_chromosomes

    ea, oa = pl.col("effect_allele"), pl.col("other_allele")
    snps = df.select(
        normalise_chromosomes(df.get_column("chromosome")).alias("c"),
        pl.col("base_pair_location").alias("p"), ea.alias("a"), oa.alias("b"),
    ).filter(is_snp(pl.col("a"), pl.col("b")).fill_null(False) & pl.col("c").is_not_null()
             & pl.col("p").is_not_null())
    if snps.height > sample:
        snps = snps[np.linspace(0, snps.height - 1, sample).astype(np.int64)]
    n = hit = 0
    for c, p, a, b in snps.iter_rows():
        if genome.contig(c) is None:
            continue
        n += 1
        base = genome.base(c, p)
        hit += base is not None and base in (a, b)
    return BuildCheck(n_tested=n, n_match=hit)


def liftover(df: pl.DataFrame, chain: str | Path) -> tuple[pl.DataFrame, dict[str, int], dict[str, int]]:
    """Positions lifted with a UCSC chain file; rows that do not lift are removed and counted.

    Returns
    -------
    (frame, removed, changed)
        ``removed``: ``not_lifted`` (no or several target positions, or an
        indel lifted onto the minus strand), ``build_mismatch`` (lifted onto a
        contig outside 1-22, X, Y, MT). ``changed``: ``lifted_over`` (rows
        whose position or chromosome changed), ``lift_strand_complemented``
        (SNPs lifted onto the minus strand, alleles complemented). Rows
        without a position pass untouched.
    """
    from pyliftover import LiftOver

    from crosscohort.contract.keys import normalise_chromosomes
    from crosscohort.contract.sumstats import SumstatsError, chrom_code

    chain = Path(chain)
    if not chain.exists():
        raise InputError(f"{chain}: no such file (chain)")
    try:
        lo = LiftOver(str(chain))
    except Exception as exc:
        raise InputError(f"{chain}: cannot read as a UCSC chain file ({exc})") from exc
    sources = set(lo.chain_file.chain_index.keys())

    def source_name(code: int) -> str | None:
        label = chrom_label(code)
        for name in (f"chr{label}", label, *(("chrM", "M") if code == 25 else ())):
            if name in sources:
                return name
        return None

    work = df.with_columns(normalise_chromosomes(df.get_column("chromosome")).alias("_lc"))
    positioned = pl.col("_lc").is_not_null() & pl.col("base_pair_location").is_not_null()
    keys = work.filter(positioned).select("_lc", "base_pair_location").unique()
    to_c, to_p, strand_minus, status = [], [], [], []
    for code, pos in keys.iter_rows():
        name = source_name(code)
        hits = lo.convert_coordinate(name, pos - 1) if name is not None else []
        if not hits or len(hits) != 1:
            to_c.append(None)
            to_p.append(None)
            strand_minus.append(False)
            status.append("not_lifted")
            continue
        tc, tp, strand, _ = hits[0]
        try:
            code_t = chrom_code(tc)
        except SumstatsError:
            code_t = None
        to_c.append(code_t)
        to_p.append(int(tp) + 1)
        strand_minus.append(strand == "-")
        status.append("ok" if code_t is not None else "build_mismatch")
    lifted = keys.with_columns(
        pl.Series("_tc", to_c, dtype=pl.Int64), pl.Series("_tp", to_p, dtype=pl.Int64),
        pl.Series("_minus", strand_minus, dtype=pl.Boolean), pl.Series("_st", status, dtype=pl.String),
    )
    work = work.join(lifted, on=["_lc", "base_pair_location"], how="left", maintain_order="left")
    ea, oa = pl.col("effect_allele"), pl.col("other_allele")
    snp = is_snp(ea, oa).fill_null(False)
    minus = pl.col("_minus").fill_null(False)
    work = work.with_columns(
        pl.when(minus & ~snp).then(pl.lit("not_lifted")).otherwise(pl.col("_st")).alias("_st")
    )
    removed = {
        reason: int(work.select((pl.col("_st") == reason).sum()).item())
        for reason in ("not_lifted", "build_mismatch")
    }
    work = work.filter(pl.col("_st").is_null() | (pl.col("_st") == "ok"))
    moved = (pl.col("_st") == "ok") & ((pl.col("_tc") != pl.col("_lc"))
                                      | (pl.col("_tp") != pl.col("base_pair_location")))
    changed = {
        "lifted_over": int(work.select(moved.fill_null(False).sum()).item()),
        "lift_strand_complemented": int(work.select(minus.sum()).item()),
    }
    out = work.with_columns(
        pl.when(pl.col("_st") == "ok").then(pl.col("_tc").cast(pl.String))
        .otherwise(pl.col("chromosome").cast(pl.String)).alias("chromosome"),
        pl.when(pl.col("_st") == "ok").then(pl.col("_tp"))
        .otherwise(pl.col("base_pair_location")).alias("base_pair_location"),
        pl.when(minus).then(complement(ea)).otherwise(ea).alias("effect_allele"),
        pl.when(minus).then(complement(oa)).otherwise(oa).alias("other_allele"),
    )
    return out.select(df.columns), removed, changed


def declared_build(path: str | Path) -> str | None:
    """The build a bundle's metadata declares (``{trait}.meta.yaml``: ``genome_assembly``), if any."""
    path = Path(path)
    stem = path.name
    for suffix in (".gz", ".tsv", ".parquet", ".txt"):
        stem = stem.removesuffix(suffix)
    meta = path.with_name(f"{stem}.meta.yaml")
    if not meta.exists():
        return None
    try:
        doc = yaml.safe_load(meta.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{meta}: cannot read metadata ({exc})") from exc
    value = doc.get("genome_assembly") if isinstance(doc, dict) else None
    return normalise_build(value) if value else None


def check_build(
    df: pl.DataFrame,
    *,
    cohort: str,
    source: str,
    declared: str | None,
    target: str | None,
    genome: Genome | None = None,
    chain: str | Path | None = None,
) -> tuple[pl.DataFrame, dict[str, int], dict[str, int], BuildCheck | None]:
    """The cohort on the reference build: checked against the FASTA, lifted over, or refused.

    Parameters
    ----------
    df
        The cohort's rows (``chromosome``, ``base_pair_location``, alleles).
    cohort, source
        Named in errors.
    declared
        The cohort's declared build (None: undeclared, taken to be ``target``).
    target
        The build of the reference FASTA / table and of the output (None: the declared one).
    genome
        The reference FASTA of ``target``; without it the declaration is trusted.
    chain
        UCSC chain file from the declared build to ``target``.

    Returns
    -------
    (frame, removed, changed, check)
        ``removed``/``changed`` as :func:`liftover` (empty without a liftover);
        ``check`` the FASTA match of the rows returned (None without a FASTA).

    Raises
    ------
    InputError
        ``declared X, detected Y``: the data do not match the FASTA and there is
        no chain (or the declaration already names the FASTA's build, so a
        chain from it cannot help); the data match the FASTA although another
        build is declared; or the lifted data still do not match.
    """
    declared = normalise_build(declared) if declared else None
    target = normalise_build(target) if target else declared
    if genome is None:
        if declared and target and declared != target:
            if chain is None:
                raise InputError(
                    f"cohort {cohort} ({source}): declared build {declared}, reference build "
                    f"{target}; rule: cohorts are lifted to the reference build; give --chain "
                    f"({declared} to {target})"
                )
            lifted, removed, changed = liftover(df, chain)
            return lifted, removed, changed, None
        return df, {}, {}, None
    check = build_match(df, genome)
    fa = genome.path.name
    shown_target = target or "the FASTA's build"
    if check.n_tested == 0:
        return df, {}, {}, check
    if check.matches:
        if declared and target and declared != target:
            raise InputError(
                f"cohort {cohort} ({source}): declared build {declared}, detected build {target} "
                f"(REF base matches {check.rate:.1%} of {check.n_tested} SNPs in {fa}); "
                "rule: the declared build must match the data; fix the declaration"
            )
        return df, {}, {}, check
    detected = f"not {shown_target} (REF base matches {check.rate:.1%} of {check.n_tested} SNPs " \
        f"in {fa}, <= {BUILD_MATCH_MIN:.0%})"
    if chain is None or declared is None or declared == target:
        hint = ("give --chain from the cohort's build to " + shown_target
                if chain is None else "declare the cohort's real build (--cohort-build)")
        raise InputError(
            f"cohort {cohort} ({source}): declared build {declared or 'none (taken as ' + shown_target + ')'}, "
            f"detected build {detected}; rule: a cohort must be on the reference build or "
            f"lifted over; {hint}"
        )
    lifted, removed, changed = liftover(df, chain)
    after = build_match(lifted, genome)
    if not after.matches:
        raise InputError(
            f"cohort {cohort} ({source}): declared build {declared}, detected build neither "
            f"{target} nor {declared} (after liftover with {Path(chain).name} the REF base "
            f"matches {after.rate:.1%} of {after.n_tested} SNPs in {fa})"
        )
    return lifted, removed, changed, after


def read_reference_ids(path: str | Path) -> pl.DataFrame | None:
    """``rsid, chromosome, base_pair_location`` of a reference table with an id column, else None.

    The id column is the first of ``rsid``, ``id``, ``variant_id``, ``snp`` present.
    """
    path = Path(path)
    header = pl.read_csv(path, separator="\t", n_rows=0, infer_schema=False).columns
    id_col = next((c for c in ("rsid", "id", "variant_id", "snp") if c in header), None)
    if id_col is None:
        return None
    ids = pl.read_csv(path, separator="\t", columns=[id_col, "chromosome", "base_pair_location"],
                      infer_schema=False, null_values=["NA", ""])
    return ids.select(
        pl.col(id_col).alias("rsid"), pl.col("chromosome").cast(pl.String),
        pl.col("base_pair_location").cast(pl.Int64),
    ).unique(subset=["rsid"], keep="none")


def place_markers(df: pl.DataFrame, ids: pl.DataFrame) -> pl.DataFrame:
    """Rows with a marker name but no chromosome/position get the reference's position for it.

    Counted on kept rows as ``changed.position_from_reference`` (private flag
    ``_rd_position_from_reference``). Markers the reference lists twice are
    not placed (ambiguous).
    """
    if "rsid" not in df.columns:
        return df
    unplaced = df.filter(pl.col("chromosome").is_null() & pl.col("base_pair_location").is_null())
    # Only the ids the file needs take part in the join.
    ids = ids.join(unplaced.select("rsid").unique(), on="rsid", how="semi")
    j = df.join(ids.rename({"chromosome": "_ic", "base_pair_location": "_ip"}), on="rsid",
                how="left", maintain_order="left")  # file order breaks duplicate ties later
    place = (pl.col("chromosome").is_null() & pl.col("base_pair_location").is_null()
             & pl.col("_ic").is_not_null())
    return j.with_columns(
        pl.when(place).then(pl.col("_ic")).otherwise(pl.col("chromosome")).alias("chromosome"),
        pl.when(place).then(pl.col("_ip")).otherwise(pl.col("base_pair_location"))
        .alias("base_pair_location"),
        place.alias("_rd_position_from_reference"),
    ).drop("_ic", "_ip")

