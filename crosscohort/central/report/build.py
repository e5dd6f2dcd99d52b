"""Build the one-file HTML report of a trait from the central stages' outputs.

Everything the page shows is computed here from the files given (summary
statistics, ledgers, audits, manifests, comparison); images are embedded as
base64 PNG data URIs and the stylesheet is inline, so the file opens offline
and can be archived or attached as it is.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import jinja2
import numpy as np
import polars as pl

from crosscohort import __version__
from crosscohort.central.loci import THRESHOLD, WINDOW_KB, distance_loci
from crosscohort.central.report.mrmega import MRMEGA_COLUMNS, is_mrmega, mrmega_views
from crosscohort.central.report.plots import (
    beta_scatter,
    manhattan,
    png_data_uri,
    qq,
)
from crosscohort.central.report.reading import TableDigest, read_digest, read_header
from crosscohort.central.report.sections import (
    Image,
    Table,
    association_model_table,
    audit_tables,
    comparison_section,
    eaf_image,
    forest_images,
    format_p,
    heterogeneity_table,
    lead_label,
    p_recomputed_image,
    read_loo,
    same_model_table,
    se_image,
)
from crosscohort.contract.errors import InputError
from crosscohort.contract.keys import VARIANT_KEY
from crosscohort.contract.ledger import Ledger, LedgerError, read_ledgers
from crosscohort.contract.stats import neg_log10_p_of_table
from crosscohort.contract.sumstats import SumstatsError, chrom_label, marker_only

__all__ = ["SECTION_IDS", "ReportError", "build_report", "format_p"]

#: Section ids of the page, in order (tests and links rely on them).
SECTION_IDS: tuple[str, ...] = (
    "summary", "meta", "pooled", "comparison", "cohorts", "ledger", "audit", "methods",
)

_TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
_PLOT_REQUIRED = ("chromosome", "base_pair_location")
#: Pipeline order of the stages that write ledgers (others follow in the order given).
_STAGE_ORDER = ("qc", "assoc", "association", "export", "export_gate", "gate", "verify", "harmonise", "meta")
#: Rows of a comparison table shown in the page (the full table is in the TSV).
_MAX_TABLE_ROWS = 200


class ReportError(InputError):
    """An input of the report is missing or unreadable; the message names the file and the rule."""


@dataclass(frozen=True)
class Panel:
    """One analysis (meta, pooled or a cohort): its plots and headline numbers."""

    name: str
    path: str
    n_variants: int
    lambda_gc: float
    n_significant: int
    images: tuple[Image, ...]
    facts: tuple[tuple[str, str], ...] = ()
    facts_qq: dict = field(default_factory=dict)


@dataclass
class _CohortFacts:
    n: int | None = None
    n_cases: int | None = None
    n_controls: int | None = None
    ancestry: list[str] = field(default_factory=list)
    n_variants: int | None = None
    lambda_gc: float | None = None


# ---------------------------------------------------------------- formatting

def _cell(v: object) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if not math.isfinite(f):
            return "—" if math.isnan(f) else str(f)
        if f == int(f) and abs(f) < 1e15:
            return f"{int(f):,}"
        return f"{f:.4g}"
    if isinstance(v, (list, tuple)) and all(not isinstance(x, (dict, list)) for x in v):
        return ", ".join(_cell(x) for x in v)
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, sort_keys=True, default=str)
    return str(v)


def _generic_tables(obj: object, caption: str) -> list[Table]:
    """Tables of an arbitrary JSON value: scalars as key/value rows, lists of records as tables.

    Used for audits, manifests, comparison metrics and summaries, whose
    structure belongs to other stages: whatever is there is shown.
    """
    tables: list[Table] = []
    if isinstance(obj, Mapping):
        scalars = [(str(k), _cell(v)) for k, v in obj.items() if not _is_nested(v)]
        if scalars:
            tables.append(Table(caption, ("key", "value"), tuple(scalars)))
        for k, v in obj.items():
            if _is_nested(v):
                tables.extend(_generic_tables(v, f"{caption} › {k}"))
    elif isinstance(obj, Sequence) and not isinstance(obj, str):
        if obj and all(isinstance(x, Mapping) for x in obj):
            headers: list[str] = []
            for rec in obj:
                headers.extend(str(k) for k in rec if str(k) not in headers)
            rows = tuple(tuple(_cell(rec.get(h)) for h in headers) for rec in obj)
            tables.append(Table(caption, tuple(headers), rows))
        else:
            tables.append(Table(caption, ("value",), tuple((_cell(x),) for x in obj)))
    else:
        tables.append(Table(caption, ("value",), ((_cell(obj),),)))
    return tables


def _is_nested(v: object) -> bool:
    if isinstance(v, Mapping):
        return True
    if isinstance(v, (list, tuple)):
        return any(isinstance(x, (Mapping, list, tuple)) for x in v)
    return False


# ---------------------------------------------------------------- reading

def _read_json(path: str | Path, what: str) -> object:
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"{path}: {what} file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: line {exc.lineno}: {what} is not valid JSON ({exc.msg})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: cannot read {what} ({exc})") from exc


def _read_yaml(path: Path) -> object:
    import yaml

    try:
        return yaml.safe_load(path.read_text())
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: cannot read metadata YAML ({str(exc).splitlines()[0]})") from exc


#: Columns of the meta-analysis its page uses of every row (the loci's rows are read whole).
_META_COLUMNS = ("chromosome", "base_pair_location", "p_value", "neg_log_10_p_value", "het_p", "het_i2",
                 "n_studies")
#: Further meta-analysis columns of the meta-versus-pooled views (β scatter, -log10 p scatter).
_META_PAIR_COLUMNS = ("effect_allele", "other_allele", "beta")
#: Columns of the pooled arm its plots, N and the pair views use of every row.
_POOLED_COLUMNS = ("chromosome", "base_pair_location", "p_value", "neg_log_10_p_value", *_META_PAIR_COLUMNS, "n")
#: Columns of a cohort its plots and cross-cohort views use of every row (not variant_id, rsid, flags).
_COHORT_COLUMNS = ("chromosome", "base_pair_location", "effect_allele", "other_allele", "beta",
                   "standard_error", "effect_allele_frequency", "p_value", "neg_log_10_p_value", "n",
                   "n_cases", "n_controls")


def _read_digest(path: str | Path, what: str, *, columns: Sequence[str], threshold: float,
                 names: Sequence[str] = ()) -> TableDigest:
    """``columns`` of every row of a plotted table and its rows with p < ``threshold`` whole.

    Checks chromosome and position, and a p-value or β with SE; β and SE are
    kept when there is no p-value column, since the plots then take p from z = β/SE.
    """
    path = Path(path)
    try:
        header = read_header(path)
        cols = list(columns)
        if not {"p_value", "neg_log_10_p_value"} & set(header):
            cols += ["beta", "standard_error"]
        digest = read_digest(path, columns=cols, line=float(-np.log10(threshold)),
                             required=_PLOT_REQUIRED, names=names)
    except SumstatsError as exc:
        raise ReportError(f"{what}: {exc}") from exc
    if not {"p_value", "neg_log_10_p_value"} & set(digest.header) and not {"beta", "standard_error"} <= set(
            digest.header):
        raise ReportError(
            f"{path}: {what} needs a p_value or neg_log_10_p_value column (or beta and "
            f"standard_error); present: {list(digest.header)}"
        )
    return digest


def _mrmega_axes_of_table(path: Path) -> int | None:
    """T, the axes of an MR-MEGA run's table (its ``mrmega_beta_0..T`` columns); None for another method."""
    try:
        header = read_header(path)
    except SumstatsError as exc:
        raise ReportError(f"meta-analysis: {exc}") from exc
    if not is_mrmega(header):
        return None
    return max(sum(1 for c in header if re.fullmatch(r"mrmega_beta_\d+", c)) - 1, 0)


