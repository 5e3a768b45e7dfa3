"""report.html without a browser: structure, escaping, self-containment, chart contents."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from report_builders import build_report

from chaosrunner.report.chart import ChartInput, downsample, render_chart, split_segments
from chaosrunner.report.html import journal_excerpt, render_html
from chaosrunner.report.model import RunReport, Sample
from chaosrunner.report.severity import classify_impact

XSS = "<script>alert(1)</script>"


class Elements(HTMLParser):
    """Collects tags with attributes, and text, the way a browser tokenises them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Elements:
    parser = Elements()
    parser.feed(page)
    parser.close()
    return parser


def render(report: RunReport) -> str:
    return render_html(report, classify_impact(report))


def test_verdict_and_hypothesis_come_first() -> None:
    text = " ".join(parse(render(build_report("aborted"))).text)
    assert text.index("ABORTED") < text.index("Hypothesis:") < text.index("SLI timelines")
    assert "System should handle 500ms latency gracefully" in text


def test_every_user_string_is_escaped() -> None:
    report = build_report("aborted", hypothesis=XSS, title=f'"><svg onload=alert(2)>{XSS}')
    report.experiment = f"x{XSS}"
    report.faults[0].name = f"f{XSS}"
    report.faults[0].targets = [XSS]
    report.criteria[0].detail = XSS
    assert report.abort is not None
    report.abort.reason = XSS
    report.events.append({"event": XSS, "time": report.started_at, "data": XSS})
    page = render(report)
    elements = parse(page)
    assert [tag for tag, _ in elements.tags if tag == "script"] == []
    assert not any(name.startswith("on") for _, attrs in elements.tags for name in attrs)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "".join(elements.text).count(XSS) >= 7  # shown as text, everywhere it appears


def test_self_contained_no_external_references() -> None:
    page = render(build_report("passed"))
    elements = parse(page)
    urls = [value for _, attrs in elements.tags for name, value in attrs.items()
            if name in ("src", "href", "action", "data") and value]
    assert urls == []
    assert "@import" not in page and "url(" not in page
    assert re.search(r"https?://(?!www\.w3\.org/2000/svg)", page) is None
    csp = [attrs.get("content") for tag, attrs in elements.tags
           if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in (csp[0] or "")


def test_one_chart_per_slo_with_target_faults_abort_gaps() -> None:
    page = render(build_report("aborted"))
    charts = re.findall(r"<svg class=\"chart\".*?</svg>", page, re.S)
    assert len(charts) == 2
    probe = charts[0]
    assert 'class="target"' in probe and "target &gt;= 99%" in probe
    assert probe.count('class="fault"') == 1 and "slow-payments" in probe
    assert probe.count('class="abort"') == 1
    assert 'class="nodata"' in probe  # three seconds without data in the fault phase
    assert probe.count('<polyline class="series"') == 2  # the gap breaks the line
    assert 'class="bad"' in probe


def test_fault_window_position_matches_inject_and_revert_times() -> None:
    report = build_report("passed")  # fault from t=30.05 to t=150.3 of a 180.6 s run
    svg = render_chart(ChartInput("checkout_probe", report.slos[0],
                                  [s for s in report.samples if s.slo == "checkout_probe"],
                                  faults=[], t_end=200.0))
    assert 'class="fault"' not in svg
    page = render(report)
    match = re.search(r'<rect class="fault" x="([\d.]+)" y="\d+" width="([\d.]+)"', page)
    assert match is not None
    x, width = float(match.group(1)), float(match.group(2))
    plot_left, plot_width, t_max = 70, 900 - 70 - 12, 180.6
    assert abs(x - (plot_left + plot_width * 30.05 / t_max)) < 1
    assert abs(width - plot_width * (150.3 - 30.05) / t_max) < 1


def test_unreverted_fault_is_drawn_open_to_the_end() -> None:
    page = render(build_report("rollback_incomplete"))
    assert 'class="fault open"' in page and "NOT REVERTED" in page


def test_criteria_budget_faults_and_collapsed_journal_are_present() -> None:
    report = build_report("failed")
    page = render(report)
    text = " ".join(parse(page).text)
    assert "checkout_probe >= 99%" in text and "93.333%" in text and "FAIL" in text
    assert "Error budget" in text and "Faults" in text and "toxiproxy.latency" in text
    assert re.search(r"<details><summary>\d+ events</summary>", page)
    assert page.count("<tr><td>") >= len(report.events)


def test_downsample_keeps_spikes_and_bounds_points() -> None:
    points = [(float(t), 1.0) for t in range(3600)]
    points[1234] = (1234.0, 0.0)  # a one-second outage
    kept = downsample(points, 1000)
    assert len(kept) <= 1000
    assert (1234.0, 0.0) in kept
    assert [t for t, _ in kept] == sorted(t for t, _ in kept)
    assert downsample(points[:10], 1000) == points[:10]


def test_big_run_chart_stays_within_the_point_budget() -> None:
    samples = [Sample(time="", t=float(t), phase="faults", slo="s",
                      value=0.2 if t == 2000 else 0.999, good=t != 2000)
               for t in range(3600)]
    svg = render_chart(ChartInput("s", None, samples))
    coords = re.findall(r'points="([^"]+)"', svg)
    assert len(coords) == 1 and len(coords[0].split()) <= 1000
    ys = sorted(float(pair.split(",")[1]) for pair in coords[0].split())
    assert ys[-1] > 180 and ys[-2] < 40  # the one-sample spike to 0.2 reaches the bottom


def test_gaps_split_the_line_where_data_is_missing() -> None:
    values = [1.0, 1.0, None, None, 1.0, None]
    samples = [Sample(time="", t=float(i), phase="faults", slo="s", value=v,
                      good=None if v is None else True) for i, v in enumerate(values)]
    segments, gaps = split_segments(samples)
    assert segments == [[(0.0, 1.0), (1.0, 1.0)], [(4.0, 1.0)]]
    assert [(g.start, g.end) for g in gaps] == [(1.0, 4.0), (4.0, 5.0)]


def test_chart_without_samples_says_no_data() -> None:
    report = build_report("not_started")
    report.samples = []
    page = render(report)
    assert page.count('class="chart"') == 2 and ">no data</text>" in page


def test_long_journals_keep_every_non_sample_event() -> None:
    events = [{"event": "sample", "t": i} for i in range(5000)]
    events.insert(10, {"event": "inject", "fault": "f"})
    events.append({"event": "verdict", "message": "failed"})
    shown = journal_excerpt(events, limit=100)
    assert shown == [{"event": "inject", "fault": "f"}, {"event": "verdict", "message": "failed"}]
    many = [{"event": "phase", "n": i} for i in range(300)]
    cut = journal_excerpt(many, limit=100)
    assert len(cut) == 100 and cut[0]["n"] == 0 and cut[-1]["n"] == 299
    assert journal_excerpt(events[:50], limit=100) == events[:50]
