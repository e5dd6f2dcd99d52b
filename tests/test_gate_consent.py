"""Consent: GA4GH DUO codes against the study purpose."""

from __future__ import annotations

import pytest

from crosscohort.contract.consent import check_consent
from crosscohort.contract.errors import ConfigError

T2D = "MONDO:0005148"
CAD = "MONDO:0005010"


def _purpose(disease=None, ancestry=False, commercial=False) -> dict:
    return {"disease": disease, "ancestry_research": ancestry, "commercial": commercial}


def test_consent__disease_specific_cohort_used_for_another_disease_is_refused() -> None:
    with pytest.raises(ConfigError, match=rf"cohort 'ukb'.*DS:{T2D}: use restricted to studies of {T2D}, "
                                          rf"but the study is of {CAD}"):
        check_consent("ukb", [f"DS:{T2D}"], _purpose(CAD))


@pytest.mark.parametrize("code, reason", [
    ("HMB", "excludes population origins or ancestry research"),
    ("NPOA", "prohibits population origins or ancestry research"),
])
def test_consent__hmb_or_npoa_used_for_ancestry_research_is_refused(code: str, reason: str) -> None:
    codes = [code] if code == "HMB" else ["GRU", code]
    with pytest.raises(ConfigError, match=rf"cohort 'aou'.*{code}.*{reason}"):
        check_consent("aou", codes, _purpose(CAD, ancestry=True))


@pytest.mark.parametrize("code", ["NCU", "NPU", "DUO:0000046"])
def test_consent__commercial_study_on_non_commercial_data_is_refused(code: str) -> None:
    with pytest.raises(ConfigError, match=rf"cohort 'finn'.*{code} restricts use to non-commercial"):
        check_consent("finn", ["GRU", code], _purpose(commercial=True))


@pytest.mark.parametrize("codes, purpose", [
    (["GRU"], _purpose(ancestry=True, commercial=True)),
    (["HMB", "IRB", "PUB"], _purpose(CAD)),
    ([f"DS:{CAD}", "NCU", "GS-EU"], _purpose(CAD)),
    (["DUO:0000007:" + CAD], _purpose(CAD)),
    (["POA", "NPU"], _purpose(ancestry=True)),
    (["NRES"], _purpose(T2D, ancestry=True, commercial=True)),
])
def test_consent__covering_codes_pass(codes: list[str], purpose: dict) -> None:
    assert check_consent("c", codes, purpose) is None


def test_consent__no_permission_code_or_unknown_code_is_refused() -> None:
    with pytest.raises(ConfigError, match="hold no DUO permission"):
        check_consent("c", ["IRB", "NCU"], _purpose(CAD))
    with pytest.raises(ConfigError, match="unknown DUO code 'XYZ'"):
        check_consent("c", ["GRU", "XYZ"], _purpose(CAD))
    with pytest.raises(ConfigError, match="must name a MONDO id"):
        check_consent("c", ["DS"], _purpose(CAD))
