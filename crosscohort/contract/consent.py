"""Consent: do a cohort's GA4GH Data Use Ontology (DUO) codes cover the study's purpose?

A cohort is usable when at least one of its *permission* codes covers the
purpose and none of its *modifier* codes forbids it:

Permissions
    ``NRES`` (DUO:0000004, no restriction) and ``GRU`` (DUO:0000042, general
    research use) cover any research, ancestry research included.
    ``HMB`` (DUO:0000006, health/medical/biomedical) covers disease and
    health research but not population origins or ancestry research.
    ``DS:<MONDO id>`` (DUO:0000007, disease-specific) covers only studies of
    that disease (exact MONDO id: the ontology's subclasses are not
    resolved here, so a sub-disease needs its own code) and no ancestry
    research. ``POA`` (DUO:0000011) covers population origins or ancestry
    research only.
Modifiers enforced
    ``NPOA`` (DUO:0000044) forbids ancestry research; ``NCU`` (DUO:0000046),
    ``NPU`` (DUO:0000045) and ``NPUNCU`` (DUO:0000018) forbid commercial use.
    ``GSO`` (DUO:0000016, genetic studies only) is met by a GWAS.
Modifiers noted, not enforced (they bind people and processes, not data flow)
    ``IRB``, ``GS``, ``PUB``, ``COL``, ``MOR``, ``TS``, ``US``, ``PS``, ``IS``,
    ``RTN``, ``RS``, ``NMDS``, ``CC``; also accepted with a ``-``/``:``
    suffix (e.g. ``GS-EU``, ``MOR:2026-01-01``).

References
----------
Lawson J. et al. (2021) The Data Use Ontology to streamline responsible
access to human biomedical datasets. Cell Genomics 1(2):100028.
https://github.com/EBISPOT/DUO
"""

from __future__ import annotations

import re

from crosscohort.contract.errors import ConfigError

__all__ = ["check_consent", "DUO_IDS"]

#: Abbreviation of each DUO term we understand, keyed by its CURIE.
DUO_IDS: dict[str, str] = {
    "DUO:0000004": "NRES",
    "DUO:0000042": "GRU",
    "DUO:0000006": "HMB",
    "DUO:0000007": "DS",
    "DUO:0000011": "POA",
    "DUO:0000044": "NPOA",
    "DUO:0000046": "NCU",
    "DUO:0000045": "NPU",
    "DUO:0000018": "NPUNCU",
    "DUO:0000016": "GSO",
    "DUO:0000021": "IRB",
    "DUO:0000022": "GS",
    "DUO:0000019": "PUB",
    "DUO:0000020": "COL",
    "DUO:0000024": "MOR",
    "DUO:0000025": "TS",
    "DUO:0000026": "US",
    "DUO:0000027": "PS",
    "DUO:0000028": "IS",
    "DUO:0000029": "RTN",
    "DUO:0000012": "RS",
    "DUO:0000015": "NMDS",
    "DUO:0000043": "CC",
}
_PERMISSIONS = {"NRES", "GRU", "HMB", "DS", "POA"}
_NOTED = {"IRB", "GS", "PUB", "COL", "MOR", "TS", "US", "PS", "IS", "RTN", "RS", "NMDS", "CC", "GSO"}
_NON_COMMERCIAL = {"NCU", "NPU", "NPUNCU"}
_MONDO = re.compile(r"^MONDO:\d{7}$")


def _parse(cohort: str, raw: str) -> tuple[str, str | None]:
    code = raw.strip()
    up = code.upper()
    if up.startswith("DUO:"):
        curie = up.split("-", 1)[0] if up.count(":") == 1 else ":".join(up.split(":")[:2])
        if curie not in DUO_IDS:
            raise ConfigError(f"cohort {cohort!r}: unknown DUO term {raw!r}")
        abbr = DUO_IDS[curie]
        rest = code[len(curie):].lstrip(":-") or None
        return abbr, rest
    if up.startswith("DS"):
        rest = code[2:].lstrip(":-")
        return "DS", rest or None
    head = re.split(r"[-:]", up, maxsplit=1)[0]
    if head in set(DUO_IDS.values()):
        return head, None
    raise ConfigError(
        f"cohort {cohort!r}: unknown DUO code {raw!r}; expected e.g. GRU, HMB, DS:MONDO:0005010, NPOA, NCU, NPU, IRB"
    )


