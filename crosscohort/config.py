"""Study configuration and cohort sheet: validated at load, failing before any job runs.

The JSON Schemas live in ``crosscohort/schemas/`` (package data); this module applies them
(filling defaults), then runs the checks a schema cannot express: duplicate
cohort ids, missing files (the signing key in cohort mode too), the cohort
named in cohort mode, consent. Every
error is one line naming the key or the sheet row and what was expected.

Then, before any job runs, the study against the data: every trait and
covariate in the cohort's phenotype/covariate header with a fitting type
(cohort mode), every trait in every bundle's manifest (central mode); each
error names the file, line or column and the rule.

A study config states the study completely (:func:`study_config`): given with
``--configfile``, it replaces ``config/config.yaml`` (the demo's study) whole,
and keys it leaves out take the schema's defaults, so no demo trait, demo
reference panel or demo QC setting leaks into a real study. ``--config``
overrides apply on top; their nested values arrive from Snakemake as strings
(``--config 'association={scatter: 5}'``) and are converted to the type the
schema declares (:func:`coerce_to_schema`).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from crosscohort.contract.errors import ConfigError
from crosscohort.contract.release import GateRules
from crosscohort.schemas import SCHEMA_DIR
from crosscohort.schemas import default as schema_default

__all__ = [
    "Study",
    "load_study",
    "study_config",
    "coerce_to_schema",
    "validate_config",
    "read_cohort_sheet",
    "config_digest",
    "SCHEMA_DIR",
    "schema_default",
]

SHEET_COLUMNS = (
    "cohort", "genotypes", "genotype_format", "pheno", "covar", "build", "ancestry", "duo_codes", "sufficient",
    "public_key",
)


def _validator(schema_path: Path):
    from jsonschema import Draft202012Validator, validators

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if "default" in sub and prop not in instance:
                    default = sub["default"]
                    instance[prop] = json.loads(json.dumps(default))
        yield from Draft202012Validator.VALIDATORS["properties"](validator, properties, instance, schema)

    cls = validators.extend(Draft202012Validator, {"properties": set_defaults})
    schema = yaml.safe_load(schema_path.read_text())
    return cls(schema)


def _describe(err, where: str) -> str:
    path = ".".join(str(p) for p in err.absolute_path)
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed)) if isinstance(err.instance, dict) else []
        key = f"{path}.{extra[0]}" if path and extra else (extra[0] if extra else path)
        hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
        return f"{where}: unknown key {key!r}{hint}"
    if err.validator == "required":
        missing = next((k for k in err.validator_value if k not in err.instance), "")
        full = f"{path}.{missing}" if path else missing
        about = err.schema.get("properties", {}).get(missing, {}).get("description", "")
        return f"{where}: key {full!r} is required" + (f" ({about})" if about else "") + (
            "; a study config states the study completely (README, 'Run on your own cohorts')"
            if full == "traits" else "")
    expected = err.schema.get("description")
    msg = f"{where}: key {path or '(top level)'!r}: {err.message}"
    if expected and err.validator not in ("required",):
        msg += f" (expected: {expected})"
    return msg


def study_config(shipped: dict[str, Any], *, overrides: dict[str, Any],
                 configfiles: Sequence[str | Path]) -> dict[str, Any]:
    """The config a run uses: the shipped demo study, or the user's study config whole.

    Parameters
    ----------
    shipped
        Snakemake's merged config: ``config/config.yaml`` updated with the
        command line's ``--configfile`` files and ``--config`` values.
    overrides
        The command line's config alone: its ``--configfile`` files merged in
        order, then ``--config`` (Snakemake's ``overwrite_config``).
    configfiles
        The ``--configfile`` paths.

    Returns
    -------
    dict
        ``shipped`` when no ``--configfile`` is given (the demo, or a
        ``config/config.yaml`` edited in place); otherwise a copy of
        ``overrides``, so that the study config states the study completely:
        its traits and covariates are exactly those analysed, not merged with
        the demo's, and keys it leaves out take the schema defaults (which
        are the real-data defaults, e.g. KING cutoff 0.0884, no reference panel).
    """
    if not configfiles:
        return shipped
    return copy.deepcopy(overrides)


_TRUE = {"true", "True", "TRUE", "yes", "on"}
_FALSE = {"false", "False", "FALSE", "no", "off"}
_NULL = {"null", "Null", "NULL", "~", "None", "none"}


def _coerce(value: Any, schema: dict) -> Any:
    """``value`` converted to the schema's type when it is a string of another type."""
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for k, v in value.items():
            sub = props.get(k, extra if isinstance(extra, dict) else None)
            if sub is not None:
                value[k] = _coerce(v, sub)
        return value
    if isinstance(value, list):
        items = schema.get("items")
        return [_coerce(v, items) for v in value] if isinstance(items, dict) else value
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and types == ["string"]:
        return str(value)  # --config cohort=2024 arrives as the integer 2024
    if not isinstance(value, str):
        return value
    enum = schema.get("enum", [])
    if "null" in types and value in _NULL:
        return None
    if value in enum or "string" in types:
        return value
    if "array" in types:
        return [x for x in value.replace(",", " ").split()]
    if ("boolean" in types or True in enum) and value in _TRUE:
        return True
    if ("boolean" in types or False in enum) and value in _FALSE:
        return False
    if "integer" in types:
        try:
            return int(value)
        except ValueError:
            pass
    if "number" in types:
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
    return value


