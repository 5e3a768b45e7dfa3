"""Time and size of report.html for a one-hour run sampled every second (3,600 samples x 5
SLOs), and how fast Chromium renders it when chromium is installed.

    .venv/bin/python bench/report_bench.py [--repeat 5]

Prints medians. The baseline in the same run is a three-minute report (180 samples x 5 SLOs),
so a slow machine shows up in both numbers rather than as a regression.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "report"))

from chromium_cdp import Chromium, chromium_path  # noqa: E402
from report_builders import build_report, latency_slo, probe_slo  # noqa: E402

from chaosrunner.report.html import render_html  # noqa: E402
from chaosrunner.report.model import RunReport  # noqa: E402
from chaosrunner.report.severity import classify_impact  # noqa: E402
from chaosrunner.report.writer import write_reports  # noqa: E402

PAINT = """JSON.stringify({
  load: performance.timing.loadEventEnd - performance.timing.navigationStart,
  charts: document.querySelectorAll('svg.chart').length})"""


def five_slos() -> list:  # type: ignore[type-arg]
    return [probe_slo("checkout_probe"), latency_slo("checkout_p99"),
            probe_slo("api_availability"), latency_slo("api_latency"),
            probe_slo("payments_probe")]


def run_report(seconds: int) -> RunReport:
    """A finished run of about `seconds` seconds sampled every second, with an abort-free
    failed verdict so every section (criteria, budget, post-mortem) is filled."""
    before = after = seconds // 12
    return build_report("failed", before=before, duration=seconds - before - after,
                        after=after, slos=five_slos())


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def measure_python(report: RunReport, repeat: int, workdir: Path) -> dict[str, float]:
    impact = classify_impact(report)
    html = render_html(report, impact)
    return {
        "samples": len(report.samples),
        "render_html_s": median_seconds(lambda: render_html(report, impact), repeat),
        "write_reports_s": median_seconds(lambda: write_reports(report, workdir), repeat),
        "html_bytes": len(html.encode()),
        "report_json_bytes": (workdir / "report.json").stat().st_size,
    }


def measure_chromium(page: Path, repeat: int) -> dict[str, float]:
    loads, painted, cold = [], [], []
    for index in range(repeat):
        started = time.perf_counter()
        with Chromium() as browser:
            result = browser.load(page, PAINT)
            cold.append(time.perf_counter() - started)
            data = json.loads(result.value)
            assert result.errors == [] and data["charts"] == 5, (result.errors, data)
            if index == 0:  # warm loads in the same browser
                for _ in range(repeat):
                    warm = browser.load(page, PAINT)
                    warm_data = json.loads(warm.value)
                    loads.append(warm_data["load"] / 1000)
                    painted.append(warm.painted_seconds)
    # load event: parse + style + layout of the page by the browser's own clock;
    # painted: from navigate until a screenshot of the rendered page came back.
    return {"chromium_load_event_s": statistics.median(loads),
            "chromium_load_and_paint_s": statistics.median(painted),
            "chromium_cold_start_and_load_s": statistics.median(cold)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = {}
        for label, seconds in (("baseline 3 min x 5 SLOs", 180), ("1 h x 5 SLOs", 3600)):
            workdir = Path(tmp) / str(seconds)
            report = run_report(seconds)
            figures = measure_python(report, args.repeat, workdir)
            if chromium_path() is not None:
                figures.update(measure_chromium(workdir / "report.html", args.repeat))
            rows[label] = figures
    for label, figures in rows.items():
        print(f"{label}:")
        for name, value in figures.items():
            shown = f"{value / 1024:.0f} KiB" if name.endswith("bytes") else (
                f"{value:.0f}" if name == "samples" else f"{value * 1000:.0f} ms")
            print(f"  {name:32s} {shown}")
    if chromium_path() is None:
        print("chromium not installed: browser figures skipped")
    print(f"(medians of {args.repeat})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
