"""The self-contained HTML report of one trait: run summary, plots, loci, comparison, ledgers, audits."""

from crosscohort.central.report.build import SECTION_IDS, ReportError, build_report, format_p

__all__ = ["SECTION_IDS", "ReportError", "build_report", "format_p"]
