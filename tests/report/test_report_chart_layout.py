"""Issue 12.14, the HTML timeline: a fault on several targets is one band with a count,
labels never overlap (measured in a real browser), code cells never break inside a word."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from chromium_cdp import Chromium
from report_builders import build_report, iso
from services import need

from chaosrunner.report.html import render_html
from chaosrunner.report.model import FaultRecord, RunReport
from chaosrunner.report.severity import classify_impact
from chaosrunner.report.writer import write_reports

LAYOUT = """JSON.stringify({
  charts: [...document.querySelectorAll('svg.chart')].map(svg => ({
    bands: [...svg.querySelectorAll('rect.fault')].map(r => r.textContent),
    labels: [...svg.querySelectorAll('text')].map(t => {
      const b = t.getBBox(); return {text: t.textContent, x: b.x, y: b.y, w: b.width,
                                     h: b.height};
    }),
  })),
  words: [...document.querySelectorAll('code')].filter(c => !/[\\s\\/]/.test(c.textContent))
    .map(c => ({text: c.textContent, lines: c.getClientRects().length})),
})"""


def crowded() -> RunReport:
    """Four targets of one fault injected a moment apart, then three more faults starting
    within seconds of each other, long names, an abort: labels that would collide."""
    report = build_report("aborted")
    first = report.faults[0]
    first.targets = ["payments-1"]
    for index in range(2, 5):
        report.faults.append(FaultRecord(
            name=first.name, action=first.action, targets=[f"payments-{index}"],
            injected_at=iso(30.05 + index * 0.02), reverted_at=iso(50.3)))
    for index, name in enumerate(("freeze-the-payments-database-primary",
                                  "drop-half-of-the-inventory-traffic", "kill-a-cache-node")):
        report.faults.append(FaultRecord(
            name=name, action="process.pause", targets=[f"pid {100 + index}"],
            injected_at=iso(31 + index), reverted_at=iso(45)))
    report.run_id = "payments-latency-with-a-very-long-run-identifier-20240514T100000Z"
    return report


def test_one_band_per_fault_with_its_count() -> None:
    page = render_html(crowded(), classify_impact(crowded()))
    chart = page[page.index('<figure id="chart-checkout_probe"'):]
    chart = chart[:chart.index("</figure>")]
    assert chart.count('<rect class="fault') == 4
    assert "slow-payments ×4" in chart


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    need("chromium", shutil.which("chromium") is not None,
         "install Debian's chromium (apt-get install -y chromium)")
    with Chromium(width=700) as chromium:
        yield chromium


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (a["x"] < b["x"] + b["w"] - 0.5 and b["x"] < a["x"] + a["w"] - 0.5
            and a["y"] < b["y"] + b["h"] - 0.5 and b["y"] < a["y"] + a["h"] - 0.5)


@pytest.mark.chromium
@pytest.mark.parametrize("verdict", ["aborted", "crowded", "passed", "rollback_incomplete"])
def test_labels_never_overlap_and_words_stay_whole(browser: Chromium, tmp_path: Path,
                                                   verdict: str) -> None:
    report = crowded() if verdict == "crowded" else build_report(verdict)
    write_reports(report, tmp_path)
    result = browser.load(tmp_path / "report.html", LAYOUT)
    assert result.errors == []
    facts = json.loads(result.value)
    assert facts["charts"], "the page has charts"
    for chart in facts["charts"]:
        labels = [label for label in chart["labels"] if label["w"] > 0]
        assert labels, "the chart has visible labels"
        for i, first in enumerate(labels):
            for second in labels[i + 1:]:
                assert not overlap(first, second), (first, second)
    assert facts["words"], "the page has code cells"
    for word in facts["words"]:
        assert word["lines"] == 1, word
