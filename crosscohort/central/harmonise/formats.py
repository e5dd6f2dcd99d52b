"""What other tools' summary-statistics files look like: format presets and a header dictionary.

:data:`PRESETS` says, per tool (PLINK 2, REGENIE, BOLT-LMM, SAIGE, METAL,
GWAMA, GWAS-SSF), which header holds which field; :data:`HEADER_DICTIONARY`
lists common header names for files no preset knows; :func:`resolve_columns`
applies either (plus a user's ``--columns`` mapping) to one header. The
reading itself is in :mod:`crosscohort.central.harmonise.readers`, the one reader
of every format (the oracle tests read the peers' files through it too).
"""

from __future__ import annotations

from dataclasses import dataclass

from crosscohort.contract.errors import InputError

__all__ = [
    "FORMAT_NAMES",
    "FormatPreset",
    "HEADER_DICTIONARY",
    "INPUT_FIELDS",
    "PRESETS",
    "detect_format",
    "header_key",
    "resolve_columns",
]

# --- Format presets and the header dictionary ---------------------------------------
#
# A *field* is what a column means to harmonisation. GWAS-SSF fields keep
# their registry names (crosscohort.contract.sumstats.COLUMNS); the others are inputs
# that readers convert into GWAS-SSF values and never write out.

#: Fields that are not GWAS-SSF columns but that readers turn into them.
INPUT_FIELDS: dict[str, str] = {
    "marker": "marker name or rsID (becomes rsid; keys rows without chromosome/position)",
    "ref": "reference allele of a REF/ALT file (plink2); with A1 gives the other allele",
    "alt": "alternate allele(s) of a REF/ALT file (plink2)",
    "odds_ratio": "odds ratio; beta = ln(OR) when no beta column",
    "ci_lower": "lower bound of the 95% CI of the OR; with ci_upper gives SE",
    "ci_upper": "upper bound of the 95% CI of the OR",
    "z": "signed z (or t) statistic; gives p (and SE from beta) where missing",
    "chi_square": "1-df chi-square (plink 1.9 --assoc CHISQ); its root is |z|, used as z where "
                  "there is no z",
    "strand": "+ or -; alleles on - are complemented (GWAMA)",
    "test": "test name (plink2, REGENIE); only ADD rows are kept",
    "imputed": "1 if imputed, 0 if genotyped (GWAMA IMPUTED/IMP); counted, values unchanged",
    "error_code": "the tool's verdict on the row's fit (plink2 ERRCODE): a row with a code other "
                  "than '.' is removed, counted as errcode_<code>",
    "test_note": "the tool's note on the row's test (REGENIE EXTRA): a row noting TEST_FAIL is "
                 "removed, counted as test_failed; other notes (DF=k, NA) leave the row as printed",
}


@dataclass(frozen=True)
class FormatPreset:
    """How one tool's output maps onto fields.

    Attributes
    ----------
    name
        The ``--format`` value.
    columns
        Field -> header names in priority order (the first present wins;
        matched case-insensitively, a leading ``#`` ignored).
    signature
        Header names (case-insensitive) whose joint presence identifies the
        format under ``--format auto``.
    missing
        Extra text read as missing besides ``NA``, ``NaN``, ``.`` and empty, in every column.
    sentinels
        (field, value) pairs: the number read as missing in that field only
        (GWAMA's -9 in N and EAF; a beta of -9 stays a beta).
    other_signatures
        Further header name sets that identify the format as well (GWAMA 2.1's
        names, which GWAMA's own packaged sample still uses).
    description
        One line for ``--help`` and the docs.
    chromosome_labels
        (file label, label) pairs: the tool's own chromosome codes that mean
        something else in GWAS-SSF (PLINK 1's 25 is XY, not MT).
    dictionary
        Fields the preset does not name are looked up in :data:`HEADER_DICTIONARY`
        (a tool whose outputs vary in their columns: PLINK 1.9's ``FRQ``/``INFO``
        of ``--dosage``).
    """

    name: str
    columns: dict[str, tuple[str, ...]]
    signature: tuple[str, ...]
    missing: tuple[str, ...] = ()
    description: str = ""
    sentinels: tuple[tuple[str, float], ...] = ()
    chromosome_labels: tuple[tuple[str, str], ...] = ()
    dictionary: bool = False
    other_signatures: tuple[tuple[str, ...], ...] = ()


