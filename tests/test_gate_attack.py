"""Hostile-tester attacks on the merged export gate (issues 18 and 24), through export_bundle.

Each test names the attack and failed on the gate before its fix (see the commit messages).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from crosscohort.contract.errors import GateError, InputError
from crosscohort.tre.gate import export_bundle
from tests.test_gate_adversarial import _table

DIGEST = "cd" * 32
LONG = "NA12878"
IDS = [("FAM7", LONG), ("FAM8", "HG00733"), ("0", "123456"), ("0", "Strasse7")]


def _fam(tmp: Path) -> Path:
    p = tmp / "cohort.fam"
    p.write_text("".join(f"{f}\t{i}\t0\t0\t1\t-9\n" for f, i in IDS), encoding="utf-8")
    return p


def _export(tmp: Path, df: pl.DataFrame, **kw) -> Path:
    src = tmp / "assoc.tsv"
    df.write_csv(src, separator="\t", null_value="NA")
    out = tmp / "exports" / "c1"
    args = {"cohort": "c1", "trait_types": {"ldl": "quantitative"}, "ids_from": [_fam(tmp)],
            "build": "GRCh38", "ancestry": "EUR", "config_digest": DIGEST, "out_dir": out} | kw
    export_bundle({"ldl": src}, **args)
    return out


def _released_text(out: Path) -> str:
    parts = []
    for p in sorted(out.iterdir()):
        parts.append(p.name)
        if p.name.endswith(".gz"):
            with gzip.open(p, "rt", encoding="utf-8") as fh:
                parts.append(fh.read())
        else:
            parts.append(p.read_text(encoding="utf-8"))
    return "\n".join(parts)


# ---------------------------------------------------------------- identifiers in another Unicode form


@pytest.mark.parametrize(
    "rsid",
    [
        "ＮＡ１２８７８",  # fullwidth letters and digits: NFKC gives NA12878
        "rs_ｎａ12878",  # fullwidth, lower case, inside a longer cell
        "NA1\u200b2878",  # a zero-width space inside the ID (invisible when printed)
        "NA12\u00ad878",  # a soft hyphen inside the ID (invisible when printed)
        "straße7",  # the ID Strasse7 in its German spelling: case-folds to strasse7
        "ＨＧ00733_x",
    ],
)
def test_attack__identifier_in_a_compatibility_or_invisible_form_blocks_export(tmp_path: Path, rsid: str) -> None:
    """An ID a reader sees in the released file must be found whatever Unicode form carries it.

    Failed before the fix: the scan compared lower-cased text only, so fullwidth forms,
    zero-width characters and the ß spelling of an ID went out.
    """
    with pytest.raises(GateError, match=r"ldl\.tsv\.gz, line 3, column rsid: holds a sample identifier"):
        _export(tmp_path, _table([{}, {"rsid": rsid}, {}]))
    audit = json.loads((tmp_path / "exports/c1/audit.json").read_text(encoding="utf-8"))
    assert audit["status"] == "blocked"
    assert rsid not in _released_text(tmp_path / "exports/c1")


def test_attack__identifier_in_a_compatibility_form_in_the_ancestry_text_blocks_export(tmp_path: Path) -> None:
    """The ancestry text goes into every metadata YAML: a fullwidth ID there must block too."""
    with pytest.raises(GateError, match=r"ldl\.meta\.yaml, line [0-9]+ \(key samples\[0\]\.sample_ancestry"):
        _export(tmp_path, _table([{}, {}, {}]), ancestry="EUR ｎａ１２８７８")


def test_attack__ordinary_non_ascii_text_does_not_block(tmp_path: Path) -> None:
    """No false block: accents and other scripts without an ID pass (and stay as written)."""
    out = _export(tmp_path, _table([{}, {"rsid": "rs_é_ß_ИД"}, {}]), ancestry="Européen")
    assert (out / "manifest.json").is_file()
    assert "Européen" in (out / "ldl.meta.yaml").read_text(encoding="utf-8")


def test_attack__a_psam_sid_is_searched_like_fid_and_iid(tmp_path: Path) -> None:
    """plink2's .psam may carry SID, the third part of a sample ID: it is an identifier too.

    Failed before the fix: only FID and IID were read, so rsid = the SID went out.
    """
    psam = tmp_path / "cohort.psam"
    psam.write_text("#FID\tIID\tSID\tSEX\nF1\tS1\tRUN12345A\t1\nF2\tS2\tRUN67890B\t2\n", encoding="utf-8")
    with pytest.raises(GateError, match=r"ldl\.tsv\.gz, line 2, column rsid: holds a sample identifier \(the SID"):
        _export(tmp_path, _table([{"rsid": "rs1_run67890b"}, {}, {}]), ids_from=[psam])


def _bgen_sample(tmp: Path, ids: list[str]) -> Path:
    p = tmp / "cohort.sample"
    p.write_text("ID_1 ID_2 missing sex\n0 0 0 D\n" + "".join(f"{i} {i} 0 1\n" for i in ids), encoding="utf-8")
    return p


def test_attack__a_bgen_sample_file_counts_its_people_not_its_two_header_lines(tmp_path: Path) -> None:
    """A .sample file (BGEN) starts with a header and a column-type line: neither is a sample.

    Failed before the fix: both lines were read as samples, so the per-person table rule looked
    for 7 rows instead of 5 and a table of the 5 people passed.
    """
    sample = _bgen_sample(tmp_path, [f"SAMP{i:04d}" for i in range(5)])
    with pytest.raises(GateError, match=r"5 rows, exactly as many as the cohort's samples"):
        _export(tmp_path, _table([{}] * 5), ids_from=[sample])


def test_attack__a_bgen_sample_file_ids_are_searched_and_its_header_words_are_not(tmp_path: Path) -> None:
    sample = _bgen_sample(tmp_path, [f"SAMP{i:04d}" for i in range(5)])
    with pytest.raises(GateError, match=r"holds a sample identifier \(the IID at line 5"):
        _export(tmp_path, _table([{}, {}, {"rsid": "x_samp0002"}]), ids_from=[sample])
    out = _export(tmp_path, _table([{"rsid": "ID_1"}, {"rsid": "id_2x"}, {}]), ids_from=[sample])
    assert (out / "manifest.json").is_file()


def _vcf(tmp: Path, ids: list[str], *, gz: bool) -> Path:
    text = "##fileformat=VCFv4.2\n##contig=<ID=1>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t"
    text += "\t".join(ids) + "\n1\t100\trs1\tA\tG\t.\t.\t.\tGT\t" + "\t".join(["0/1"] * len(ids)) + "\n"
    p = tmp / ("cohort.vcf.gz" if gz else "cohort.vcf")
    if gz:
        with gzip.open(p, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("gz", [False, True])
def test_attack__a_vcf_cohort_ids_are_taken_from_its_header(tmp_path: Path, gz: bool) -> None:
    """A VCF cohort's genotype file names its people in the #CHROM line: the gate searches them.

    Failed before the fix: a VCF could not be given to --ids-from (read as a table, its
    ## lines made no IID column), and the workflow passed only .fam/.psam files, so a VCF
    or BGEN cohort's IDs absent from the pheno/covar files were never searched for.
    """
    vcf = _vcf(tmp_path, [f"HG{i:05d}" for i in range(5)], gz=gz)
    with pytest.raises(GateError, match=r"holds a sample identifier \(the IID at line 3"):
        _export(tmp_path, _table([{}, {"rsid": "rs9_hg00003"}, {}]), ids_from=[vcf])
    with pytest.raises(GateError, match=r"5 rows, exactly as many as the cohort's samples"):
        _export(tmp_path, _table([{}] * 5), ids_from=[vcf])


def test_attack__a_per_person_table_is_refused_when_the_pheno_file_has_no_fid(tmp_path: Path) -> None:
    """A .fam (FID IID) and a '#IID' pheno file name the same 5 people: 5, not 10.

    Failed before the fix: people were counted as (FID, IID) pairs across files, so each was
    counted twice (('F1', 'S1') and ('', 'S1')), and a 5-row table of the 5 people passed.
    """
    fam = tmp_path / "c.fam"
    fam.write_text("".join(f"FAM{i} PERS{i:04d} 0 0 1 -9\n" for i in range(5)), encoding="utf-8")
    pheno = tmp_path / "c.pheno"
    pheno.write_text("#IID\tldl\n" + "".join(f"PERS{i:04d}\t1.{i}\n" for i in range(5)), encoding="utf-8")
    with pytest.raises(GateError, match=r"5 rows, exactly as many as the cohort's samples"):
        _export(tmp_path, _table([{}] * 5), ids_from=[fam, pheno])


def test_attack__a_per_person_table_of_the_pheno_files_people_is_refused(tmp_path: Path) -> None:
    """The pheno file names 7 people, 5 of them genotyped: a 7-row table is a table of people too."""
    fam = tmp_path / "c.fam"
    fam.write_text("".join(f"FAM{i} PERS{i:04d} 0 0 1 -9\n" for i in range(5)), encoding="utf-8")
    pheno = tmp_path / "c.pheno"
    pheno.write_text("#FID\tIID\tldl\n" + "".join(f"FAM{i}\tPERS{i:04d}\t1.{i}\n" for i in range(7)),
                     encoding="utf-8")
    with pytest.raises(GateError, match=r"7 rows, exactly as many as the cohort's samples"):
        _export(tmp_path, _table([{}] * 7), ids_from=[fam, pheno])


def test_attack__a_vcf_without_a_chrom_line_is_refused_not_skipped(tmp_path: Path) -> None:
    vcf = tmp_path / "broken.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n1\t100\trs1\tA\tG\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"broken\.vcf: no '#CHROM' header line"):
        _export(tmp_path, _table([{}, {}, {}]), ids_from=[vcf])


def test_attack__a_latin1_sample_file_still_forbids_its_accented_ids(tmp_path: Path) -> None:
    """A .fam written in Latin-1 (Windows tools): the ID Müller01 must still be found in UTF-8 output.

    Failed before the fix: the file was decoded as UTF-8 with replacement characters, so the
    forbidden string was 'M\\ufffdller01' and rsid 'rs_müller01' went out.
    """
    fam = tmp_path / "latin1.fam"
    fam.write_bytes("F1 M\u00fcller01 0 0 1 -9\nF2 Other0002 0 0 2 -9\n".encode("latin-1"))
    with pytest.raises(GateError, match=r"line 4, column rsid: holds a sample identifier"):
        _export(tmp_path, _table([{}, {}, {"rsid": "rs_m\u00fcller01"}]), ids_from=[fam])


def test_attack__a_sample_table_with_a_utf8_bom_reads_its_header_as_a_header(tmp_path: Path) -> None:
    """A BOM before '#FID IID' (Excel's UTF-8): the header is not a sample (a guard: this held before too)."""
    ids = tmp_path / "ids.tsv"
    ids.write_text("\ufeff#FID\tIID\n" + "".join(f"F{i}\tPERS{i:04d}\n" for i in range(5)), encoding="utf-8")
    with pytest.raises(GateError, match=r"5 rows, exactly as many as the cohort's samples"):
        _export(tmp_path, _table([{}] * 5), ids_from=[ids])


def test_attack__a_sample_table_with_a_utf8_bom_still_forbids_its_fids(tmp_path: Path) -> None:
    """With a BOM the first header field read '\\ufeff#FID', so the FID column was not found.

    Failed before 94913ad (which decodes with utf-8-sig): rsid = a FID went out.
    """
    ids = tmp_path / "ids.tsv"
    ids.write_text("\ufeff#FID\tIID\n" + "".join(f"FAMX{i:04d}\tPERS{i:04d}\n" for i in range(5)),
                   encoding="utf-8")
    with pytest.raises(GateError, match=r"line 2, column rsid: holds a sample identifier \(the FID"):
        _export(tmp_path, _table([{"rsid": "rs_famx0003"}, {}, {}]), ids_from=[ids])


def test_attack__a_psam_with_sid_beside_the_pheno_file_counts_each_person_once(tmp_path: Path) -> None:
    """The workflow passes the .psam and the pheno file: the same 5 people, with and without SID."""
    psam = tmp_path / "cohort.psam"
    psam.write_text("#FID\tIID\tSID\n" + "".join(f"F{i}\tPERS{i:04d}\tRUN{i:05d}\n" for i in range(5)))
    pheno = tmp_path / "pheno.tsv"
    pheno.write_text("#FID\tIID\tldl\n" + "".join(f"F{i}\tPERS{i:04d}\t1.{i}\n" for i in range(5)))
    with pytest.raises(GateError, match=r"5 rows, exactly as many as the cohort's samples"):
        _export(tmp_path, _table([{}] * 5), ids_from=[psam, pheno])


# ---------------------------------------------------------------- the bundle directory (guards: these held)


def test_guard__an_earlier_bundle_file_replaced_by_a_symlink_is_refused_and_its_target_kept(tmp_path: Path) -> None:
    from crosscohort.contract.errors import ConfigError

    out = _export(tmp_path, _table([{}, {}, {}]))
    mine = tmp_path / "my_notes.md"
    mine.write_bytes((out / "audit.md").read_bytes())  # same bytes: size and SHA-256 match the manifest
    (out / "audit.md").unlink()
    (out / "audit.md").symlink_to(mine)
    with pytest.raises(ConfigError, match=r"did not write.*audit\.md"):
        _export(tmp_path, _table([{}, {}, {}]))
    assert mine.is_file() and (out / "audit.md").is_symlink()


def test_guard__a_signing_key_inside_the_out_dir_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    from crosscohort.contract.errors import ConfigError
    from crosscohort.contract.signature import generate_keypair

    out = tmp_path / "exports" / "c1"
    out.mkdir(parents=True)
    key = out / "tre.key"
    generate_keypair(key, out / "tre.pub")
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(ConfigError, match=r"--out-dir holds .*tre\.key, an input of this export"):
        _export(tmp_path, _table([{}, {}, {}]), signing_key=key)
    assert sorted(p.name for p in out.iterdir()) == before
