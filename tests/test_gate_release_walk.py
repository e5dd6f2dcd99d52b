"""Walk every number and string of every released file of demo-shaped bundles (issue 18).

Bundles are made by :func:`crosscohort.tre.gate.export_bundle` (the function ``crosscohort
export`` calls) from inputs shaped like the demo's: a quantitative and a binary trait with
per-variant counts such as ``2469 584 1885``, QC ledgers of samples and of variants, and the
two common kinds of sample ID (the demo's ``EUR1234567`` pseudo-IDs; PLINK's ``1..N`` with
FID ``0``). The checks below read the rules as the audit states them, in plain Python:

* ID rule: an ID of 5 or more characters that is not purely numeric (or that holds a
  character other than a letter or digit) must not occur as a case-insensitive substring of
  any released text; any other ID not as a whole token (run of letters and digits).
* Count rules: every count of people is 0 or more than ``min_count`` and one per trait;
  every other number is classified (a count of variants, a threshold, a size in bytes), and
  an unclassified number fails the test, so a new field has to be thought about.
* EAF: no more decimals than ``10^d <= 2 (n - max(min_count, round_n))`` allows.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from crosscohort.contract.sumstats import COLUMNS
from crosscohort.tre.gate import GateRules, export_bundle
from crosscohort.tre.gate.bundle import _own_strings

_TOKEN = re.compile(r"[^\W_]+")
MIN_COUNT = 20
#: Keys whose numbers count people: the count rules apply.
PEOPLE = {"n", "n_cases", "n_controls", "sample_size", "case_count", "control_count"}
#: Keys whose numbers count variants (rows), not people.
VARIANTS = {"rows_in", "rows_released", "rows_suppressed", "n_in", "n_kept", "traits"}
#: Parents whose children are thresholds of the gate (configuration, not data).
THRESHOLDS = {"gate_rules", "rules", "threshold"}


def _holds_id(text: str, ids: list[str]) -> str | None:
    low = text.lower()
    toks = set(_TOKEN.findall(low))
    for i in ids:
        li = i.lower()
        substring = (len(i) >= 5 and not i.isdigit()) or not _TOKEN.fullmatch(i)
        if (li in low) if substring else (li in toks):
            return i
    return None


def _inputs(tmp: Path, *, ids: list[tuple[str, str]], seed: int) -> tuple[dict[str, Path], Path, Path]:
    rng = np.random.default_rng(seed)
    m = 150
    pos = np.sort(rng.choice(10**7, m, replace=False)) + 10_000
    maf = rng.uniform(0.003, 0.5, m)
    base = pl.DataFrame({
        "chromosome": rng.integers(1, 23, m), "base_pair_location": pos,
        "effect_allele": ["A"] * m, "other_allele": ["G"] * m,
        "beta": rng.normal(0, 0.05, m), "standard_error": rng.uniform(0.02, 0.2, m),
        "p_value": rng.uniform(0, 1, m), "rsid": [f"rs{x}" for x in rng.integers(10**6, 10**8, m)],
    }).with_columns(
        (pl.col("chromosome").cast(pl.String) + ":" + pl.col("base_pair_location").cast(pl.String) + ":G:A")
        .alias("variant_id"),
        (-pl.col("p_value").log10()).alias("neg_log_10_p_value"),
    )
    # PLINK names unnamed variants chrom:pos:ref:alt in the rsid column too.
    base = base.with_columns(
        pl.when(pl.int_range(pl.len()) % 5 == 0).then(pl.col("variant_id")).otherwise(pl.col("rsid")).alias("rsid")
    )
    # Per-variant counts as the demo's cad bundle had them: 2469 584 1885 / 2469 585 1884 / ...
    cases = 584 + rng.integers(-2, 2, m)
    controls = 1885 + rng.integers(-3, 2, m)
    n = cases + controls
    alt = np.maximum(np.round(maf * 2 * n), 1)
    common = {"effect_allele_frequency": alt / (2 * n), "mac": np.minimum(alt, 2 * n - alt).astype(float),
              "residual_df": n - 8, "error_code": [None] * m}
    paths = {}
    ldl = base.with_columns(pl.Series("n", n - 30), *[pl.Series(k, v) for k, v in common.items()])
    paths["ldl"] = tmp / "ldl.assoc.tsv"
    ldl.write_csv(paths["ldl"], separator="\t", null_value="NA")
    cad = base.with_columns(
        pl.Series("n", n), pl.Series("n_cases", cases), pl.Series("n_controls", controls),
        *[pl.Series(k, v) for k, v in common.items()],
        pl.Series("mac_cases", np.round(common["mac"] * 0.25)), pl.Series("mac_controls", np.round(common["mac"] * 0.75)),
    )
    paths["cad"] = tmp / "cad.assoc.tsv"
    cad.write_csv(paths["cad"], separator="\t", null_value="NA")
    fam = tmp / "cohort.fam"
    fam.write_text("".join(f"{f}\t{i}\t0\t0\t1\t-9\n" for f, i in ids))
    ledger = tmp / "qc.ledger.json"
    ledger.write_text(json.dumps([
        {"stage": "qc", "cohort": "c", "trait": None, "unit": "variants", "n_in": 160, "n_kept": 150,
         "removed": {"missing_rate_above": 4, "hwe_below": 2, "mac_below": 4}, "changed": {}},
        {"stage": "qc", "cohort": "c", "trait": None, "unit": "samples", "n_in": len(ids), "n_kept": len(ids) - 11,
         "removed": {"call_rate_below_mind": 8, "king_related": 3}, "changed": {}},
    ]))
    return paths, fam, ledger


ID_STYLES = {
    "demo": lambda k: [(f"EUR{v}", f"EUR{v}") for v in range(1_000_000 + 7 * k, 1_000_000 + 7 * k + 300 * 7, 7)],
    "plink_numeric": lambda k: [("0", str(i)) for i in range(1, 301)],
}


@pytest.fixture(scope="module", params=sorted(ID_STYLES))
def bundle(request, tmp_path_factory) -> tuple[Path, list[str], GateRules]:
    tmp = tmp_path_factory.mktemp(request.param)
    ids = ID_STYLES[request.param](1)
    paths, fam, ledger = _inputs(tmp, ids=ids, seed=3)
    rules = GateRules(min_count=MIN_COUNT)
    out = tmp / "exports" / "c"
    export_bundle(paths, cohort="c", trait_types={"ldl": "quantitative", "cad": "binary"}, ids_from=[fam],
                  build="GRCh38", ancestry="EUR>AFR,EAS", config_digest="ab" * 32, out_dir=out,
                  rules=rules, qc_ledgers=[ledger])
    forbidden = sorted({x for pair in ids for x in pair if x != "0"})
    return out, forbidden, rules


def _walk(obj, path=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield (*path, str(k)), str(k), "key"
            yield from _walk(v, (*path, str(k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _walk(v, (*path, i))
    else:
        yield path, obj, "value"


def _classify(path: tuple, value, doc) -> str:
    keys = [p for p in path if isinstance(p, str)]
    if any(k in THRESHOLDS for k in keys):
        return "threshold"
    if keys and keys[-1] == "size" and keys[0] == "files":
        return "bytes"
    if keys and keys[-1] in PEOPLE:
        return "people"
    if keys and keys[-1] in VARIANTS or any(k in ("removed", "changed", "rows_suppressed") for k in keys):
        # A ledger's counts are variants only when its unit says so.
        node, unit = doc, None
        for p in path:
            if isinstance(node, dict) and "unit" in node:
                unit = node["unit"]
            node = node[p] if isinstance(node, dict | list) else None
        return "variants" if unit in (None, "variants") else "people"
    return "unclassified"


def test_walk__every_string_and_number_of_every_released_file_obeys_the_id_and_count_rules(bundle) -> None:
    out, ids, rules = bundle
    own = None
    numbers_json: set[str] = set()
    files = sorted(out.iterdir())
    assert [p.name for p in files] == ["audit.json", "audit.md", "cad.meta.yaml", "cad.tsv.gz",
                                       "ldl.meta.yaml", "ldl.tsv.gz", "manifest.json"]
    audit = json.loads((out / "audit.json").read_text())
    own = _own_strings(audit, rules) | {f["sha256"] for f in json.loads((out / "manifest.json").read_text())["files"]}
    checked = {"strings": 0, "numbers": 0, "cells": 0}
    for p in files:
        assert _holds_id(p.name, ids) is None, p.name
        if p.name.endswith(".tsv.gz"):
            df = pl.read_csv(p, separator="\t", infer_schema=False, null_values=["NA"])
            assert df.height != len(ids)  # not a table of people
            for c in df.columns:
                assert c in COLUMNS  # the allow-list: registry names, the gate's own text
                if c in PEOPLE:
                    vals = {int(v) for v in df[c]}
                    assert len(vals) == 1, f"{p.name}: {c} varies per variant"
                    assert all(v == 0 or v > MIN_COUNT for v in vals)
                elif c == "effect_allele_frequency":
                    n = int(df["n"][0])
                    d = math.floor(math.log10(2 * (n - max(rules.min_count, rules.round_n))) + 1e-9)
                    assert all(len(v.split(".")[1]) <= d if "." in v else True for v in df[c]), (p.name, d)
                elif c in ("variant_id", "rsid", "effect_allele", "other_allele"):
                    for v in df[c]:
                        coords = c in ("variant_id", "rsid") and re.match(r"^\w{1,2}:\d+:", v)
                        text = ":".join(v.split(":")[2:]) if coords else v
                        # Numeric IDs in the coordinate fields are numbers, not text (the rule).
                        assert _holds_id(text, ids) is None
                        if coords:  # a long ID would be a substring even across fields
                            assert _holds_id(v, [i for i in ids if not i.isdigit()]) is None
                        checked["cells"] += 1
            continue
        text = p.read_text()
        if p.suffix == ".md":
            continue  # below, against audit.json
        doc = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
        for path, v, kind in _walk(doc):
            if isinstance(v, bool) or v is None:
                continue
            if isinstance(v, int | float):
                cls = _classify(path, v, doc)
                assert cls != "unclassified", f"{p.name}: number at {path} is not classified"
                if cls == "people":
                    assert v == 0 or v > MIN_COUNT, f"{p.name}: count of people {v} at {path}"
                if p.name == "audit.json":
                    numbers_json.add(str(v))
                checked["numbers"] += 1
            else:
                s = str(v)
                if s in own:
                    continue
                assert _holds_id(s, ids) is None, f"{p.name}: ID in {kind} at {path}"
                checked["strings"] += 1
    # audit.md: its numbers are audit.json's (or its own fixed wording's); its words hold no ID.
    md = (out / "audit.md").read_text()
    own_tokens = {t for s in own for t in _TOKEN.findall(str(s))}
    for line in md.splitlines():
        for s in sorted(own, key=len, reverse=True):
            line = line.replace(s, " ")
        for t in _TOKEN.findall(line):
            if t.isdigit():
                assert t in numbers_json or t in own_tokens, f"audit.md: number {t} not from audit.json"
        assert _holds_id(" ".join(t for t in _TOKEN.findall(line) if not t.isdigit()), ids) is None
    assert checked["strings"] > 20 and checked["numbers"] > 20 and checked["cells"] > 100
    # The people ledger is withheld, the variant ledger is not.
    meta = yaml.safe_load((out / "cad.meta.yaml").read_text())
    units = {q["unit"]: q for q in meta["data_qc"]}
    assert "n_in" not in units["samples"] and units["variants"]["removed"]["hwe_below"] == 2
    assert (meta["sample_size"], meta["case_count"]) == (meta["case_count"] + meta["control_count"], 585)