def _keyed_paths(items: Mapping[str, str | Path] | Iterable[str | Path] | None,
                 what: str) -> list[tuple[str | None, Path]]:
    """``(cohort or None, path)`` pairs from a mapping or from ``C=PATH`` / ``PATH`` strings."""
    if not items:
        return []
    if isinstance(items, Mapping):
        return [(str(k), Path(v)) for k, v in items.items()]
    out: list[tuple[str | None, Path]] = []
    for item in items:
        s = str(item)
        cohort, sep, path = s.partition("=")
        if sep and cohort and "/" not in cohort:
            out.append((cohort, Path(path)))
        else:
            out.append((None, Path(s)))
    return out


def _cohort_of(path: Path, data: object, given: str | None) -> str:
    """Cohort of an audit or manifest: as given, else its ``cohort`` key, else its folder's name."""
    if given:
        return given
    if isinstance(data, Mapping) and isinstance(data.get("cohort"), str):
        return data["cohort"]
    return path.parent.name or str(path)


def _find_values(obj: object, key_pattern: re.Pattern[str]) -> list[object]:
    """Values of every key matching ``key_pattern`` anywhere in a JSON/YAML tree."""
    found: list[object] = []
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            if key_pattern.search(str(k)):
                found.append(v)
            found.extend(_find_values(v, key_pattern))
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            found.extend(_find_values(x, key_pattern))
    return found


_ANCESTRY_KEY = re.compile(r"ancestr(?!.*method)", re.IGNORECASE)
_DIGEST_KEY = re.compile(r"config.*(digest|sha|hash)", re.IGNORECASE)


def _ancestry_labels(*trees: object) -> list[str]:
    labels: list[str] = []
    for tree in trees:
        for v in _find_values(tree, _ANCESTRY_KEY):
            for x in v if isinstance(v, (list, tuple)) else [v]:
                if isinstance(x, (str, int, float)) and str(x) and str(x) not in labels:
                    labels.append(str(x))
    return labels


def _read_ledger_file(path: Path) -> list[Ledger]:
    """Ledgers in a JSON file: one, a list, or records nested anywhere (e.g. keyed by cohort)."""
    try:
        return read_ledgers([path])
    except (TypeError, AttributeError):
        pass  # not the plain layout: look for ledger records in the tree below
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: line {exc.lineno}: ledger is not valid JSON ({exc.msg})") from exc
    except OSError as exc:
        raise ReportError(f"{path}: cannot read ledger ({exc})") from exc
    except UnicodeDecodeError as exc:
        line = path.read_bytes().count(b"\n", 0, exc.start) + 1
        raise ReportError(f"{path}: line {line}: ledger is not UTF-8 text ({exc.reason}); "
                          "rule: a ledger is JSON, UTF-8") from exc
    except LedgerError as exc:
        raise ReportError(f"{path}: {exc}") from exc
    records = [r for r in _records(json.loads(path.read_text())) if {"stage", "cohort", "n_in", "n_kept"} <= set(r)]
    if not records:
        raise ReportError(f"{path}: no ledger record (an object with stage, cohort, n_in, n_kept) found")
    return [_ledger_of_record(r, source=path) for r in records]


#: The fields of a ledger record; a JSON tree's other keys beside them are not the ledger's.
_LEDGER_FIELDS = frozenset(Ledger.__dataclass_fields__)


def _ledger_of_record(record: Mapping, *, source: str | Path, what: str | None = None,
                      **fixed: object) -> Ledger:
    """The ledger a JSON record holds (its ledger fields, ``fixed`` ones set); :class:`ReportError`
    naming ``source`` (and ``what`` the record is) when it is not a valid ledger."""
    try:
        return Ledger.from_dict({**{k: v for k, v in record.items() if k in _LEDGER_FIELDS}, **fixed})
    except (LedgerError, TypeError, ValueError) as exc:
        raise ReportError(f"{source}: {what} is not a valid ledger ({exc})" if what
                          else f"{source}: {exc}") from exc