def coerce_to_schema(config: dict[str, Any], *, schema_dir: Path = SCHEMA_DIR) -> dict[str, Any]:
    """Convert string values to the type the config schema declares, in place.

    Snakemake parses ``--config key=VALUE`` with YAML's base loader for
    anything but a top-level number or ``True``/``False``, so a nested
    override (``--config 'association={scatter: 5}'``, ``'qc={maf: 0.05}'``,
    ``'meta={gc: true}'``) arrives as strings. Where the schema wants an
    integer, number, boolean or null, a string that reads as one is
    converted (``true``/``false``, ``null``/``~``); a comma- or
    space-separated string becomes a list where the schema wants an array.
    Anything else is left for validation to name.
    """
    schema = yaml.safe_load((schema_dir / "config.schema.yaml").read_text())
    return _coerce(config, schema)


def validate_config(config: dict[str, Any], *, source: str = "config.yaml",
                    schema_dir: Path = SCHEMA_DIR) -> dict[str, Any]:
    """Validate ``config`` in place against the config schema, filling defaults.

    String values where the schema wants numbers, booleans or null are
    converted first (:func:`coerce_to_schema`).

    Raises
    ------
    ConfigError
        Naming the first offending key and what was expected.
    """
    coerce_to_schema(config, schema_dir=schema_dir)
    v = _validator(schema_dir / "config.schema.yaml")
    errors = sorted(v.iter_errors(config), key=lambda e: (len(list(e.absolute_path)), str(e.absolute_path)))
    if errors:
        raise ConfigError(_describe(errors[0], source))
    return config


