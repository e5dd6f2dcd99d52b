"""The export gate: the only door out of a TRE.

It turns one cohort's association results (files on disk) into the export
bundle of ``docs/architecture.md``: row rules (:mod:`.rules`), an identifier
scan of everything written (:mod:`.identifiers`), the bundle with metadata,
audit and manifest (:mod:`.bundle`). Consent checks on DUO codes live in
:mod:`.consent`.
"""

from crosscohort.contract.consent import check_consent
from crosscohort.contract.release import (
    RULE_ORDER,
    GateResult,
    GateRules,
    apply_gate,
    released_violations,
)
from crosscohort.tre.gate.bundle import (
    ALLOWED_SUFFIXES,
    MANIFEST,
    ExportResult,
    export_bundle,
    file_digest,
)
from crosscohort.tre.gate.identifiers import GateBlock, SampleIds, read_sample_ids, scan_released

__all__ = [
    "ALLOWED_SUFFIXES",
    "MANIFEST",
    "RULE_ORDER",
    "ExportResult",
    "GateBlock",
    "GateResult",
    "GateRules",
    "SampleIds",
    "apply_gate",
    "check_consent",
    "export_bundle",
    "file_digest",
    "read_sample_ids",
    "released_violations",
    "scan_released",
]