def _records(obj: object) -> list[Mapping]:
    if isinstance(obj, Mapping):
        return [obj, *(r for v in obj.values() for r in _records(v))]
    if isinstance(obj, (list, tuple)):
        return [r for x in obj for r in _records(x)]
    return []


def _audit_ledgers(audits: Sequence[tuple[str, Path, object]], *, trait: str,
                   given: Sequence[Ledger]) -> list[Ledger]:
    """The ledgers an export audit (the gate's layout) carries: the trait's own, and the released QC ledgers.

    The gate's ledger counts the rows each rule suppressed between the association and
    the bundle; the QC ledgers are released as counts of variants (counts of people are
    withheld and skipped here). A ledger of a cohort, stage, unit and trait already
    given as a ``--ledger`` file is not added twice.
    """
    have = {(led.cohort, led.stage, led.unit, led.trait) for led in given}
    out: list[Ledger] = []
    for cohort, path, audit in audits:
        if not isinstance(audit, Mapping):
            continue
        t = audit.get("traits")
        t = t.get(trait) if isinstance(t, Mapping) else None
        records = [t["ledger"]] if isinstance(t, Mapping) and isinstance(t.get("ledger"), Mapping) else []
        records += [q for q in audit.get("qc_ledgers") or [] if isinstance(q, Mapping) and "n_in" in q]
        for r in records:
            led = _ledger_of_record(r, source=path, what="a ledger of the audit", cohort=cohort)
            key = (led.cohort, led.stage, led.unit, led.trait)
            if key not in have and led.trait in (None, trait):
                have.add(key)
                out.append(led)
    return out


#: What the meta-analysis summary's per-cohort blocks hold (crosscohort.central.meta.ivw), as captions.
_SUMMARY_CAPTIONS = {
    "lambda_gc": "λGC per cohort, of (β/SE)² (what --gc corrects by; the cohorts table's is of each file's p)",
    "gc_applied": "SE factor per cohort applied by --gc (√λGC where λGC > 1; 1 = not corrected)",
}


def _missing_cohorts(summary: object, given: Mapping[str, object]) -> tuple[str, str] | None:
    """A run-summary line naming the meta-analysis' cohorts this report was not given (None if none)."""
    listed = summary.get("cohorts") if isinstance(summary, Mapping) else None
    if not isinstance(listed, list):
        return None
    missing = [str(c) for c in listed if str(c) not in given]
    if not missing:
        return None
    return ("cohorts in the meta-analysis but not in this report",
            f"{', '.join(missing)} (its summary lists {', '.join(map(str, listed))})")


def _summary_ledgers(records: object, *, source: str | Path) -> list[Ledger]:
    """The meta-analysis summary's ``ledgers`` (one per cohort, stage ``meta``) as ledgers."""
    if not isinstance(records, list):
        return []
    return [_ledger_of_record(r, source=source, what="a ledger of the meta-analysis summary")
            for r in records if isinstance(r, Mapping)]


def _audit_of_trait(audit: object, trait: str) -> object:
    """The audit with only this trait's entry under ``traits`` (others belong to other reports)."""
    if isinstance(audit, Mapping) and isinstance(audit.get("traits"), Mapping) and trait in audit["traits"]:
        return {**audit, "traits": {trait: audit["traits"][trait]}}
    return audit


def _int_max(df: pl.DataFrame, col: str) -> int | None:
    if col not in df.columns:
        return None
    v = df.get_column(col).cast(pl.Int64, strict=False).max()
    return int(v) if v is not None else None


# ---------------------------------------------------------------- sections

def _panel(df: pl.DataFrame, *, name: str, path: Path, threshold: float, loci: pl.DataFrame | None,
           dpi: int) -> Panel:
    nlp = neg_log10_p_of_table(df, source=str(path))
    q = qq(df, title=f"{name}: QQ")
    m = manhattan(df, title=f"{name}: Manhattan", threshold=threshold, loci=loci)
    n_sig = int(np.sum(np.nan_to_num(nlp, nan=-np.inf) > -np.log10(threshold)))
    images = (
        Image(png_data_uri(m, dpi=dpi), f"Manhattan plot of {name}",
              f"Manhattan plot of {name}; dashed line at p = {threshold:g}."),
        Image(png_data_uri(q.figure, dpi=dpi), f"QQ plot of {name}",
              f"QQ plot of {name} with a 95% pointwise band; λGC = {q.lambda_gc:.4f}"
              + "".join(f", λ{k:g} = {v:.3f}" for k, v in q.lambda_quantiles.items() if k != 0.5 and math.isfinite(v))
              + "."),
    )
    return Panel(name, str(path), q.n_variants, q.lambda_gc, n_sig, images, facts_qq=q.lambda_quantiles)


