"""Central trust in a bundle (issue 18, items 9-12): whose it is, whose rules, who signed it, no traceback."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import stat
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crosscohort.central.verify import verify_bundle
from crosscohort.cli import main
from crosscohort.contract.errors import ConfigError, GateError, InputError
from crosscohort.contract.signature import SIGNATURE, generate_keypair
from crosscohort.tre.gate import GateRules, export_bundle
from tests.conftest import require_tool

DIGEST = "ef" * 32


def _export(tmp: Path, cohort: str = "cohA", *, rules: GateRules | None = None, key: Path | None = None,
            n: int = 1000) -> Path:
    src = tmp / f"{cohort}.assoc.tsv"
    pl.DataFrame({
        "chromosome": [1, 1, 2], "base_pair_location": [100, 200, 300], "effect_allele": ["A", "C", "G"],
        "other_allele": ["G", "T", "A"], "beta": [0.1, -0.2, 0.3], "standard_error": [0.05, 0.06, 0.07],
        "effect_allele_frequency": [0.3, 0.4, 0.2], "p_value": [0.04, 0.001, 0.2], "n": [n, n, n],
        "mac": [600.0, 790.0, 400.0], "residual_df": [998, 988, 990], "rsid": ["rs1", "rs2", "rs3"],
    }).write_csv(src, separator="\t")
    fam = tmp / f"{cohort}.fam"
    fam.write_text("F1 NA12878 0 0 1 -9\n")
    out = tmp / "exports" / cohort
    export_bundle({"ldl": src}, cohort=cohort, trait_types={"ldl": "quantitative"}, ids_from=[fam],
                  build="GRCh38", ancestry="EUR", config_digest=DIGEST, out_dir=out, rules=rules,
                  signing_key=key)
    return out


def _rehash(out: Path, name: str) -> None:
    # An attacker (or a broken copy tool) who updates the manifest after editing a file.
    man = json.loads((out / "manifest.json").read_text())
    for f in man["files"]:
        if f["path"] == name:
            data = (out / name).read_bytes()
            f["sha256"], f["size"] = hashlib.sha256(data).hexdigest(), len(data)
    (out / "manifest.json").write_text(json.dumps(man, indent=2) + "\n")


def _edit_table(out: Path, old: str, new: str) -> None:
    p = out / "ldl.tsv.gz"
    with gzip.open(p, "rt") as fh:
        text = fh.read()
    assert old in text
    with gzip.open(p, "wt") as fh:
        fh.write(text.replace(old, new))
    _rehash(out, "ldl.tsv.gz")


def _keys(tmp: Path, name: str) -> tuple[Path, Path]:
    key, pub = tmp / "keys" / f"{name}.key", tmp / "keys" / f"{name}.pub"
    generate_keypair(key, pub)
    return key, pub


# ------------------------------------------------------------ item 9: whose bundle


def test_verify__other_cohorts_bundle_in_this_cohorts_folder_is_refused(tmp_path: Path) -> None:
    b = _export(tmp_path, "cohB")
    a = tmp_path / "exports" / "cohA"
    shutil.copytree(b, a)  # B's bundle delivered as A's: the meta-analysis would count B twice
    with pytest.raises(InputError, match=r"cohA/manifest\.json: cohort 'cohB' is not the bundle folder's 'cohA'"):
        verify_bundle(a)
    with pytest.raises(InputError, match=r"cohort 'cohB' is not the cohort sheet's 'cohA'"):
        verify_bundle(b, cohort="cohA")
    assert verify_bundle(b, cohort="cohB").cohort == "cohB"


# ------------------------------------------------------------ item 10: the study's rules, not the bundle's


def test_verify__bundle_exported_under_lower_rules_is_refused_even_with_clean_rows(tmp_path: Path) -> None:
    out = _export(tmp_path, rules=GateRules(min_count=5, min_mac=10))
    with pytest.raises(GateError, match=r"gate_rules below the study's required minimum \(min_count 5 < required "
                                        r"20; min_mac 10 < required 20\)"):
        verify_bundle(out)
    assert verify_bundle(out, required=GateRules(min_count=5, min_mac=10)).rows == {"ldl": 3}


def test_verify__bundle_lowering_its_own_gate_rules_to_pass_small_counts_is_refused(tmp_path: Path) -> None:
    out = _export(tmp_path)
    _edit_table(out, "\t1000\n", "\t12\n")  # n = 12: a count the study forbids
    man = json.loads((out / "manifest.json").read_text())
    man["gate_rules"]["min_count"] = 5  # ... and the manifest's claim lowered to let it through
    (out / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(GateError, match=r"min_count 5 < required 20"):
        verify_bundle(out)


def test_verify__stricter_bundle_passes_and_round_n_is_rechecked_on_rows(tmp_path: Path) -> None:
    out = _export(tmp_path, rules=GateRules(min_count=30, round_n=10))
    assert verify_bundle(out).required_rules == GateRules()
    _edit_table(out, "\t1000\n", "\t1003\n")  # not a multiple of the declared round_n
    with pytest.raises(GateError, match=r"ldl\.tsv\.gz: rows breaking gate rules .*'round_n': 3"):
        verify_bundle(out, required=GateRules(round_n=10))


def test_verify__per_variant_counts_meet_only_a_study_that_allows_them(tmp_path: Path) -> None:
    per_variant = _export(tmp_path, "cohA", rules=GateRules(round_n=25, release_n="per_variant"))
    with pytest.raises(GateError, match=r"release_n 'per_variant' releases more than required 'trait'"):
        verify_bundle(per_variant)
    allows = GateRules(round_n=25, release_n="per_variant")
    assert verify_bundle(per_variant, required=allows).rows == {"ldl": 3}
    # One n per trait releases less, so it meets a study allowing per-variant counts as well.
    by_trait = _export(tmp_path, "cohB", rules=GateRules(round_n=25))
    assert verify_bundle(by_trait, required=allows).rows == {"ldl": 3}


def test_verify_cli__takes_every_gate_rule_the_workflow_passes(tmp_path: Path) -> None:
    """The workflow passes each of the study's gate rules as an option (common.smk verify_args)."""
    out = _export(tmp_path)
    record = tmp_path / "record.json"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in GateRules().to_dict().items()]
    assert main(["verify", "--bundle", str(out), "--out", str(record), *flags]) == 0
    assert json.loads(record.read_text())["cohort"] == "cohA"