def _p(name: str, signature: tuple[str, ...], description: str, missing: tuple[str, ...] = (),
       sentinels: tuple[tuple[str, float], ...] = (),
       chromosome_labels: tuple[tuple[str, str], ...] = (), dictionary: bool = False,
       other_signatures: tuple[tuple[str, ...], ...] = (),
       **columns: str | tuple[str, ...]) -> FormatPreset:
    cols = {k: (v,) if isinstance(v, str) else tuple(v) for k, v in columns.items()}
    return FormatPreset(name, cols, signature, missing, description, sentinels, chromosome_labels,
                        dictionary, other_signatures)


#: Presets, in the order ``--format auto`` tries their signatures.
PRESETS: dict[str, FormatPreset] = {p.name: p for p in (
    _p("plink2", ("#CHROM", "POS", "ID", "REF", "ALT", "A1"),
       "PLINK 2 --glm .glm.linear/.glm.logistic(.hybrid); A1 is the effect allele",
       chromosome=("#CHROM", "CHROM"), base_pair_location="POS", marker="ID", ref="REF",
       alt="ALT", effect_allele="A1", other_allele=("OMITTED", "AX"), beta="BETA",
       odds_ratio="OR", standard_error=("SE", "LOG(OR)_SE"), ci_lower="L95", ci_upper="U95",
       z=("Z_STAT", "T_STAT"), p_value="P", neg_log_10_p_value=("LOG10_P", "NEG_LOG10_P"),
       effect_allele_frequency="A1_FREQ", n="OBS_CT", test="TEST", error_code="ERRCODE",
       info="MACH_R2",  # cols=+machr2: MaCH's r2, plink2's "frequently labeled INFO"
       # --output-chr 26 prints PLINK codes: 25 is XY, 26 MT (the default labels are text)
       chromosome_labels=(("25", "XY"), ("26", "MT"))),
    _p("regenie", ("ALLELE0", "ALLELE1", "LOG10P"),
       "REGENIE step 2 .regenie; ALLELE1 is the effect allele, LOG10P is -log10 p",
       chromosome="CHROM", base_pair_location="GENPOS", marker="ID", other_allele="ALLELE0",
       effect_allele="ALLELE1", effect_allele_frequency="A1FREQ", info="INFO", n="N",
       # REGENIE >= 3 prints a binary trait's counts (N_CASES, N_CONTROLS after N): the
       # meta-analysis sums them and takes n_effective from them.
       n_cases="N_CASES", n_controls="N_CONTROLS",
       test="TEST", test_note="EXTRA", beta="BETA", standard_error="SE",
       neg_log_10_p_value="LOG10P", p_value="P"),
    _p("bolt", ("ALLELE1", "ALLELE0", "A1FREQ", "BETA"),
       "BOLT-LMM; ALLELE1 is the effect allele; p from P_BOLT_LMM_INF, else P_BOLT_LMM, else P_LINREG",
       marker="SNP", chromosome="CHR", base_pair_location="BP", effect_allele="ALLELE1",
       other_allele="ALLELE0", effect_allele_frequency="A1FREQ", info="INFO", beta="BETA",
       standard_error="SE", p_value=("P_BOLT_LMM_INF", "P_BOLT_LMM", "P_LINREG")),
    _p("saige", ("Allele1", "Allele2", "p.value"),
       "SAIGE step 2; BETA is per copy of Allele2, so Allele2 is the effect allele",
       chromosome="CHR", base_pair_location="POS", marker=("MarkerID", "SNPID", "rsid"),
       other_allele="Allele1", effect_allele="Allele2",
       effect_allele_frequency="AF_Allele2", info="imputationInfo", n="N",
       n_cases=("N_case", "N.Cases"), n_controls=("N_ctrl", "N.Controls"),
       beta="BETA", standard_error="SE", p_value="p.value"),
    _p("metal", ("MarkerName", "Allele1", "Allele2"),
       "METAL input or output (.tbl) table; Allele1 is the effect allele",
       marker="MarkerName", effect_allele="Allele1", other_allele="Allele2",
       beta=("Effect", "BETA"), standard_error=("StdErr", "SE"),
       p_value=("P-value", "P.value", "PVALUE", "P"), effect_allele_frequency=("Freq1", "EAF"),
       n=("Weight", "N"), chromosome=("Chromosome", "CHR"),
       base_pair_location=("Position", "POS")),
    # GWAMA 2.2.2 reads MARKERNAME, EA, NEA, ... by default and other names through
    # --name_marker/--name_ea/...; its own packaged sample (examples/samples) is written
    # with SNP, EFFECT_ALLELE, NON_EFFECT_ALLELE, IMPUTED/IMP (the names GWAMA 2.1 read).
    # Both sets are accepted, the default name first.
    _p("gwama", ("MARKERNAME", "EA", "NEA"),
       "GWAMA study input (MARKERNAME or SNP, EA or EFFECT_ALLELE, NEA or NON_EFFECT_ALLELE, "
       "BETA/SE or OR/OR_95L/OR_95U, N, EAF, STRAND, IMPUTED or IMP, CHR, POS); -9 is missing "
       "in N and EAF; STRAND - complements the alleles",
       sentinels=(("n", -9.0), ("effect_allele_frequency", -9.0)),
       other_signatures=(("SNP", "EFFECT_ALLELE", "NON_EFFECT_ALLELE"),),
       marker=("MARKERNAME", "SNP", "MARKER", "SNPID", "RSID", "RS_NUMBER"),
       effect_allele=("EA", "EFFECT_ALLELE"),
       other_allele=("NEA", "NON_EFFECT_ALLELE", "OTHER_ALLELE"), beta="BETA",
       standard_error="SE", odds_ratio="OR", ci_lower="OR_95L", ci_upper="OR_95U", n="N",
       effect_allele_frequency="EAF", strand="STRAND", imputed=("IMPUTED", "IMP"),
       chromosome=("CHR", "CHROMOSOME"), base_pair_location=("POS", "POSITION")),
    # PLINK 1.9 --assoc/--linear/--logistic (and 1.07): always CHR SNP BP first, A1 the minor
    # allele (BETA/OR per copy), chromosomes as PLINK 1's numeric codes.
    _p("plink1", ("CHR", "SNP", "BP", "A1"),
       "PLINK 1.9 --assoc/--linear/--logistic (CHR SNP BP first); A1 is the effect (minor) "
       "allele; chromosome codes 23 X, 24 Y, 25 XY (read as X), 26 MT",
       chromosome_labels=(("25", "XY"), ("26", "MT")), dictionary=True,
       chromosome="CHR", base_pair_location="BP", marker="SNP", effect_allele="A1",
       other_allele="A2", beta="BETA", odds_ratio="OR", standard_error="SE", ci_lower="L95",
       ci_upper="U95", z=("STAT", "T"), chi_square="CHISQ", p_value="P", n="NMISS",
       test="TEST"),
    _p("gwas-ssf", ("chromosome", "base_pair_location", "effect_allele", "other_allele"),
       "GWAS Catalog GWAS-SSF (our export bundles); other columns are passed through",
       chromosome="chromosome", base_pair_location="base_pair_location",
       effect_allele="effect_allele", other_allele="other_allele", beta="beta",
       odds_ratio="odds_ratio", standard_error="standard_error", ci_lower="ci_lower",
       ci_upper="ci_upper", effect_allele_frequency="effect_allele_frequency",
       p_value="p_value", neg_log_10_p_value="neg_log_10_p_value",
       # The GWAS Catalog's converter writes BOLT's and SNPTEST's rsIDs as variant_id: taken
       # as the marker where there is no rsid column (rsID-shaped values only; readers.py).
       marker=("rsid", "variant_id"), n="n",
       n_cases="n_cases", n_controls="n_controls", info="info",
       # Not a GWAS-SSF column, but converters pass the tool's TEST through (the GWAS
       # Catalog's gwas-ssf format does for REGENIE): only ADD rows are per-allele effects.
       # It passes REGENIE's EXTRA through too: its TEST_FAIL rows are failed tests.
       test="test", test_note="extra"),
)}