def _loci_table(loci: pl.DataFrame, *, table_id: str, caption: str, mrmega: bool = False) -> Table:
    # MR-MEGA's p tests a regression on the axes, with no single effect: the table's β and
    # SE are the fixed-effect IVW's, and z = β/SE does not give its p. The headers say which.
    effect = ("β (fixed-effect IVW)", "SE (fixed-effect IVW)", "p (MR-MEGA)") if mrmega else ("β", "SE", "p")
    headers = ("locus", "lead variant", "chrom", "pos", *effect, "direction", "het I²",
               "variants", "span (bp)")
    rows = []
    nlp = neg_log10_p_of_table(loci, source=caption) if loci.height else np.empty(0)

    def col(name: str, i: int) -> object:
        return loci.get_column(name)[i] if name in loci.columns else None

    for i in range(loci.height):
        chrom, pos = col("chromosome", i), col("base_pair_location", i)
        if chrom is None or pos is None:
            # A marker-name lead (METAL/GWAMA input keyed by name): named by rsid and alleles.
            lead = lead_label(loci[i], i)
            where, span = ("—", "—"), "—"
        else:
            chrom, pos = int(chrom), int(pos)
            lead = col("variant_id", i) or col("rsid", i) or f"{chrom_label(chrom)}:{pos}"
            rsid = col("rsid", i)
            if rsid and str(rsid) != str(lead):  # the name the Manhattan plot labels it with
                lead = f"{lead} ({rsid})"
            where, span = (chrom_label(chrom), str(pos)), f"{col('start', i)}–{col('end', i)}"
        i2 = col("het_i2", i)
        rows.append((
            _cell(col("locus", i)), str(lead), *where,
            _fmt_num(col("beta", i)), _fmt_num(col("standard_error", i)), format_p(float(nlp[i])),
            _cell(col("direction", i)), "—" if i2 is None else f"{100 * float(i2):.1f}%",
            _cell(col("n_variants", i)), span,
        ))
    note = "" if rows else "no variant reaches the threshold"
    if mrmega and rows:
        note = ("MR-MEGA has no single effect size: β and SE are the fixed-effect IVW's (β/SE gives IVW's "
                "p, in the comparison section), p is MR-MEGA's association test on T + 1 df; direction "
                "and I² are of the cohorts' β.")
    return Table(caption, headers, tuple(rows), id=table_id, note=note)


def _fmt_num(v: object) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{float(v):.4g}"


def _ledger_tables(ledgers: list[Ledger]) -> list[Table]:
    """One table per stage: a row per cohort (and trait), a column per reason."""
    by_stage: dict[str, list[Ledger]] = {}
    for led in ledgers:
        by_stage.setdefault(led.stage, []).append(led)
    tables = []
    for stage, items in by_stage.items():
        removed: list[str] = []
        changed: list[str] = []
        for led in items:
            removed.extend(r for r in led.removed if r not in removed)
            changed.extend(r for r in led.changed if r not in changed)
        headers = ("cohort", "trait", "unit", "in", "kept", *(f"removed: {r}" for r in removed),
                   *(f"changed: {r}" for r in changed))
        rows = tuple(
            (led.cohort, led.trait or "—", led.unit, _cell(led.n_in), _cell(led.n_kept),
             *(_cell(led.removed.get(r)) for r in removed), *(_cell(led.changed.get(r)) for r in changed))
            for led in items
        )
        tables.append(Table(f"stage: {stage}", headers, rows, id=f"ledger-{_slug(stage)}",
                            note="in = kept + every removed reason (checked); changed variants are kept."))
    return tables


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", s).strip("-").lower() or "x"


def _versions() -> tuple[tuple[str, str], ...]:
    import matplotlib
    import scipy

    return (
        ("crosscohort", __version__),
        ("python", platform.python_version()),
        ("numpy", np.__version__),
        ("polars", pl.__version__),
        ("scipy", scipy.__version__),
        ("matplotlib", matplotlib.__version__),
        ("jinja2", jinja2.__version__),
    )