# ------------------------------------------------------------ item 11: signatures


def test_keygen__writes_private_key_0600_and_never_overwrites(tmp_path: Path, capsys) -> None:
    key, pub = tmp_path / "tre.key", tmp_path / "tre.pub"
    assert main(["keygen", "--key", str(key), "--public-key", str(pub)]) == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert pub.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert "fingerprint" in capsys.readouterr().out
    before = key.read_bytes(), pub.read_bytes()
    assert main(["keygen", "--key", str(key), "--public-key", str(tmp_path / "new.pub")]) == 2
    assert "never overwrites" in capsys.readouterr().err
    assert (key.read_bytes(), pub.read_bytes()) == before and not (tmp_path / "new.pub").exists()


def test_verify__signed_bundle_passes_with_its_key_and_records_it(tmp_path: Path) -> None:
    key, pub = _keys(tmp_path, "cohA")
    out = _export(tmp_path, key=key)
    assert (out / SIGNATURE).is_file()
    v = verify_bundle(out, cohort="cohA", public_key=pub)
    assert v.signature.status == "valid"
    assert v.record()["signature"]["public_key_sha256"] == v.signature.public_key_sha256
    assert verify_bundle(out).signature.status == "not checked (signed)"  # no key configured


def test_verify__unsigned_bundle_is_refused_when_a_key_is_configured(tmp_path: Path) -> None:
    _, pub = _keys(tmp_path, "cohA")
    out = _export(tmp_path)
    assert verify_bundle(out).signature.status == "not checked (unsigned)"
    with pytest.raises(InputError, match=r"manifest\.sig\.json: missing; the cohort sheet lists a public key"):
        verify_bundle(out, public_key=pub)


def test_verify__bundle_signed_by_another_key_is_refused(tmp_path: Path) -> None:
    other, _ = _keys(tmp_path, "intruder")
    _, pub = _keys(tmp_path, "cohA")
    out = _export(tmp_path, key=other)
    with pytest.raises(InputError, match=r"signed by key [0-9a-f]{16}\.\.\., but the cohort sheet's public key"):
        verify_bundle(out, public_key=pub)


def test_verify__table_edited_and_manifest_rehashed_breaks_the_signature(tmp_path: Path) -> None:
    key, pub = _keys(tmp_path, "cohA")
    out = _export(tmp_path, key=key)
    _edit_table(out, "\t0.001\t", "\t1e-300\t")  # a forged hit; sizes and hashes made consistent
    verify_bundle(out)  # without a key, the forgery is undetectable
    with pytest.raises(InputError, match=r"the signature does not match manifest\.json; the manifest was changed"):
        verify_bundle(out, public_key=pub)