#: ``--format`` values: the presets, ``auto`` (signatures, then :data:`HEADER_DICTIONARY`)
#: and ``mapped`` (only the ``--columns`` mapping).
FORMAT_NAMES: tuple[str, ...] = ("auto", *PRESETS, "mapped")

#: Common header names of each field, for files no preset recognises. Matched
#: case-insensitively with a leading ``#`` ignored. Two headers of one file
#: naming the same field (``A1`` and ``ALT``) are an error that lists both.
#: ``A1``/``ALLELE1``/``ALT`` are read as the effect allele (PLINK, METAL,
#: GWAS-SSF conventions); use a preset or ``--columns`` for SAIGE-style files
#: where ``Allele2`` is the effect allele.
HEADER_DICTIONARY: dict[str, tuple[str, ...]] = {
    "chromosome": ("chromosome", "chr", "chrom", "chromosome_name", "chr_name"),
    "base_pair_location": ("base_pair_location", "pos", "bp", "position", "bp_position",
                           "chr_position", "basepair"),
    "marker": ("rsid", "snp", "snpid", "snp_id", "markername", "marker", "marker_name",
               "id", "rs_number", "rs", "variant", "markerid"),
    "effect_allele": ("effect_allele", "ea", "a1", "allele1", "alt", "tested_allele",
                      "coded_allele", "eff_allele", "risk_allele"),
    "other_allele": ("other_allele", "nea", "a2", "allele2", "ref", "non_effect_allele",
                     "noncoded_allele", "allele0"),
    "beta": ("beta", "b", "effect", "effect_size", "log_or", "logor"),
    "odds_ratio": ("odds_ratio", "or"),
    "standard_error": ("standard_error", "se", "stderr", "se_beta", "sebeta", "log(or)_se"),
    "ci_lower": ("ci_lower", "l95", "or_95l", "lower_ci", "or_lower"),
    "ci_upper": ("ci_upper", "u95", "or_95u", "upper_ci", "or_upper"),
    "z": ("z", "zscore", "z_score", "z_stat", "zstat", "stat"),
    "chi_square": ("chisq", "chi_square", "chi2", "chi_sq", "chisquare"),
    "p_value": ("p_value", "p", "pval", "pvalue", "p-value", "p.value", "p_val"),
    "neg_log_10_p_value": ("neg_log_10_p_value", "log10p", "log10_p", "mlog10p", "neglog10p",
                           "-log10p", "minus_log10_p"),
    "effect_allele_frequency": ("effect_allele_frequency", "eaf", "freq1", "freq", "af",
                                "a1freq", "a1_freq", "effect_allele_freq", "frq"),
    "n": ("n", "n_total", "obs_ct", "nmiss", "sample_size", "totaln", "n_samples", "weight"),
    "n_cases": ("n_cases", "ncase", "n_case", "ncases", "cases"),
    "n_controls": ("n_controls", "ncontrol", "n_ctrl", "ncontrols", "controls"),
    # Only names that mean imputation quality and nothing else: "r2" is as often the
    # variance explained (METAL's example data), so it is mapped with --columns only.
    "info": ("info", "imputation_info", "impinfo", "rsq", "r2hat", "info_score"),
    "strand": ("strand",),
    "imputed": ("imputed", "imp"),
    "test": ("test",),
    "error_code": ("errcode",),
    # REGENIE's name; only a TEST_FAIL note removes a row, so a column of that name
    # holding anything else changes nothing.
    "test_note": ("extra",),
}