def _generated_at() -> str:
    """Build time, or SOURCE_DATE_EPOCH's when set (reproducible builds give identical bytes)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch and epoch.isdigit() \
        else datetime.now(timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M UTC")


def _read_loci_table(path: Path) -> pl.DataFrame:
    try:
        return pl.read_csv(path, separator="\t", null_values=["NA", "NaN", ""], infer_schema_length=None)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ReportError(f"{path}: cannot read comparison loci table ({str(exc).splitlines()[0]})") from exc


def _table_from_tsv(path: Path, caption: str) -> Table:
    try:
        df = pl.read_csv(path, separator="\t", null_values=["NA", "NaN", ""], infer_schema_length=10000)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ReportError(f"{path}: cannot read comparison table ({str(exc).splitlines()[0]})") from exc
    shown = df.head(_MAX_TABLE_ROWS)
    rows = tuple(tuple(_cell(v) for v in r) for r in shown.iter_rows())
    note = f"first {_MAX_TABLE_ROWS:,} of {df.height:,} rows; the full table is {path.name}" \
        if df.height > _MAX_TABLE_ROWS else ""
    return Table(caption, tuple(df.columns), rows, id="comparison-table", note=note)


# ---------------------------------------------------------------- entry point

def build_report(*, trait: str, meta_path: str | Path, cohort_paths: Mapping[str, str | Path],
                 out_path: str | Path, meta_summary_path: str | Path | None = None,
                 pooled_path: str | Path | None = None, compare_path: str | Path | None = None,
                 federated_compare_path: str | Path | None = None,
                 individual_fit_compare_path: str | Path | None = None,
                 compare_table_path: str | Path | None = None,
                 ledger_paths: Sequence[str | Path] = (),
                 audit_paths: Mapping[str, str | Path] | Sequence[str | Path] = (),
                 manifest_paths: Mapping[str, str | Path] | Sequence[str | Path] = (),
                 config_digest: str | None = None, threshold: float = THRESHOLD,
                 window_kb: float = WINDOW_KB, dpi: int = 100,
                 reference_path: str | Path | None = None,
                 compare_loci_path: str | Path | None = None,
                 loo_path: str | Path | None = None) -> Path:
    """Write the self-contained HTML report of one trait; returns its path.

    Parameters
    ----------
    trait
        Trait name shown in the title.
    meta_path
        Meta-analysis summary statistics (GWAS-SSF plus meta columns).
    cohort_paths
        Cohort id -> its harmonised summary statistics, in cohort order.
    out_path
        The HTML file to write (atomically).
    meta_summary_path, pooled_path, compare_path, compare_table_path
        Optional: the meta-analysis's ``.summary.json``, pooled-arm sumstats,
        the comparison's JSON metrics and TSV table.
    federated_compare_path
        Optional: ``crosscohort compare``'s JSON of the meta-analysis against
        the federated pooled fit (``pool-fit``), shown beside the pooled arm's.
    individual_fit_compare_path
        Optional (the demo): ``crosscohort compare --federated``'s JSON of the
        federated pooled fit against the individual-level fit of the same
        model: the maximum relative differences of β, SE and p.
    ledger_paths
        Ledger JSON files (one ledger or a list each), any stage.
    audit_paths, manifest_paths
        Export-gate ``audit.json`` and bundle ``manifest.json`` files, as a
        mapping cohort -> path or as ``C=PATH`` / ``PATH`` strings (the cohort
        then comes from the file's ``cohort`` key or its folder's name). A
        ``*.meta.yaml`` beside a manifest or audit supplies ancestry.
    config_digest
        Digest of this (central) run's config; shown beside the digests the bundles'
        manifests record (the config each export ran under), never in their place.
    threshold
        Genome-wide significance for the Manhattan line and the loci.
    window_kb
        Half-window of the distance-based loci.
    dpi
        Resolution of the embedded PNGs.
    reference_path
        Optional harmonisation reference (``chromosome, base_pair_location,
        ref, alt, alt_frequency``): each cohort's EAF is plotted against it;
        without it, against the mean EAF of the other cohorts.
    compare_loci_path
        Optional ``crosscohort compare`` loci table (``PREFIX.loci.tsv``) for
        the discordant-loci and ancestry tables (else the JSON's ``loci_table``).
    loo_path
        Optional leave-one-out table of ``crosscohort meta --loo-threshold``
        (``O.loo.tsv``) for the forest plots; without it the leave-one-out rows
        are the fixed-effect IVW of the other cohorts' harmonised rows.

    Raises
    ------
    ReportError
        When an input is missing or unreadable (naming the file and the rule).
    """
    if not 0 < threshold < 1:
        raise ReportError(f"--threshold must be in (0, 1); got {threshold}")
    if not cohort_paths:
        raise ReportError("at least one cohort (C=FILE) is required")
    out_path = Path(out_path)
    meta_path = Path(meta_path)
    facts: dict[str, _CohortFacts] = {c: _CohortFacts() for c in cohort_paths}

    # Audits and manifests first: they name ancestry and the config digest.
    audits: list[tuple[str, Path, object]] = []
    yaml_trees: dict[str, list[object]] = {}
    for given, path in _keyed_paths(audit_paths, "audit"):
        data = _read_json(path, "export audit")
        audits.append((_cohort_of(path, data, given), path, data))
    manifests: list[tuple[str, Path, object]] = []
    for given, path in _keyed_paths(manifest_paths, "manifest"):
        data = _read_json(path, "export manifest")
        manifests.append((_cohort_of(path, data, given), path, data))
    seen_dirs: set[Path] = set()
    for cohort, path, _ in [*audits, *manifests]:
        if path.parent in seen_dirs:
            continue
        seen_dirs.add(path.parent)
        # The trait's own metadata if there, else any trait's: ancestry is the cohort's.
        own = path.parent / f"{trait}.meta.yaml"
        for y in [own] if own.is_file() else sorted(path.parent.glob("*.meta.yaml")):
            yaml_trees.setdefault(cohort, []).append(_read_yaml(y))
    # Two digests, told apart: this run's (the central config, --config-digest) and the
    # one each bundle records (the config its export ran under, in the TRE).
    bundle_digests: dict[str, list[str]] = {}
    for cohort, _, m in manifests:
        for v in _find_values(m, _DIGEST_KEY):
            if isinstance(v, str) and cohort not in bundle_digests.setdefault(v, []):
                bundle_digests[v].append(cohort)

    # Meta-analysis: of every row only the columns its views use (the pair
    # views also need its alleles and β); the loci come from its rows with p <
    # threshold, read whole. 27 columns x 1.2e7 rows were GBs (issue 9).
    # An MR-MEGA run's views also need each row's IVW β/SE, Q and ancestry-heterogeneity p.
    mrmega_axes = _mrmega_axes_of_table(meta_path)
    mrmega = mrmega_axes is not None
    meta_digest = _read_digest(meta_path, "meta-analysis", threshold=threshold,
                               columns=tuple(dict.fromkeys(
                                   _META_COLUMNS + (_META_PAIR_COLUMNS if pooled_path is not None else ())
                                   + (MRMEGA_COLUMNS if mrmega else ()))))
    meta = meta_digest.table
    meta_loci = distance_loci(meta_digest.significant, threshold=threshold, window_kb=window_kb)
    n_meta = meta_digest.n_rows
    del meta_digest
    meta_panel = _panel(meta, name=f"{trait} meta-analysis", path=meta_path, threshold=threshold,
                        loci=meta_loci, dpi=dpi)
    loci_table = _loci_table(meta_loci, table_id="meta-loci", mrmega=mrmega,
                             caption=f"loci: leads with p < {threshold:g}, ±{window_kb:g} kb")
    meta_q = meta_panel.facts_qq
    lambda_table = Table("genomic inflation at quantiles", ("q", "λ_q"),
                         tuple((f"{q:g}", _fmt_num(v)) for q, v in meta_q.items()), id="meta-lambda",
                         note="λ_q = q-th quantile of the observed 1-df χ² / q-th quantile of χ²₁; "
                              "q = 0.5 is λGC; upper quantiles show tail inflation the median hides.")
    het_table = heterogeneity_table(meta, threshold=threshold)
    meta_summary_tables = []
    meta_summary = None
    summary_ledgers: list[Ledger] = []
    if meta_summary_path is not None:
        meta_summary = _read_json(meta_summary_path, "meta-analysis summary")
        if not isinstance(meta_summary, Mapping) or not {"method", "cohorts"} <= meta_summary.keys():
            # Another stage's JSON given in its place would be shown as if it were this one.
            got = (f"an object with keys {sorted(meta_summary)[:8]}"
                   if isinstance(meta_summary, Mapping) else f"a JSON {type(meta_summary).__name__}")
            raise ReportError(
                f"{meta_summary_path}: not a meta-analysis summary (got {got}); rule: the JSON "
                "object crosscohort meta writes beside its table (OUT.summary.json), with "
                "'method' and 'cohorts'")
        # Its ledgers (what the meta-analysis removed and flagged per cohort) go to the ledger section.
        meta_summary_tables = _generic_tables(
            {_SUMMARY_CAPTIONS.get(k, k): v for k, v in meta_summary.items() if k not in ("mrmega", "ledgers")},
            "meta-analysis summary")
        summary_ledgers = _summary_ledgers(meta_summary.get("ledgers"), source=meta_summary_path)

    # Pooled arm and comparison
    pooled_panel = None
    scatter_image = None
    scatter_facts: tuple[tuple[str, str], ...] = ()
    pooled_n = None
    pooled = None
    if pooled_path is not None:
        pooled_digest = _read_digest(pooled_path, "pooled analysis", threshold=threshold,
                                     columns=_POOLED_COLUMNS)
        pooled = pooled_digest.table
        pooled_n = _int_max(pooled, "n")
        pooled_loci = distance_loci(pooled_digest.significant, threshold=threshold, window_kb=window_kb)
        del pooled_digest
        pooled_panel = _panel(pooled, name=f"{trait} pooled", path=Path(pooled_path),
                              threshold=threshold, loci=pooled_loci, dpi=dpi)
        if {"beta", "effect_allele", "other_allele"} <= set(meta.columns) & set(pooled.columns):
            bs = beta_scatter(meta, pooled, threshold=threshold)
            scatter_image = Image(png_data_uri(bs.figure, dpi=dpi), "beta-beta scatter",
                                  "Meta-analysis β against pooled β; dashed: identity; solid: least-squares fit.")
            scatter_facts = (("variants in both analyses", _cell(bs.n_matched)),
                             ("variants in the fit", _cell(bs.n_fitted)),
                             ("fitted slope (meta on pooled)", _fmt_num(bs.slope)),
                             ("intercept", _fmt_num(bs.intercept)), ("Pearson r", _fmt_num(bs.r)))
    compare_tables: list[Table] = []
    compare_images: list[Image] = []
    pooled_leads = None
    if compare_path is not None:
        metrics = _read_json(compare_path, "comparison")
        loci_cmp = None
        if compare_loci_path is not None:
            loci_cmp = _read_loci_table(Path(compare_loci_path))
        elif isinstance(metrics, Mapping) and isinstance(metrics.get("loci_table"), list) and metrics["loci_table"]:
            loci_cmp = pl.DataFrame(metrics["loci_table"], infer_schema_length=None)
        if loci_cmp is not None and loci_cmp.height and "beta_pooled" in loci_cmp.columns:
            pooled_leads = loci_cmp
        built = comparison_section(metrics, loci=loci_cmp, meta=meta, pooled=pooled, threshold=threshold, dpi=dpi)
        if built is None:
            compare_tables = _generic_tables(metrics, "comparison metrics")
        else:
            compare_tables, compare_images = built
    mrmega_out = None
    if mrmega:
        # After the pooled arm is read: the MR-MEGA/IVW loci show its p too.
        block = meta_summary.get("mrmega") if meta_summary is not None else None
        # T from the table's columns when no summary says it (the axes themselves are the summary's only).
        block = {"n_axes": mrmega_axes, **(block if isinstance(block, Mapping) else {})}
        mrmega_out = mrmega_views(meta, meta_loci, block,
                                  threshold=threshold, window_kb=window_kb, dpi=dpi, pooled=pooled)
    pooled = None
    if compare_table_path is not None:
        compare_tables.append(_table_from_tsv(Path(compare_table_path), "comparison by variant or locus"))
    if federated_compare_path is not None:
        # The third arm (issue 24): the pooled fit from the opted-in cohorts' released sums.
        fed = _read_json(federated_compare_path, "federated pooled comparison")
        headline = {k: v for k, v in fed.items() if not isinstance(v, (Mapping, list))} if isinstance(fed, Mapping) \
            else fed
        compare_tables.extend(_generic_tables(
            headline, "meta-analysis vs federated pooled fit (crosscohort pool-fit over the cohorts that opted "
                      "in; variants released by their sufficient-statistics gates)"))
    if individual_fit_compare_path is not None:
        same = _read_json(individual_fit_compare_path, "federated vs individual-level comparison")
        compare_tables.append(same_model_table(same, source=individual_fit_compare_path))

    # From here on only the meta-analysis's row count is used: free its columns
    # before the cohort tables are read.
    del meta

    # Cohorts, one at a time, each read once: of every row only the columns its
    # plots use (no variant_id, rsid or flags), whole rows only at its loci. Of
    # each cohort the cross-cohort views keep only what they use: its rows at
    # the meta-analysis loci (forest plots) and, without a reference panel, its
    # key and EAF everywhere (EAF against the other cohorts, drawn once every
    # cohort is read). The panel is held once; each cohort is freed before the
    # next is read (issue 9: 5 cohorts x 10^7 variants).
    reference = None
    if reference_path is not None:
        from crosscohort.central.harmonise.align import read_reference

        reference = read_reference(reference_path)
    loci_pos = _positions_of(meta_loci)
    # Leads keyed by marker name only (no chromosome, no position): their cohort rows
    # are found by name, as the meta-analysis matched them.
    lead_names = _marker_names_of(meta_loci)
    slim: dict[str, pl.DataFrame] = {}
    eaf_rows: dict[str, pl.DataFrame] = {}
    own_eaf: dict[str, pl.DataFrame] = {}
    parts: dict[str, tuple[Panel, int, tuple[Image | None, str] | None, Image | None, tuple[Image | None, str]]] = {}
    for cohort, path in cohort_paths.items():
        digest = _read_digest(path, f"cohort {cohort}", columns=_COHORT_COLUMNS, threshold=threshold,
                              names=lead_names)
        df = digest.table
        named = digest.named
        loci = distance_loci(digest.significant, threshold=threshold, window_kb=window_kb)
        del digest
        if df.height == 0:
            # Nothing to plot: said once, not as empty axes and λGC = nan.
            facts[cohort].n_variants = 0
            parts[cohort] = (Panel(cohort, str(path), 0, float("nan"), 0, (), (
                ("no variant", "its harmonised file has no rows (the ledgers give each removal's reason)"),)),
                0, None, None, (None, ""))
            del df, loci, named
            continue
        panel = _panel(df, name=f"{trait} {cohort}", path=Path(path), threshold=threshold, loci=loci, dpi=dpi)
        f = facts[cohort]
        f.n, f.n_cases, f.n_controls = _int_max(df, "n"), _int_max(df, "n_cases"), _int_max(df, "n_controls")
        f.n_variants, f.lambda_gc = df.height, panel.lambda_gc
        if {"effect_allele", "other_allele", "beta", "standard_error"} <= set(df.columns):
            keep = [c for c in ("chromosome", "base_pair_location", "effect_allele", "other_allele",
                                "effect_allele_frequency", "beta", "standard_error") if c in df.columns]
            slim[cohort] = _at_positions(df.select(keep), loci_pos)
            if named.height:
                slim[cohort] = pl.concat([slim[cohort], named.select(*keep, "rsid")],
                                         how="diagonal_relaxed")
            if reference is None and "effect_allele_frequency" in df.columns:
                eaf_rows[cohort] = df.select(c for c in keep if c not in ("beta", "standard_error"))
        eaf = None
        if {"effect_allele", "other_allele"} <= set(df.columns):
            if reference is not None:
                eaf = eaf_image(df, name=cohort, reference=reference, others={}, dpi=dpi)
            else:  # needs every other cohort's EAF: drawn after the loop, from these columns only
                own_eaf[cohort] = df.select(c for c in (*VARIANT_KEY, "effect_allele_frequency") if c in df.columns)
        se = se_image(df, name=cohort, dpi=dpi)
        prec = p_recomputed_image(df, name=cohort, dpi=dpi)
        parts[cohort] = (panel, loci.height, eaf, se, prec)
        del df, loci, named
    cohort_panels = []
    for cohort, (panel, n_loci, eaf, se, prec) in parts.items():
        if se is None:  # no variant: the panel says so
            cohort_panels.append(panel)
            continue
        if cohort in own_eaf:
            eaf = eaf_image(own_eaf.pop(cohort), name=cohort, reference=None,
                            others={c: t for c, t in eaf_rows.items() if c != cohort}, dpi=dpi)
        extra: list[Image] = []
        notes: list[tuple[str, str]] = [("loci", _cell(n_loci))]
        if eaf is not None:
            img, summary = eaf
            notes.append(("EAF", summary))
            if img is not None:
                extra.append(img)
        extra.append(se)
        img, summary = prec
        notes.append(("p against β/SE", summary))
        if img is not None:
            extra.append(img)
        cohort_panels.append(Panel(cohort, panel.path, panel.n_variants, panel.lambda_gc,
                                   panel.n_significant, (*panel.images, *extra), tuple(notes)))
    del parts, reference
    forest_imgs: list[Image] = []
    forest_table = None
    if slim and meta_loci.height and {"beta", "standard_error", "effect_allele", "other_allele"} <= set(meta_loci.columns):
        loo = read_loo(loo_path) if loo_path is not None else None
        forest_imgs, forest_table = forest_images(meta_loci, slim, loo=loo, pooled_leads=pooled_leads, dpi=dpi,
                                                  summary_label="fixed-effect IVW" if mrmega else "meta-analysis")
    del slim, eaf_rows
    for cohort, _, data in audits:
        if cohort in facts:
            facts[cohort].ancestry.extend(a for a in _ancestry_labels(data) if a not in facts[cohort].ancestry)
    for cohort, trees in yaml_trees.items():
        if cohort in facts:
            facts[cohort].ancestry.extend(a for a in _ancestry_labels(*trees) if a not in facts[cohort].ancestry)

    ledgers = [led for p in ledger_paths for led in _read_ledger_file(Path(p))]
    # The export gate's ledger (and, where no QC ledger file is given, as in central mode,
    # the QC ledgers the gate released) come with the audits: without them the stage
    # table jumps from QC to harmonisation with the gate's suppressions unaccounted.
    ledgers += _audit_ledgers(audits, trait=trait, given=ledgers)
    ledgers += summary_ledgers
    ledger_tables = _ledger_tables(ledgers)

    # Summary tables
    cohort_rows = tuple(
        (c, _cell(f.n), _cell(f.n_cases), _cell(f.n_controls), ", ".join(f.ancestry) or "not recorded",
         _cell(f.n_variants), _fmt_num(f.lambda_gc))
        for c, f in facts.items()
    )
    cohort_table = Table("cohorts", ("cohort", "N (released)", "cases", "controls", "ancestry",
                                     "variants (harmonised)", "λGC"), cohort_rows, id="summary-cohorts",
                         note="N, cases and controls: the largest n of each harmonised file, i.e. the size the "
                              "cohort's export gate released (one per trait, lowered to another trait's when "
                              "within min_count), so they may sum to less than the pooled arm's N, which counts "
                              "the people it analysed.")
    stage_table = _stage_table(ledgers, facts, n_meta, trait=trait)
    run_facts = [
        ("trait", trait), ("cohorts", ", ".join(cohort_paths)),
        _missing_cohorts(meta_summary, cohort_paths),
        ("variants in the meta-analysis", _cell(n_meta)),
        ("λGC of the meta-analysis", _fmt_num(meta_panel.lambda_gc)),
        (f"loci (p < {threshold:g})", _cell(meta_loci.height)),
        ("config digest of this run (--config-digest)", config_digest or "not given"),
        ("config digest of the exports (bundle manifests)",
         "; ".join(f"{d} ({', '.join(cs)})" for d, cs in bundle_digests.items())) if bundle_digests else None,
        ("pooled analysis N (max n)", _cell(pooled_n)) if pooled_path is not None else None,
    ]

    methods_method = None
    if isinstance(meta_summary, Mapping):
        methods_method = next((str(v) for k, v in meta_summary.items() if str(k) in ("method", "model")), None)
    p_source = _p_source(methods_method, mrmega=mrmega)

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATE_DIR)),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    html = env.get_template("report.html.j2").render(
        trait=trait,
        generated=_generated_at(),
        run_facts=[f for f in run_facts if f is not None],
        cohort_table=cohort_table,
        stage_table=stage_table,
        versions=_versions(),
        meta_panel=meta_panel,
        loci_table=loci_table,
        meta_summary_tables=meta_summary_tables,
        pooled_panel=pooled_panel,
        compare_tables=compare_tables,
        compare_images=compare_images,
        lambda_table=lambda_table,
        het_table=het_table,
        mrmega=mrmega_out,
        forest_images=forest_imgs,
        forest_table=forest_table,
        scatter_image=scatter_image,
        scatter_facts=scatter_facts,
        cohort_panels=cohort_panels,
        model_table=association_model_table(manifests, trait=trait),
        ledger_tables=ledger_tables,
        audits=[(c, str(p), audit_tables(d, cohort=c, trait=trait)
                 or _generic_tables(_audit_of_trait(d, trait), f"{c} audit")) for c, p, d in audits],
        manifests=[(c, str(p), _generic_tables(d, f"{c} manifest")) for c, p, d in manifests],
        threshold=threshold,
        window_kb=window_kb,
        meta_method=methods_method,
        p_source=p_source,
        section_ids=SECTION_IDS,
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out_path)
    return out_path


def _p_source(method: str | None, *, mrmega: bool) -> str:
    """Whose test the meta-analysis table's p-value is (crosscohort meta: ``meta_analyse``'s ``method``)."""
    ivw = " β and SE are the fixed-effect IVW's."
    if mrmega:
        return "MR-MEGA's association test's (below)." + ivw
    if method == "samplesize":
        return "METAL's sample-size weighted Z test's (z_samplesize)." + ivw
    if method == "random":
        return ("the fixed-effect IVW test's, not the random-effects test's: the DerSimonian–Laird estimates are "
                "the table's *_random columns, and --method random changes only the summary's headline count (n_genome_wide)." + ivw)
    if method in (None, "fixed"):
        return "the fixed-effect IVW test's." if method else \
            "the table's p_value (no meta-analysis summary names the method)."
    return f"the table's p_value (method {method})."


def _positions_of(loci: pl.DataFrame) -> pl.DataFrame | None:
    """Distinct (chromosome, base_pair_location) of the loci's lead rows; None when there are none."""
    cols = ["chromosome", "base_pair_location"]
    if loci.height == 0 or not set(cols) <= set(loci.columns):
        return None
    return loci.select(pl.col(c).cast(pl.Int64) for c in cols).drop_nulls().unique()


