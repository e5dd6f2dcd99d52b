"""Study configuration and cohort sheet: validated at load, failing before any job runs.

The JSON Schemas live in ``workflow/schemas/``; this module applies them
(filling defaults), then runs the checks a schema cannot express: duplicate
cohort ids, missing files, the cohort named in cohort mode, consent. Every
error is one line naming the key or the sheet row and what was expected.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from crosscohort.errors import ConfigError

__all__ = ["Study", "load_study", "validate_config", "read_cohort_sheet", "config_digest", "SCHEMA_DIR"]

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "workflow" / "schemas"

SHEET_COLUMNS = ("cohort", "genotypes", "genotype_format", "pheno", "covar", "build", "ancestry", "duo_codes",
                 "sufficient")


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
    expected = err.schema.get("description")
    msg = f"{where}: key {path or '(top level)'!r}: {err.message}"
    if expected and err.validator not in ("required",):
        msg += f" (expected: {expected})"
    return msg


def validate_config(config: dict[str, Any], *, source: str = "config.yaml",
                    schema_dir: Path = SCHEMA_DIR) -> dict[str, Any]:
    """Validate ``config`` in place against the config schema, filling defaults.

    Raises
    ------
    ConfigError
        Naming the first offending key and what was expected.
    """
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

    def gate_rules(self, cohort: str) -> dict[str, int]:
        g = self.config["export_gate"]
        rules = {k: g[k] for k in ("min_count", "round_n", "min_mac", "min_mac_group", "min_residual_df")}
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
    unknown = sorted(set(config["export_gate"].get("overrides", {})) - set(study.cohorts))
    if unknown:
        raise ConfigError(f"{source}: key 'export_gate.overrides': unknown cohort(s) {unknown}; ids: {study.cohorts}")
    if check_files and mode == "cohort":
        row = study.row(config["cohort"])
        from crosscohort.genotype_formats import container_files

        wanted = [(f, workdir / f) for f in container_files(row["genotype_format"], row["genotypes"])]
        wanted += [(row[c], workdir / row[c]) for c in ("pheno", "covar")]
        for shown, p in wanted:
            if not p.exists():
                raise ConfigError(f"{config['cohorts']}: cohort {row['cohort']!r}: file {shown} not found")
    _check_consent(study)
    return study


def _check_consent(study: Study) -> None:
    from crosscohort.gate.consent import check_consent

    purpose = {k: study.config["study"].get(k) for k in ("disease", "ancestry_research", "commercial")}
    for c in study.cohorts:
        codes = [x.strip() for x in study.row(c)["duo_codes"].split(",") if x.strip()]
        check_consent(c, codes, purpose)
