"""One place for each default and range: the config schema (crosscohort.schemas).

The workflow takes its defaults from the schema at validation; the commands'
argparse defaults and the dataclass defaults read the same keys, and the
QC thresholds' and gate rules' range checks read the schema's bounds. These
tests hold every reader to the schema (and the schema to plink2's ranges).
"""

from __future__ import annotations

import argparse
import copy
import inspect
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from crosscohort.cli import build_parser
from crosscohort.config import validate_config
from crosscohort.contract.errors import ConfigError, InputError
from crosscohort.contract.release import RELEASE_N, GateRules
from crosscohort.schemas import default, describe_range, out_of_range, property_schema
from crosscohort.tre.qc import QcThresholds

REPO = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def _defaults(command: str) -> argparse.Namespace:
    """The parsed defaults of ``crosscohort COMMAND`` with its required options filled."""
    required = {
        "qc": ["--bfile", "x", "--out-prefix", "o"],
        "export": ["--cohort", "c", "--sumstats", "t=f", "--ids-from", "f", "--build", "b",
                   "--ancestry", "a", "--config-digest", "0", "--out-dir", "d"],
        "verify": ["--bundle", "b", "--out", "o"],
        "meta": ["--out", "o", "f"],
        "harmonise": ["--out-dir", "d", "f"],
        "compare": ["--meta", "m", "--pooled", "p", "--out-prefix", "o"],
        "pca": ["--bfile", "x", "--out", "o"],
        "assoc": ["--bfile", "x", "--pheno", "p", "--out", "o"],
        "sufficient": ["--bfile", "x", "--pheno", "p", "--out-dir", "d"],
    }[command]
    return build_parser([command]).parse_args([command, *required])


def test_qc_thresholds__dataclass_and_command_defaults_are_the_schema_s():
    args = _defaults("qc")
    for f in fields(QcThresholds):
        assert f.default == default(f"qc.{f.name}"), f.name
        assert getattr(args, f.name) == default(f"qc.{f.name}"), f.name
    assert args.king_cutoff == default("qc.king_cutoff")
    from crosscohort.tre import qc, relatedness

    assert relatedness.KING_THIRD_DEGREE == default("qc.king_cutoff")
    assert inspect.signature(qc.run_qc).parameters["king_cutoff"].default == default("qc.king_cutoff")


@pytest.mark.parametrize("command", ["export", "verify"])
def test_gate_rules__dataclass_and_command_defaults_are_the_schema_s(command):
    args = _defaults(command)
    for f in fields(GateRules):
        assert f.default == default(f"export_gate.{f.name}"), f.name
    assert GateRules.from_options(args) == GateRules()
    assert RELEASE_N == tuple(property_schema("export_gate.release_n")["enum"])


def test_central_commands__defaults_are_the_schema_s():
    meta, harmonise, compare = _defaults("meta"), _defaults("harmonise"), _defaults("compare")
    for args in (meta, harmonise):
        assert args.palindrome_max_maf == default("harmonise.palindrome_max_maf")
        assert args.eaf_max_diff == default("harmonise.eaf_max_diff")
    assert meta.method == default("meta.method")
    assert meta.loo_window_kb == compare.window_kb == default("report.window_kb")
    assert compare.threshold == default("report.threshold")


def test_tre_commands__pca_and_chunk_defaults_are_the_schema_s():
    pca = _defaults("pca")
    for name in ("n_pcs", "maf", "prune_window", "prune_step", "prune_r2"):
        assert getattr(pca, name) == default(f"pca.{name}"), name
    from crosscohort.tre.pca import ld_prune, run_pca

    params = inspect.signature(run_pca).parameters
    for arg, key in (("n_pcs", "n_pcs"), ("maf", "maf"), ("window", "prune_window"),
                     ("step", "prune_step"), ("r2", "prune_r2")):
        assert params[arg].default == default(f"pca.{key}"), arg
        if arg in ("window", "step", "r2"):
            assert inspect.signature(ld_prune).parameters[arg].default == default(f"pca.{key}")
    for command in ("assoc", "sufficient"):
        assert _defaults(command).chunk_size == default("association.chunk_size")


