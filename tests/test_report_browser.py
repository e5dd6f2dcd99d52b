"""The report opened as a person would: headless Chromium, no network, checked over the DevTools protocol.

The browser is Debian's ``chromium`` driven through ``--remote-debugging-pipe``
(NUL-separated JSON on file descriptors 3 and 4), so no driver package and
no browser download is needed. Each page is checked for console errors and
uncaught exceptions, every ``<img>`` decoded with a non-zero natural size,
and the expected sections and tables; a full-page screenshot is written to
``test-artifacts/report-<trait>.png`` for CI to keep.

Pages: a report built here from small synthetic inputs (the fixture of
tests/test_report.py, with a comparison written by ``crosscohort compare``);
the demo's own reports are opened the same way by tests/test_workflow.py.
"""

from __future__ import annotations

import base64
import json
import os
import select
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from crosscohort.central.report import SECTION_IDS
from crosscohort.cli import main
from tests.conftest import require_tool
from tests.test_report import COHORTS, PLANTED, TRAIT
from tests.test_report import inputs as report_inputs  # noqa: F401  (module fixture reused)

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
#: Tables every full report has (figure ids).
EXPECTED_TABLES = ("summary-cohorts", "summary-stages", "meta-loci", "meta-lambda", "meta-heterogeneity",
                   "comparison-agreement", "comparison-concordance", "comparison-lambda")

_PAGE_JS = """JSON.stringify({
  images: Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete,
                                                  w: i.naturalWidth, h: i.naturalHeight})),
  sections: Array.from(document.querySelectorAll('section[id]')).map(s => s.id),
  tables: Array.from(document.querySelectorAll('figure.table[id]')).map(f => ({
      id: f.id, rows: f.querySelectorAll('tbody tr').length})),
  scripts: document.scripts.length,
  height: document.documentElement.scrollHeight,
})"""


class Chromium:
    """A headless Chromium spoken to over ``--remote-debugging-pipe``."""

    def __init__(self, exe: str, profile: Path):
        self._to_r, self._to_w = os.pipe()
        self._from_r, self._from_w = os.pipe()
        to_r, from_w = self._to_r, self._from_w

        def wire() -> None:  # in the child: the protocol's fixed descriptors 3 (in) and 4 (out)
            os.dup2(to_r, 3)
            os.dup2(from_w, 4)

        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={profile}",
             "--remote-debugging-pipe", "about:blank"],
            pass_fds=(3, 4, to_r, from_w), preexec_fn=wire, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_r)
        os.close(from_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._read(deadline)
            if m.get("id") == self._id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method: str, timeout: float = 30.0) -> dict:
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            m = self._read(deadline)
            if m.get("method") == method:
                return m
            self.events.append(m)

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_r], [], [], left)[0]:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self._from_r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_w)
        os.close(self._from_r)


def open_report(exe: str, html: Path, screenshot: Path) -> dict:
    """Load ``html`` in a fresh headless Chromium; return page facts, errors and write a screenshot."""
    with tempfile.TemporaryDirectory() as profile:
        b = Chromium(exe, Path(profile))
        try:
            target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            sid = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                b.send(f"{domain}.enable", session=sid)
            b.send("Emulation.setDeviceMetricsOverride",
                   {"width": 1300, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=sid)
            b.send("Page.navigate", {"url": html.resolve().as_uri()}, session=sid)
            b.wait_event("Page.loadEventFired", timeout=60)
            facts = json.loads(b.send("Runtime.evaluate", {"expression": _PAGE_JS, "returnByValue": True},
                                      session=sid)["result"]["value"])
            # Full page, capped so a long report stays a reasonable artefact.
            height = min(int(facts["height"]), 16000)
            shot = b.send("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": 1300, "height": height, "scale": 1}}, session=sid, timeout=60)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            errors = []
            for e in b.events:
                m, p = e.get("method"), e.get("params", {})
                if m == "Runtime.exceptionThrown":
                    errors.append(p["exceptionDetails"].get("text", "exception"))
                elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                    errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
                elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
                    errors.append(f"{p['entry'].get('source')}: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            facts["errors"] = errors
            return facts
        finally:
            b.close()


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_tool("chromium", "chromium-browser")


def _check(facts: dict, *, tables: tuple[str, ...]) -> None:
    assert facts["errors"] == []
    assert facts["images"], "no image on the page"
    bad = [i for i in facts["images"] if not (i["complete"] and i["w"] > 0 and i["h"] > 0)]
    assert bad == [], bad
    assert list(SECTION_IDS) == [s for s in facts["sections"] if s in SECTION_IDS]
    present = {t["id"]: t["rows"] for t in facts["tables"]}
    missing = [t for t in tables if t not in present]
    assert missing == [], (missing, sorted(present))


@pytest.fixture(scope="module")
def synthetic_report(report_inputs, tmp_path_factory) -> Path:  # noqa: F811
    """The test_report inputs plus a comparison written by ``crosscohort compare``."""
    d: Path = report_inputs["dir"]
    out_dir = tmp_path_factory.mktemp("browser")
    cohort_args = [f"{c}={d / 'harmonised' / f'{c}.tsv.gz'}" for c in COHORTS]
    assert main(["compare", "--meta", str(d / "meta" / f"{TRAIT}.tsv.gz"), "--pooled", str(d / "pooled.tsv.gz"),
                 "--cohort", *cohort_args, "--out-prefix", str(out_dir / "cmp")]) == 0
    argv = list(report_inputs["argv"])
    for flag, value in (("--compare", out_dir / "cmp.json"), ("--compare-table", out_dir / "cmp.tsv")):
        argv[argv.index(flag) + 1] = str(value)
    out = out_dir / f"{TRAIT}.html"
    argv[argv.index("--out") + 1] = str(out)
    assert main([*argv, "--compare-loci", str(out_dir / "cmp.loci.tsv")]) == 0
    return out


def test_report_browser__synthetic_report_renders_without_errors(chromium, synthetic_report):
    facts = open_report(chromium, synthetic_report, ARTIFACTS / f"report-{TRAIT}.png")
    _check(facts, tables=EXPECTED_TABLES)
    # meta 2 + pooled 2 + β-β 1 + cohorts 3 x 5 + forests + Miami, tiles, p scatter
    assert len(facts["images"]) == 2 + 2 + 1 + 3 * 5 + len(PLANTED) + 3
    assert facts["scripts"] == 0
    png = (ARTIFACTS / f"report-{TRAIT}.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