def header_key(name: str) -> str:
    """The form in which header names are compared: lower case, no leading ``#``, stripped."""
    return name.strip().lstrip("#").strip().lower()


def detect_format(header: list[str]) -> str:
    """The preset whose signature the header carries, else ``mapped`` (header dictionary).

    A GWAS-SSF header is recognised only when every required GWAS-SSF column
    is present, so a file with a few GWAS-SSF-like names falls back to the
    dictionary (which knows them too). A preset whose signature the header
    carries but whose columns cannot be read from it (a METAL table re-saved by
    R: ``Allele1 Allele2 P.value`` is SAIGE's signature, without SAIGE's
    ``BETA``) is passed over for the next.
    """
    keys = {header_key(h) for h in header}
    for preset in PRESETS.values():
        if any(all(header_key(s) in keys for s in sig)
               for sig in (preset.signature, *preset.other_signatures)) and _readable(preset, keys):
            if preset.name == "bolt" and not any(k.startswith("p_bolt_lmm") or k == "p_linreg"
                                                 for k in keys):
                continue
            if preset.name == "plink1" and [header_key(h) for h in header[:3]] != ["chr", "snp", "bp"]:
                continue  # PLINK 1 prints CHR SNP BP first; other files keep the dictionary
            return preset.name
    return "mapped"


def _readable(preset: FormatPreset, keys: set[str]) -> bool:
    """Whether a header (its :func:`header_key` s) holds what the reader requires under
    ``preset``: effect allele, other allele (or REF/ALT), beta or OR, SE or what gives it
    (CI, z, p, -log10 p), and a chromosome or a marker name."""
    has = {f for f, names in preset.columns.items() if any(header_key(n) in keys for n in names)}
    need = [("effect_allele",), ("beta", "odds_ratio"),
            ("standard_error", "ci_lower", "z", "p_value", "neg_log_10_p_value"),
            ("chromosome", "marker")]
    return all(has & set(group) for group in need) and (
        "other_allele" in has or {"ref", "alt"} <= has)