def test_central_library__threshold_and_window_are_the_schema_s():
    from crosscohort.central import compare, loci
    from crosscohort.central.report import build, plots

    for func in (loci.distance_loci, compare.compare_arms, build.build_report, plots.manhattan):
        params = inspect.signature(func).parameters
        assert params["threshold"].default == default("report.threshold"), func.__name__
        if "window_kb" in params:
            assert params["window_kb"].default == default("report.window_kb"), func.__name__


def test_harmonise_library__defaults_agree_with_the_schema():
    # central/harmonise keeps its own constants (its owners' module); held to the schema here.
    from crosscohort.central.harmonise import align, readers
    from crosscohort.central.meta import mrmega

    assert align.EAF_MAX_DIFF == default("harmonise.eaf_max_diff")
    assert mrmega.DEFAULT_AXES == default("meta.pcs")
    for func in (align.harmonise, readers.harmonise_files):
        assert inspect.signature(func).parameters["palindrome_max_maf"].default == default(
            "harmonise.palindrome_max_maf")


def test_hwe_of_one__refused_by_the_schema_as_by_qc_and_plink2():
    # plink2: "Invalid --hwe threshold '1' (must be in [0, 1))". The schema allowed 1 before.
    cfg = copy.deepcopy(CONFIG)
    cfg["qc"]["hwe"] = 1
    with pytest.raises(ConfigError, match=r"key 'qc\.hwe'"):
        validate_config(cfg)
    with pytest.raises(InputError, match=r"--hwe must be in \[0, 1\); got 1"):
        QcThresholds(hwe=1).check()
    cfg["qc"]["hwe"] = 0.5
    validate_config(cfg)
    QcThresholds(hwe=0.5).check()


@pytest.mark.parametrize(("name", "bad"), [("geno", 1.5), ("mind", -0.1), ("maf", 0.6), ("mac", -1),
                                           ("hwe", 1.0), ("maf", float("nan"))])
def test_qc_thresholds__refuse_what_the_config_refuses(name, bad):
    cfg = copy.deepcopy(CONFIG)
    cfg["qc"][name] = bad
    if bad == bad:  # JSON Schema has no NaN
        with pytest.raises(ConfigError, match=rf"key 'qc\.{name}'"):
            validate_config(cfg)
    with pytest.raises(InputError, match=rf"--{name} must be"):
        QcThresholds(**{name: bad}).check()


def test_king_cutoff__command_and_schema_take_the_same_range():
    assert describe_range("qc.king_cutoff") == "(0, 0.5]"
    cfg = copy.deepcopy(CONFIG)
    for value, ok in ((0, False), (0.5, True), (0.6, False)):
        cfg["qc"]["king_cutoff"] = value
        if ok:
            validate_config(cfg)
            assert _parse_king(str(value)) == value
        else:
            with pytest.raises(ConfigError):
                validate_config(cfg)
            with pytest.raises(SystemExit):
                _parse_king(str(value))


def _parse_king(text: str) -> float:
    return build_parser(["qc"]).parse_args(["qc", "--bfile", "x", "--out-prefix", "o",
                                            "--king-cutoff", text]).king_cutoff


def test_gate_rules__negative_threshold_names_the_rule():
    with pytest.raises(ConfigError, match=r"gate rule min_mac must be >= 0; got -1"):
        GateRules(min_mac=-1)


def test_schema_helpers__name_unknown_keys_and_ranges():
    with pytest.raises(KeyError, match=r"'qc\.nope'"):
        default("qc.nope")
    with pytest.raises(KeyError, match=r"no default"):
        default("traits")
    assert describe_range("qc.hwe") == "[0, 1)"
    assert out_of_range("qc.hwe", 0.0) is None
    assert out_of_range("export_gate.min_count", -1) == "must be >= 0"
    assert out_of_range("report.threshold", 0) == "must be in (0, 1]"