def read_cohort_sheet(path: str | Path, *, schema_dir: Path = SCHEMA_DIR) -> pl.DataFrame:
    """Read the cohort sheet (TSV, all columns as strings) and validate every row.

    Raises
    ------
    ConfigError
        On a missing file, a wrong header, an invalid row (naming the line
        and column) or a duplicated cohort id (naming both lines).
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: cohort sheet not found (config key 'cohorts')")
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("##")]
    if not lines:
        raise ConfigError(f"{path}: empty cohort sheet; expected a header: {chr(9).join(SHEET_COLUMNS)}")
    header = lines[0].split("\t")
    unknown = [c for c in header if c not in SHEET_COLUMNS]
    if unknown:
        raise ConfigError(f"{path}, line 1: unknown column(s) {unknown}; expected {list(SHEET_COLUMNS)}")
    v = _validator(schema_dir / "cohorts.schema.yaml")
    rows = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != len(header):
            raise ConfigError(f"{path}, line {lineno}: {len(fields)} fields, expected {len(header)} (tab-separated, as the header)")
        row = {k: val.strip() for k, val in zip(header, fields, strict=True) if val.strip() != ""}
        errors = list(v.iter_errors(row))
        if errors:
            e = errors[0]
            col = ".".join(str(p) for p in e.absolute_path) or (e.message.split("'")[1] if e.validator == "required" else "")
            raise ConfigError(f"{path}, line {lineno}, column {col!r}: {e.message}")
        if row["cohort"] in seen:
            raise ConfigError(f"{path}, line {lineno}: duplicate cohort id {row['cohort']!r} (first on line {seen[row['cohort']]})")
        seen[row["cohort"]] = lineno
        rows.append({c: row.get(c, "") for c in SHEET_COLUMNS})
    if not rows:
        raise ConfigError(f"{path}: no cohort rows")
    return pl.DataFrame(rows, schema={c: pl.String for c in SHEET_COLUMNS})


def config_digest(config: dict[str, Any]) -> str:
    """SHA-256 of the effective config (keys sorted), recorded in every manifest."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Study:
    """A validated study: the config (defaults filled) and the cohort sheet."""

    config: dict[str, Any]
    sheet: pl.DataFrame

    @property
    def mode(self) -> str:
        return self.config["mode"]

    @property
    def cohorts(self) -> list[str]:
        """Cohort ids in sheet order (the order of the meta-analysis direction string)."""
        return self.sheet.get_column("cohort").to_list()

    @property
    def run_pooled(self) -> bool:
        """Whether the pooled arm runs: demo mode, unless switched off."""
        return self.mode == "demo" and self.config["pooled"]["enabled"] in ("auto", True)

    @property
    def run_cohorts(self) -> list[str]:
        """Cohorts whose TRE-side stages run here: one in cohort mode, none in central mode."""
        if self.mode == "cohort":
            return [self.config["cohort"]]
        if self.mode == "central":
            return []
        return self.cohorts

    @property
    def sufficient_cohorts(self) -> list[str]:
        """Cohorts that opted in to the federated pooled fit (sheet column ``sufficient: yes``)."""
        return [c for c in self.cohorts if self.row(c)["sufficient"] == "yes"]

    def row(self, cohort: str) -> dict[str, str]:
        return self.sheet.filter(pl.col("cohort") == cohort).row(0, named=True)

    def gate_rules(self, cohort: str) -> dict[str, int | str]:
        g = self.config["export_gate"]
        keys = ("min_count", "round_n", "min_mac", "min_mac_group", "min_residual_df", "release_n")
        rules = {k: g[k] for k in keys}
        rules.update(g.get("overrides", {}).get(cohort, {}))
        return rules


def load_study(config: dict[str, Any], *, workdir: str | Path = ".", source: str = "config.yaml",
               check_files: bool = True) -> Study:
    """Validate a config and its cohort sheet; run the content checks.

    Parameters
    ----------
    config
        The parsed config (modified in place: defaults filled).
    workdir
        Directory that relative paths are relative to.
    check_files
        Check that the inputs this mode reads exist (not in demo mode,
        where the simulator writes them).
    """
    validate_config(config, source=source)
    workdir = Path(workdir)
    sheet = read_cohort_sheet(workdir / config["cohorts"])
    study = Study(config, sheet)
    mode = config["mode"]
    if mode == "cohort":
        if not config["cohort"]:
            raise ConfigError(f"{source}: mode is 'cohort' but key 'cohort' is empty; set it to one of {study.cohorts}")
        if config["cohort"] not in study.cohorts:
            raise ConfigError(f"{source}: key 'cohort': {config['cohort']!r} is not in the cohort sheet {config['cohorts']} (ids: {study.cohorts})")
    if mode != "demo" and config["pooled"]["enabled"] is True:
        raise ConfigError(
            f"{source}: key 'pooled.enabled' is true in {mode} mode; the pooled arm pools individual-level "
            "data of all cohorts and runs only in demo mode (set it to auto or false)"
        )
    meta = config["meta"]
    # Only where the meta-analysis runs: a TRE in cohort mode lists its own row and runs no meta.
    if mode != "cohort" and meta["method"] == "mrmega" and len(study.cohorts) < meta["pcs"] + 3:
        raise ConfigError(
            f"{source}: key 'meta.method' is mrmega with meta.pcs = {meta['pcs']} axes, which needs "
            f"at least pcs + 3 = {meta['pcs'] + 3} cohorts; the sheet has {len(study.cohorts)} "
            f"(set meta.pcs to {max(len(study.cohorts) - 3, 1)} or another method)"
        )
    unknown = sorted(set(config["export_gate"].get("overrides", {})) - set(study.cohorts))
    if unknown:
        raise ConfigError(f"{source}: key 'export_gate.overrides': unknown cohort(s) {unknown}; ids: {study.cohorts}")
    for c in study.cohorts:
        try:
            GateRules(**study.gate_rules(c))
        except ConfigError as exc:
            raise ConfigError(f"{source}: key 'export_gate' (cohort {c}): {exc}") from None
    if check_files and mode == "cohort":
        row = study.row(config["cohort"])
        from crosscohort.tre.genotype_formats import container_files

        wanted = [(f, workdir / f) for f in container_files(row["genotype_format"], row["genotypes"])]
        wanted += [(row[c], workdir / row[c]) for c in ("pheno", "covar")]
        for shown, p in wanted:
            if not p.exists():
                raise ConfigError(f"{config['cohorts']}: cohort {row['cohort']!r}: file {shown} not found")
        key = config["export_gate"]["signing_key"]
        if key and not (workdir / key).is_file():
            raise ConfigError(f"{source}: key 'export_gate.signing_key': {key} not found (crosscohort keygen writes one)")
    _check_consent(study)
    if check_files and mode == "cohort":
        _check_columns(study, study.row(config["cohort"]), workdir)
    if check_files and mode == "central":
        _check_bundles(study, workdir)
    return study