def resolve_columns(
    header: list[str],
    *,
    format: str,
    mapping: dict[str, str] | None = None,
    source: str = "input",
    mapping_from: str | None = None,
) -> dict[str, str]:
    """Field -> the header name that holds it, for one file.

    Parameters
    ----------
    header
        The file's header names, as written.
    format
        A preset name, or ``mapped`` for the header dictionary.
    mapping
        Field -> header name from ``--columns``; overrides the preset or dictionary.
        A preset-format file that has none of the mapped headers ignores the
        mapping (one mapping serves a run of mixed files), unless the mapping
        is the file's own (``mapping_from``); a file with only some of them is
        an error.
    source
        File name for error messages.
    mapping_from
        The per-file map (``FILE:MAP.yaml``) the mapping came from: the file's own,
        so every header it names must be there (no preset fallback); named in errors.

    Raises
    ------
    InputError
        When the mapping names a header the file lacks, or (dictionary only)
        two headers match one field; the message lists the candidates.
    ConfigError
        When the mapping names an unknown field.
    """
    from crosscohort.contract.errors import ConfigError

    by_key: dict[str, str] = {}
    for h in header:
        by_key.setdefault(header_key(h), h)
    out: dict[str, str] = {}
    mapped_headers = {header_key(v) for v in (mapping or {}).values()}
    if format in PRESETS:
        for field, names in PRESETS[format].columns.items():
            for name in names:
                if header_key(name) in by_key:
                    out[field] = by_key[header_key(name)]
                    break
    # Where the user fixes a mapping: the file's own map replaces --columns for that file.
    fix_where = f"in {mapping_from}" if mapping_from else "with --columns"
    if format == "mapped" or (format in PRESETS and PRESETS[format].dictionary):
        taken_by_preset = {header_key(h) for h in out.values()}
        for field, names in HEADER_DICTIONARY.items():
            if (mapping and field in mapping) or field in out:
                continue
            hits = [by_key[n] for n in dict.fromkeys(names) if n in by_key
                    and n not in mapped_headers and n not in taken_by_preset]
            if len(hits) > 1:
                raise InputError(
                    f"{source}: header is ambiguous for {field}: columns {hits} all match; "
                    f"rule: one column per field; choose {fix_where} ({field}: NAME) or "
                    f"{'format: PRESET there' if mapping_from else '--format'}"
                )
            if hits:
                out[field] = hits[0]
    if format not in PRESETS and format != "mapped":
        raise ConfigError(f"unknown format {format!r}; expected one of {list(FORMAT_NAMES)}")
    mapping = dict(mapping or {})
    for field in mapping:
        if field not in HEADER_DICTIONARY:
            raise ConfigError(
                f"--columns: unknown field {field!r}; expected one of {sorted(HEADER_DICTIONARY)}"
            )
    absent = {f: n for f, n in mapping.items() if header_key(n) not in by_key}
    # One mapping serves a whole run: a preset file that has none of its columns is
    # read by its preset alone; a file with some but not all of them is an error.
    # A file's own map (FILE:MAP.yaml) is for that file alone: what it names must be there.
    if format in PRESETS and len(absent) == len(mapping) and mapping_from is None:
        mapping = {}
    elif absent:
        raise InputError(
            f"{source}: {mapping_from or '--columns'} maps "
            f"{', '.join(f'{f} to {n!r}' for f, n in absent.items())}, "
            f"which the header lacks; header is {header}; rule: a mapped column is in the file"
        )
    for field, name in mapping.items():
        out[field] = by_key[header_key(name)]
    # Names are compared without case and leading '#': two columns that differ only so
    # would be one of them read and the other ignored.
    same: dict[str, list[str]] = {}
    for h in header:
        same.setdefault(header_key(h), []).append(h)
    for name in out.values():
        if len(same[header_key(name)]) > 1:
            raise InputError(
                f"{source}: columns {same[header_key(name)]!r} are one name but for case or a "
                "leading '#'; rule: one column per name (rename one of them)"
            )
    taken: dict[str, str] = {}
    for field, name in out.items():
        if name in taken:
            raise InputError(
                f"{source}: column {name!r} would be both {taken[name]} and {field}; "
                f"rule: one field per column; fix {fix_where}"
            )
        taken[name] = field
    return out
