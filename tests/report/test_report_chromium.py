"""report.html in a real browser: Debian's headless Chromium over the DevTools protocol.

Checks that the page loads with no script or console errors and no network requests, that
every SLO chart is laid out with a real size and a drawn line, that user text shows as text,
and that a screenshot of a chart is not blank.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from chromium_cdp import Chromium
from png_pixels import read_png
from report_builders import build_report
from services import need

from chaosrunner.report.writer import write_reports

pytestmark = [pytest.mark.chromium, pytest.mark.slow]

XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"

MEASURE = """JSON.stringify({
  charts: [...document.querySelectorAll('svg.chart')].map(svg => {
    const box = svg.getBoundingClientRect();
    const lines = [...svg.querySelectorAll('polyline.series')].map(l => l.getBBox());
    return {width: box.width, height: box.height,
            lineWidth: lines.reduce((sum, b) => sum + b.width, 0),
            lineHeight: Math.max(0, ...lines.map(b => b.height)),
            faults: svg.querySelectorAll('rect.fault').length,
            aborts: svg.querySelectorAll('line.abort').length};
  }),
  scripts: document.scripts.length,
  hypothesis: document.querySelector('.hypothesis').textContent,
  verdict: document.querySelector('.verdict').textContent,
  journalOpen: document.querySelector('details').open,
})"""

BLUE = (9, 105, 218)  # the SLI line colour in the page's style


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    need("chromium", shutil.which("chromium") is not None,
         "install Debian's chromium (apt-get install -y chromium)")
    with Chromium() as chromium:
        yield chromium


def test_report_renders_without_errors_and_shows_the_charts(
        browser: Chromium, tmp_path: Path) -> None:
    report = build_report("aborted", hypothesis=XSS)
    write_reports(report, tmp_path)
    page = tmp_path / "report.html"
    result = browser.load(page, MEASURE, screenshot_of="svg.chart")
    assert result.errors == []
    assert result.requests == [page.resolve().as_uri()]  # nothing fetched but the file
    facts = json.loads(result.value)
    assert facts["scripts"] == 0
    assert facts["verdict"] == "ABORTED"
    assert XSS in facts["hypothesis"]  # shown as text, not run
    assert facts["journalOpen"] is False
    assert len(facts["charts"]) == len(report.slos) == 2
    for chart in facts["charts"]:
        assert chart["width"] > 300 and chart["height"] > 80
        assert chart["lineWidth"] > 100 and chart["lineHeight"] > 10
        assert chart["faults"] == 1 and chart["aborts"] == 1
    image = read_png(result.screenshot)
    assert image.width > 300 and image.height > 80
    colours = image.colours()
    assert len(colours) > 20, "the chart screenshot is blank"
    assert any(sum(abs(a - b) for a, b in zip(colour, BLUE, strict=True)) < 60
               for colour in colours), "the SLI line is not visible in the screenshot"


def test_big_report_renders(browser: Chromium, tmp_path: Path) -> None:
    """A one-hour run sampled every second: 3,600 samples for each of two SLOs."""
    write_reports(build_report("failed", before=300, duration=3000, after=300), tmp_path)
    result = browser.load(tmp_path / "report.html", MEASURE)
    assert result.errors == []
    charts = json.loads(result.value)["charts"]
    assert len(charts) == 2 and all(c["lineWidth"] > 100 for c in charts)


def test_the_checker_catches_script_errors_and_fetches(browser: Chromium,
                                                      tmp_path: Path) -> None:
    """The checks above can fail: a page with a script error and a fetch is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>undefinedFunction()</script>"
                   '<img src="http://127.0.0.1:9/pixel.png"></body></html>')
    result = browser.load(bad)
    assert any("undefinedFunction" in error for error in result.errors)
    assert "http://127.0.0.1:9/pixel.png" in result.requests
