"""``crosscohort qc``: sample and variant QC with plink2's rules, a ledger and per-variant stats."""

from __future__ import annotations

import argparse
import sys

from crosscohort.commands import add_command, add_schema_option
from crosscohort.commands.genotype_options import (
    add_genotype_options,
    default_cohort_name,
    open_genotypes,
)
from crosscohort.schemas import default, describe_range, out_of_range


def run(args: argparse.Namespace) -> int:
    from crosscohort.runtime.jit import SMALL_JOB_CELLS, small_job
    from crosscohort.tre.qc import QcThresholds, run_qc, write_qc

    thresholds = QcThresholds(geno=args.geno, mind=args.mind, maf=args.maf, mac=args.mac, hwe=args.hwe)
    cohort = args.cohort or default_cohort_name(args)
    genotypes = open_genotypes(args)
    # A small cohort decodes with numpy rather than load numba (crosscohort.runtime.jit; same calls).
    with small_job(genotypes.n_samples * genotypes.n_variants <= SMALL_JOB_CELLS):
        result = run_qc(genotypes, cohort=cohort, thresholds=thresholds,
                        chunk_size=args.chunk_size, nonfounders=args.nonfounders,
                        king_cutoff=args.king_cutoff, relatives_min_kinship=args.relatives_min_kinship,
                        log=sys.stderr)
    paths = write_qc(result, args.out_prefix)
    s, v = result.sample_ledger, result.variant_ledger
    print(f"qc {cohort}: kept {s.n_kept}/{s.n_in} samples, {v.n_kept}/{v.n_in} variants; "
          f"removed samples {s.removed}, variants {v.removed}; wrote {paths['ledger']}", file=sys.stderr)
    return 0


def _kinship_or_none(key: str):
    """An argparse type: a kinship within the schema's range of ``key``, or 'none'."""

    def parse(text: str) -> float | None:
        if text.lower() == "none":
            return None
        expected = f"expected a kinship in {describe_range(key)} or 'none'"
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{expected}; got {text!r}") from None
        if out_of_range(key, v):
            raise argparse.ArgumentTypeError(f"{expected}; got {v}")
        return v

    return parse


_king_cutoff = _kinship_or_none("qc.king_cutoff")


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "qc",
        description=(
            "Sample and variant QC of one cohort with plink2's rules and order: samples with a "
            "missing call rate above --mind are removed first (over all variants); then, on the "
            "remaining samples, variants failing --geno, --hwe, --maf or --mac. A variant failing "
            "several rules is counted under the first, in that order. Frequencies, MAC and the "
            "Hardy-Weinberg exact test use founders only (as plink2) unless --nonfounders. "
            "Then, on the kept samples and kept autosomal variants, KING-robust kinship of all "
            "pairs; one sample of each pair above --king-cutoff is removed, the sample in most "
            "related pairs first, as plink2 --king-cutoff. "
            "Writes O.samples.keep, O.variants.keep, O.ledger.json, O.variant_stats.tsv.gz and "
            "O.king.tsv: every pair above --relatives-min-kinship (or above --king-cutoff if lower), "
            "whether or not relatives are removed, in plink2's .kin0 columns, the table "
            "'crosscohort assoc --relatives' reads; with both 'none', no KING and no O.king.tsv. "
            "Any genotype container (--bfile, --pfile, --bgen, --vcf) gives the same results for the "
            "same hard calls. From dosages (.pgen/BGEN/VCF DS), as plink2: call rates, the HWE test "
            "and KING use hard calls (a dosage within 0.1 of 0, 1 or 2, else missing: plink2's "
            "--hard-call-threshold), frequencies, MAF and MAC use dosages. "
            "These files hold individual-level IDs: they stay inside the TRE."
        ),
    )
    add_genotype_options(p)
    p.add_argument("--out-prefix", required=True, metavar="O", help="output prefix")
    p.add_argument("--cohort", default=None, help="cohort id for the ledger (default: name of the first genotype input)")
    add_schema_option(p, "qc.geno", type=float, help="remove variants with missing call rate above this")
    add_schema_option(p, "qc.mind", type=float, help="remove samples with missing call rate above this")
    add_schema_option(p, "qc.maf", type=float, help="remove variants with minor allele frequency below this")
    add_schema_option(p, "qc.mac", type=float, help="remove variants with minor allele count below this")
    add_schema_option(p, "qc.hwe", type=float, help="remove variants with Hardy-Weinberg exact test p below this, no mid-p")
    p.add_argument("--nonfounders", action="store_true",
                   help="use all samples, not only founders, for frequencies, MAC and HWE (plink2's flag)")
    king = default("qc.king_cutoff")
    p.add_argument("--king-cutoff", type=_king_cutoff, default=king, metavar="K|none",
                   help=f"remove one of each pair with KING-robust kinship above K (default {king}: "
                        "closer than third degree; plink2 --king-cutoff); 'none' to keep relatives "
                        "(e.g. for a mixed model). Memory: n x n/blocks, ~20 bytes a pair per block")
    floor = default("qc.relatives_min_kinship")
    p.add_argument("--relatives-min-kinship", type=_kinship_or_none("qc.relatives_min_kinship"), default=floor,
                   metavar="K|none",
                   help=f"write every pair with KING-robust kinship above K to O.king.tsv, whatever "
                        f"--king-cutoff removes (default {floor}: third degree or closer, 2^-4.5; the "
                        "pairs 'crosscohort assoc --relatives' calibrates for); 'none': only the pairs "
                        "above --king-cutoff, no KING at all when that is 'none' too")
    p.add_argument("--chunk-size", type=int, default=2000, metavar="M",
                   help="variants read per chunk; memory is samples x M x 8 bytes (default 2000)")
    p.set_defaults(func=run)