def _study(purpose: dict) -> str:
    parts = [f"disease {purpose['disease']}" if purpose.get("disease") else "no specific disease"]
    if purpose.get("ancestry_research"):
        parts.append("ancestry research")
    if purpose.get("commercial"):
        parts.append("commercial")
    return ", ".join(parts)


def check_consent(cohort: str, duo_codes: list[str], purpose: dict) -> None:
    """Return quietly when ``duo_codes`` permit ``purpose``; otherwise raise.

    Parameters
    ----------
    cohort
        Cohort id, named in the message.
    duo_codes
        The cohort's DUO codes: abbreviations (``GRU``, ``HMB``,
        ``DS:MONDO:0005010``, ``NPOA``, ``NCU``...) or CURIEs (``DUO:0000042``;
        disease-specific as ``DUO:0000007:MONDO:0005010``).
    purpose
        ``{"disease": "MONDO:0005010" or None, "ancestry_research": bool,
        "commercial": bool}``.

    Raises
    ------
    ConfigError
        Naming the cohort, the code and the reason: no permission code
        covers the purpose, a modifier forbids it, or a code is unknown.
    """
    unknown = set(purpose) - {"disease", "ancestry_research", "commercial"}
    if unknown:
        raise ConfigError(f"study purpose has unknown key(s) {sorted(unknown)}; "
                          "expected disease, ancestry_research, commercial")
    disease = purpose.get("disease")
    if disease is not None and not _MONDO.match(str(disease)):
        raise ConfigError(f"study purpose disease must be a MONDO id like MONDO:0005010; got {disease!r}")
    ancestry = bool(purpose.get("ancestry_research", False))
    commercial = bool(purpose.get("commercial", False))
    parsed = [(raw, *_parse(cohort, raw)) for raw in duo_codes]

    for raw, abbr, _ in parsed:
        if abbr == "NPOA" and ancestry:
            raise ConfigError(
                f"cohort {cohort!r}: consent code {raw} prohibits population origins or ancestry "
                "research, and this study does ancestry research; exclude the cohort from it"
            )
        if abbr in _NON_COMMERCIAL and commercial:
            raise ConfigError(
                f"cohort {cohort!r}: consent code {raw} restricts use to non-commercial "
                "(not-for-profit) research, and this study is commercial; exclude the cohort from it"
            )

    perms = [(raw, abbr, rest) for raw, abbr, rest in parsed if abbr in _PERMISSIONS]
    if not perms:
        raise ConfigError(
            f"cohort {cohort!r}: codes {list(duo_codes)} hold no DUO permission (NRES, GRU, HMB, DS, POA); "
            "consent cannot be established"
        )
    reasons = []
    for raw, abbr, rest in perms:
        if abbr in ("NRES", "GRU"):
            return
        if abbr == "HMB":
            if not ancestry:
                return
            reasons.append(f"{raw}: health/medical/biomedical use excludes population origins or ancestry research")
        elif abbr == "DS":
            if rest is None or not _MONDO.match(rest.upper()):
                raise ConfigError(f"cohort {cohort!r}: disease-specific code {raw!r} must name a MONDO id, "
                                  "e.g. DS:MONDO:0005010")
            if disease is not None and rest.upper() == str(disease).upper() and not ancestry:
                return
            if ancestry:
                reasons.append(f"{raw}: disease-specific use excludes ancestry research")
            else:
                reasons.append(
                    f"{raw}: use restricted to studies of {rest.upper()}, but the study is of "
                    f"{disease or 'no specific disease'}"
                )
        elif abbr == "POA":
            if ancestry:
                return
            reasons.append(f"{raw}: use restricted to population origins or ancestry research")
    raise ConfigError(
        f"cohort {cohort!r}: consent does not cover this study ({_study(purpose)}): " + "; ".join(reasons)
    )