@pytest.mark.parametrize("content", [b"not a key\n", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"])
def test_verify__unreadable_public_key_is_a_clear_config_error(tmp_path: Path, content: bytes) -> None:
    out = _export(tmp_path)
    pub = tmp_path / "bad.pub"
    pub.write_bytes(content)
    with pytest.raises(ConfigError, match=r"bad\.pub: not a public key"):
        verify_bundle(out, public_key=pub)


def test_export__non_ed25519_or_missing_signing_key_is_refused_before_any_work(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ec_key = tmp_path / "ec.key"
    ec_key.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(ConfigError, match=r"ec\.key: the signing key must be Ed25519"):
        _export(tmp_path, key=ec_key)
    with pytest.raises(ConfigError, match=r"nope\.key: no such signing key file"):
        _export(tmp_path, key=tmp_path / "nope.key")
    assert not (tmp_path / "exports").exists()


def test_load_keys__every_refusal_names_the_file_and_the_rule(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    from crosscohort.contract.signature import load_private_key, load_public_key

    locked = tmp_path / "locked.key"
    locked.write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    with pytest.raises(ConfigError, match=r"locked\.key: the signing key is encrypted; give an unencrypted PEM key"):
        load_private_key(locked)
    text = tmp_path / "text.key"
    text.write_bytes(b"not a key\n")
    with pytest.raises(ConfigError, match=r"text\.key: not a PEM private key \(expected -----BEGIN PRIVATE KEY-----"):
        load_private_key(text)
    ec_pub = tmp_path / "ec.pub"
    ec_pub.write_bytes(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    with pytest.raises(ConfigError, match=r"ec\.pub: the public key must be Ed25519; got"):
        load_public_key(ec_pub)
    with pytest.raises(ConfigError, match=r"nope\.pub: no such public key file"):
        load_public_key(tmp_path / "nope.pub")


# ------------------------------------------------------------ item 12: messages, never tracebacks


def _manifest_edits():
    def key(k, v):
        def edit(m):
            m[k] = v
            return m
        return edit

    def file0(k, v):
        def edit(m):
            m["files"][0][k] = v
            return m
        return edit

    def trait(k, v):
        def edit(m):
            m["traits"]["ldl"][k] = v
            return m
        return edit

    def rule(k, v):
        def edit(m):
            m["gate_rules"][k] = v
            return m
        return edit

    return [
        ("truncated", None, b'{"cohort": "cohA", "files": [', r"line 1, column \d+: not valid JSON"),
        ("latin1", None, b'{"cohort": "coh\xc4"}', r"not UTF-8 text"),
        ("array", None, b"[1, 2]", r"expected a JSON object; got list"),
        ("no_files", lambda m: {k: v for k, v in m.items() if k != "files"}, None, r"missing key\(s\) \['files'\]"),
        ("files_object", key("files", {"a": 1}), None, r"key 'files' must be a list"),
        ("traits_list", key("traits", ["ldl"]), None, r"key 'traits' must be an object"),
        ("size_text", file0("size", "12 kB"), None, r"files\[0\] \(\S+\) size must be a whole number"),
        ("size_bool", file0("size", True), None, r"size must be a whole number"),
        ("sha_short", file0("sha256", "abc"), None, r"sha256 must be 64 lower-case hex digits"),
        ("path_null", file0("path", None), None, r"files\[0\] path None must be a plain file name"),
        ("sumstats_list", trait("sumstats", ["ldl.tsv.gz"]), None, r"trait 'ldl' sumstats file \['ldl.tsv.gz'\] not in"),
        ("sumstats_md", trait("sumstats", "audit.md"), None, r"trait 'ldl' sumstats file 'audit.md' must be a \.tsv\.gz"),
        ("rules_list", key("gate_rules", [20]), None, r"key 'gate_rules' must be an object"),
        ("rule_text", rule("min_count", "twenty"), None, r"gate_rules\.min_count must be a number >= 0; got 'twenty'"),
        ("rule_unknown", rule("max_count", 3), None, r"unknown \['max_count'\]"),
        ("created_int", key("created", 20261207), None, r"key 'created' must be a non-empty string"),
    ]


@pytest.mark.parametrize(("name", "edit", "raw", "message"), _manifest_edits(), ids=[e[0] for e in _manifest_edits()])
def test_verify_cli__malformed_manifest_is_a_one_line_error_naming_it(
    tmp_path: Path, capsys, name, edit, raw, message
) -> None:
    out = _export(tmp_path)
    p = out / "manifest.json"
    p.write_bytes(raw if raw is not None else json.dumps(edit(json.loads(p.read_text()))).encode())
    rc = main(["verify", "--bundle", str(out), "--out", str(tmp_path / "rec.json"), "--cohort", "cohA"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "manifest.json" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    import re

    assert re.search(message, err), err


@pytest.mark.parametrize("where", ["table", "metadata", "audit_md"])
def test_verify__non_utf8_text_in_a_bundle_is_refused_naming_file_and_line(tmp_path: Path, where: str) -> None:
    out = _export(tmp_path)
    if where == "table":
        _edit_table(out, "rs2", "rs2")  # re-written by gzip; now plant the latin-1 byte
        p = out / "ldl.tsv.gz"
        with gzip.open(p, "rb") as fh:
            data = fh.read()
        with gzip.open(p, "wb") as fh:
            fh.write(data.replace(b"rs2", b"rs\xe92"))
        name, line = "ldl.tsv.gz", 3
    else:
        name = "ldl.meta.yaml" if where == "metadata" else "audit.md"
        p = out / name
        lines = p.read_bytes().split(b"\n")
        lines[1] += b" caf\xe9"
        p.write_bytes(b"\n".join(lines))
        line = 2
    _rehash(out, name)
    with pytest.raises(InputError, match=rf"{name.replace('.', r'[.]')}, line {line}: not UTF-8 text"):
        verify_bundle(out)


def test_verify__non_utf8_byte_past_the_first_block_is_named_by_its_line(tmp_path: Path) -> None:
    out = _export(tmp_path)
    lines = [f"line {i} of a long audit page, plain ASCII" for i in range(1, 60_001)]  # ~2.6 MB
    lines[54_320] += " \xe9t\xe9"  # line 54,321: latin-1, past the 1 MiB blocks the check reads
    (out / "audit.md").write_bytes("\n".join(lines).encode("latin-1"))
    _rehash(out, "audit.md")
    with pytest.raises(InputError, match=r"audit\.md, line 54321: not UTF-8 text"):
        verify_bundle(out)


def test_verify__symlink_in_a_bundle_is_refused(tmp_path: Path) -> None:
    out = _export(tmp_path)
    target = tmp_path / "elsewhere.md"
    shutil.move(out / "audit.md", target)
    (out / "audit.md").symlink_to(target)
    with pytest.raises(InputError, match=r"audit\.md: not a regular file \(a symlink or directory\)"):
        verify_bundle(out)


# ------------------------------------------------------------ the peer: OpenSSL


def test_signature__interoperates_with_openssl_both_ways(tmp_path: Path) -> None:
    # Keys made by OpenSSL sign through the product path, OpenSSL checks the product's signature:
    #   openssl genpkey -algorithm ed25519 -out tre.key
    #   openssl pkey -in tre.key -pubout -out tre.pub
    #   openssl pkeyutl -verify -pubin -inkey tre.pub -rawin -in manifest.json -sigfile sig.bin
    import subprocess

    openssl = require_tool("openssl")
    key, pub = tmp_path / "tre.key", tmp_path / "tre.pub"
    subprocess.run([openssl, "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True)
    subprocess.run([openssl, "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True)
    out = _export(tmp_path, key=key)
    assert verify_bundle(out, public_key=pub).signature.status == "valid"
    sig = tmp_path / "sig.bin"
    sig.write_bytes(bytes.fromhex(json.loads((out / SIGNATURE).read_text())["signature"]))

    def openssl_verify() -> subprocess.CompletedProcess:
        return subprocess.run([openssl, "pkeyutl", "-verify", "-pubin", "-inkey", str(pub), "-rawin",
                               "-in", str(out / "manifest.json"), "-sigfile", str(sig)],
                              capture_output=True, text=True)

    ok = openssl_verify()
    assert ok.returncode == 0 and "Signature Verified Successfully" in ok.stdout, ok.stdout + ok.stderr
    (out / "manifest.json").write_text((out / "manifest.json").read_text().replace("GRCh38", "GRCh37"))
    assert openssl_verify().returncode != 0  # the peer, too, rejects a changed manifest


# ------------------------------------------------------------ property: any manifest, a message


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=8)
    | st.sampled_from(["ldl.tsv.gz", "audit.md", "manifest.json", "../x", "cohA"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


@pytest.fixture(scope="module")
def intact_bundle(tmp_path_factory) -> Path:
    return _export(tmp_path_factory.mktemp("intact"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_verify__any_edit_of_the_manifest_gives_a_message_never_a_traceback(intact_bundle: Path, data) -> None:
    manifest = json.loads((intact_bundle / "manifest.json").read_text())
    where = data.draw(st.sampled_from([p for p in _paths(manifest) if p]))
    node = manifest
    for k in where[:-1]:
        node = node[k]
    if isinstance(node, dict) and data.draw(st.booleans()):
        del node[where[-1]]
    else:
        node[where[-1]] = data.draw(_JSON)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cohA"
        shutil.copytree(intact_bundle, out)
        (out / "manifest.json").write_text(json.dumps(manifest))
        try:
            verify_bundle(out, cohort="cohA")
        except (InputError, GateError, ConfigError):
            pass  # UserError: one line naming the file and the rule