def _marker_names_of(loci: pl.DataFrame) -> list[str]:
    """Marker names (``rsid``) of the loci's leads that have neither chromosome nor position."""
    if loci.height == 0 or not {"chromosome", "base_pair_location", "rsid"} <= set(loci.columns):
        return []
    return loci.filter(marker_only()).get_column("rsid").cast(pl.String).to_list()


def _at_positions(df: pl.DataFrame, positions: pl.DataFrame | None) -> pl.DataFrame:
    """Rows of ``df`` at ``positions``, either allele order (the forest plots align both)."""
    cols = ["chromosome", "base_pair_location"]
    if positions is None or not set(cols) <= set(df.columns):
        return df.clear()
    positions = positions.cast({c: df.schema[c] for c in cols})
    # A cheap mask on the position first: the semi-join then hashes a few rows, not 10^7.
    near = df.filter(pl.col("base_pair_location").is_in(positions.get_column("base_pair_location").implode()))
    return near.join(positions, on=cols, how="semi", maintain_order="left")


def _stage_table(ledgers: list[Ledger], facts: Mapping[str, _CohortFacts], n_meta: int, *,
                 trait: str) -> Table:
    """Variants per cohort at each recorded stage (kept after it), then in the meta-analysis."""
    # Another trait's ledger says nothing about this one; trait-free ones (QC) apply to all.
    ledgers = [led for led in ledgers if led.unit == "variants" and led.trait in (None, trait)]
    seen = list(dict.fromkeys(led.stage for led in ledgers))
    stages = [s for s in _STAGE_ORDER if s in seen] + [s for s in seen if s not in _STAGE_ORDER]
    kept: dict[tuple[str, str], int] = {}
    n_in: dict[tuple[str, str], int] = {}
    for led in ledgers:
        key = (led.cohort, led.stage)
        kept[key] = max(kept.get(key, 0), led.n_kept)
        n_in[key] = max(n_in.get(key, 0), led.n_in)
    # A cohort's input is what entered the earliest stage it has a ledger for.
    first_in = {}
    for s in reversed(stages):
        first_in.update({c: v for (c, st), v in n_in.items() if st == s})
    cohorts = list(facts) + sorted({c for c, _ in kept} - set(facts))
    headers = ("cohort", "input", *(f"after {s.replace('_', ' ')}" for s in stages), "harmonised file")
    rows = [
        (c if c in facts else f"{c} (not in this report)", _cell(first_in.get(c)),
         *(_cell(kept.get((c, s))) for s in stages), _cell(facts[c].n_variants if c in facts else None))
        for c in cohorts
    ]
    rows.append(("meta-analysis", "—", *("—" for _ in stages), _cell(n_meta)))
    return Table("variants at each stage", headers, tuple(rows), id="summary-stages",
                 note="from the ledgers (kept after each stage) and the rows of each file")