def _check_columns(study: Study, row: dict[str, str], workdir: Path) -> None:
    """Every trait and covariate of the study in the cohort's files, with a fitting type."""
    from crosscohort.tre.phenotypes import check_study_columns, read_header

    cfg = study.config
    traits = {t: spec["type"] for t, spec in cfg["traits"].items()}
    check_study_columns(workdir / row["pheno"], workdir / row["covar"], traits=traits, covariates=cfg["covariates"], sex_from=row["genotypes"])
    n_pcs = cfg["pca"]["n_pcs"]
    if n_pcs:
        header = read_header(workdir / row["covar"], kind="covariate")
        clash = [f"PC{i}" for i in range(1, n_pcs + 1) if f"PC{i}" in header]
        if clash:
            raise ConfigError(
                f"{row['covar']}, line 1: column(s) {clash} would clash with the in-cohort ancestry PCs "
                f"(config key 'pca.n_pcs': {n_pcs}, named PC1..PC{n_pcs}); set 'pca.n_pcs: 0' to use the "
                "file's own PCs (list them in 'covariates'), or rename those columns"
            )


def _check_bundles(study: Study, workdir: Path) -> None:
    """Central mode: every cohort's bundle is in exports/ and holds every trait of the study."""
    traits = list(study.config["traits"])
    for c in study.cohorts:
        manifest = workdir / "exports" / c / "manifest.json"
        if not manifest.exists():
            raise ConfigError(
                f"exports/{c}/manifest.json not found: central mode reads the export bundle of every "
                f"cohort of the sheet {study.config['cohorts']}; put the bundle of cohort {c!r} in "
                f"exports/{c}/ (or remove its row)"
            )
        try:
            files = [Path(f["path"]).name for f in json.loads(manifest.read_text())["files"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"exports/{c}/manifest.json: not a crosscohort manifest ({exc})") from None
        exported = [f.removesuffix(".tsv.gz") for f in files if f.endswith(".tsv.gz")]
        missing = [t for t in traits if t not in exported]
        if missing:
            raise ConfigError(
                f"exports/{c}/manifest.json: the bundle of cohort {c!r} has no trait(s) {missing} "
                f"(it has {exported}); the study config's 'traits' must be traits every cohort exported"
            )


def _check_consent(study: Study) -> None:
    from crosscohort.contract.consent import check_consent

    purpose = {k: study.config["study"].get(k) for k in ("disease", "ancestry_research", "commercial")}
    for c in study.cohorts:
        codes = [x.strip() for x in study.row(c)["duo_codes"].split(",") if x.strip()]
        check_consent(c, codes, purpose)
