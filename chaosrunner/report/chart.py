"""Inline SVG timeline of one SLO: values over time, the target, fault windows, the abort.

Hand-written SVG keeps `report.html` one self-contained file with no plotting dependency.
Long runs are downsampled per chart with min/max preservation (each bucket keeps its lowest
and highest sample), so a one-second spike in a one-hour run is still drawn. Samples
without data break the line and are marked as a grey band; samples that missed the SLO
are marked in a red strip along the bottom.

Every string that reaches the SVG goes through `html.escape`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from chaosrunner.report import facts
from chaosrunner.report.model import Sample, SLOInfo
from chaosrunner.spec.units import shorten_middle

Point = tuple[float, float]
Box = tuple[float, float, float, float]  # x0, y0, x1, y1
Spot = tuple[float, float, str]  # x, baseline y, text-anchor
MAX_POINTS = 1000
# An 11 px sans-serif label, measured in Chromium at about 5.6 px a character; estimated
# wider, with room above the baseline and below it, so estimated boxes hold the real ones.
CHAR_WIDTH = 7.0
ASCENT, DESCENT = 11.0, 4.0


def _box(text: str, x: float, y: float, anchor: str) -> Box:
    width = CHAR_WIDTH * len(text) + 2
    x0 = x - width if anchor == "end" else x - width / 2 if anchor == "middle" else x
    return (x0, y - ASCENT, x0 + width, y + DESCENT)


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@dataclass(frozen=True)
class Window:
    """A stretch of the time axis to mark: a fault in place, or a run of missing data."""

    start: float
    end: float | None  # None: still open at the end of the run (a fault never reverted)
    label: str = ""


@dataclass(frozen=True)
class ChartInput:
    """Everything one chart shows; `t` values are seconds since the run started."""

    slo: str
    info: SLOInfo | None
    samples: Sequence[Sample]
    faults: Sequence[Window] = ()
    phases: Sequence[tuple[str, float, float | None]] = ()  # name, start, end
    abort_at: float | None = None
    t_end: float | None = None
    max_points: int = MAX_POINTS


@dataclass
class _Frame:
    """Maps data to pixels inside the plot area."""

    t_max: float
    y_min: float
    y_max: float
    width: int = 900
    height: int = 240
    left: int = 70
    right: int = 12
    top: int = 22
    bottom: int = 30
    parts: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # labels, drawn last, on top
    boxes: list[Box] = field(default_factory=list)  # where labels already are

    def label(self, text: str, css: str, spots: Sequence[Spot], force: bool = False) -> bool:
        """Put `text` at the first of `spots` (x, baseline y, anchor) where it overlaps no
        label already placed and stays inside the drawing; False (not drawn) if none is
        free. `force` places it at the first spot regardless (the axes' ticks)."""
        for x, y, anchor in spots:
            box = _box(text, x, y, anchor)
            inside = box[0] >= 0 and box[2] <= self.width and box[1] >= 0 \
                and box[3] <= self.height
            if force or (inside and not any(_overlaps(box, other) for other in self.boxes)):
                self.boxes.append(box)
                anchor_attr = "" if anchor == "start" else f' text-anchor="{anchor}"'
                self.texts.append(f'<text class="{css}" x="{x:.1f}" y="{y:.1f}"{anchor_attr}>'
                                  f"{escape(text)}</text>")
                return True
        return False

    @property
    def plot_bottom(self) -> float:
        return float(self.height - self.bottom)

    def x(self, t: float) -> float:
        span = self.width - self.left - self.right
        return self.left + span * min(max(t, 0.0), self.t_max) / self.t_max

    def y(self, value: float) -> float:
        span = self.height - self.top - self.bottom
        clamped = min(max(value, self.y_min), self.y_max)
        return self.top + span * (self.y_max - clamped) / (self.y_max - self.y_min)


def downsample(points: Sequence[Point], max_points: int) -> list[Point]:
    """At most about `max_points` points; each bucket keeps its min and max, in time order.

    >>> downsample([(0, 1), (1, 9), (2, 1), (3, 1)], 2)
    [(0, 1), (1, 9)]
    """
    if len(points) <= max_points:
        return list(points)
    buckets = max(1, max_points // 2)
    kept: list[Point] = []
    for index in range(buckets):
        chunk = points[index * len(points) // buckets:(index + 1) * len(points) // buckets]
        if not chunk:
            continue
        low = min(range(len(chunk)), key=lambda i: chunk[i][1])
        high = max(range(len(chunk)), key=lambda i: chunk[i][1])
        kept += [chunk[i] for i in sorted({low, high})]
    return kept


def split_segments(samples: Sequence[Sample]) -> tuple[list[list[Point]], list[Window]]:
    """Runs of samples with data (the line's pieces) and the gaps without data between them.

    A gap spans from the last sample with data before it to the first one after it, which is
    exactly where the line is broken.
    """
    segments: list[list[Point]] = []
    gaps: list[Window] = []
    current: list[Point] = []
    gap_start: float | None = None
    for index, sample in enumerate(samples):
        if sample.value is None or not math.isfinite(sample.value):
            if gap_start is None:
                gap_start = samples[index - 1].t if index else sample.t
                if current:
                    segments.append(current)
                    current = []
            continue
        if gap_start is not None:
            gaps.append(Window(gap_start, sample.t))
            gap_start = None
        current.append((sample.t, sample.value))
    if current:
        segments.append(current)
    if gap_start is not None:
        gaps.append(Window(gap_start, samples[-1].t))
    return segments, gaps


def render_chart(chart: ChartInput) -> str:
    """One `<svg>` element as a string."""
    segments, gaps = split_segments(chart.samples)
    frame = _frame(chart, segments)
    unit = facts.slo_unit(chart.info)
    label = f"{chart.slo} over time"
    frame.parts.append(
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {frame.width} {frame.height}" width="{frame.width}" '
        f'height="{frame.height}" aria-label="{escape(label)}"><title>{escape(label)}</title>')
    if not segments:
        frame.label("no data", "empty", [(frame.width / 2, frame.height / 2, "middle")],
                    force=True)
    # Shapes in drawing order; labels by priority (ticks, abort, target, phases, faults),
    # each where it overlaps none placed before it, drawn last.
    _axes(frame, unit)
    _abort(frame, chart.abort_at)
    _target(frame, chart.info, unit)
    _phases(frame, chart.phases)
    _windows(frame, chart.faults, "fault", labelled=True)
    _windows(frame, _merge(frame, gaps), "nodata")
    _bad_strip(frame, chart.samples)
    _lines(frame, segments, chart.max_points)
    frame.parts += frame.texts
    frame.parts.append("</svg>")
    return "".join(frame.parts)


def _frame(chart: ChartInput, segments: list[list[Point]]) -> _Frame:
    ends = [sample.t for sample in chart.samples[-1:]]
    ends += [w.end if w.end is not None else w.start for w in chart.faults]
    ends += [t for _, start, end in chart.phases for t in (start, end) if t is not None]
    ends += [value for value in (chart.abort_at, chart.t_end) if value is not None]
    t_max = max([1.0, *ends])
    values = [value for segment in segments for _, value in segment]
    if chart.info is not None:
        values.append(chart.info.target)
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (high - low) * 0.08 or abs(high) * 0.05 or 1.0
    return _Frame(t_max=t_max, y_min=low - pad, y_max=high + pad)


def nice_step(span: float, count: int) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about `count` ticks."""
    raw = span / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for multiple in (1.0, 2.0, 2.5, 5.0, 10.0):
        if multiple * magnitude >= raw:
            return multiple * magnitude
    return 10 * magnitude


def _time_step(t_max: float) -> float:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400):
        if t_max / step <= 8:
            return float(step)
    return nice_step(t_max, 8)


def _axes(frame: _Frame, unit: str) -> None:
    parts, right = frame.parts, frame.width - frame.right
    parts.append(f'<rect class="plot" x="{frame.left}" y="{frame.top}" '
                 f'width="{right - frame.left}" height="{frame.plot_bottom - frame.top}"/>')
    step = nice_step(frame.y_max - frame.y_min, 4)
    tick = math.ceil(frame.y_min / step) * step
    while tick <= frame.y_max + step * 1e-9:
        y = frame.y(tick)
        parts.append(f'<line class="grid" x1="{frame.left}" y1="{y:.1f}" x2="{right}" '
                     f'y2="{y:.1f}"/>')
        frame.label(facts.format_value(tick, unit), "tick", [(frame.left - 4, y + 3, "end")],
                    force=True)
        tick += step
    t_step, t = _time_step(frame.t_max), 0.0
    while t <= frame.t_max + 1e-9:
        frame.label(_t_label(t), "tick", [(frame.x(t), frame.plot_bottom + 16, "middle")])
        t += t_step


def _t_label(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:.0f}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:.0f}m"
    if seconds >= 60:
        return f"{int(seconds // 60)}m{int(seconds % 60)}s"
    return f"{seconds:g}s"


def _windows(frame: _Frame, windows: Sequence[Window], css: str,
             labelled: bool = False) -> None:
    height = frame.plot_bottom - frame.top
    rows = [frame.top + 12 + row * (ASCENT + DESCENT + 1)
            for row in range(int((height - 30) // (ASCENT + DESCENT + 1)))]
    for window in windows:
        x0 = frame.x(window.start)
        x1 = frame.x(window.end if window.end is not None else frame.t_max)
        open_css = " open" if window.end is None else ""
        frame.parts.append(
            f'<rect class="{css}{open_css}" x="{x0:.1f}" y="{frame.top}" '
            f'width="{max(x1 - x0, 1.5):.1f}" height="{height:.1f}">'
            f"<title>{escape(window.label or css)}</title></rect>")
        if window.label and labelled:  # else the band's <title> names it on hover
            frame.label(shorten_middle(window.label, 40), "wlabel",
                        [(x0 + 3, y, "start") for y in rows])


def _merge(frame: _Frame, windows: Sequence[Window]) -> list[Window]:
    """Merge windows that touch at the drawing's resolution, so thousands of tiny gaps
    become a few rectangles."""
    merged: list[Window] = []
    pixel = frame.t_max / (frame.width - frame.left - frame.right)
    for window in sorted(windows, key=lambda w: w.start):
        end = window.end if window.end is not None else frame.t_max
        if merged and window.start - (merged[-1].end or 0.0) <= pixel:
            last = merged[-1]
            merged[-1] = Window(last.start, max(last.end or 0.0, end), "no data")
        else:
            merged.append(Window(window.start, end, "no data"))
    return merged


def _bad_strip(frame: _Frame, samples: Sequence[Sample]) -> None:
    runs: list[Window] = []
    start: float | None = None
    for index, sample in enumerate(samples):
        if sample.good is False and start is None:
            start = sample.t
        elif sample.good is not False and start is not None:
            runs.append(Window(start, samples[index - 1].t))
            start = None
    if start is not None:
        runs.append(Window(start, samples[-1].t))
    for window in _merge(frame, runs):
        x0, x1 = frame.x(window.start), frame.x(window.end or window.start)
        frame.parts.append(f'<rect class="bad" x="{x0:.1f}" y="{frame.plot_bottom - 5:.1f}" '
                           f'width="{max(x1 - x0, 2.0):.1f}" height="5"/>')


def _phases(frame: _Frame, phases: Sequence[tuple[str, float, float | None]]) -> None:
    for name, start, end in phases:
        x = frame.x(start)
        frame.parts.append(f'<line class="phase" x1="{x:.1f}" y1="{frame.top - 8}" '
                           f'x2="{x:.1f}" y2="{frame.plot_bottom:.1f}"/>')
        # Short phases (plan, rollback) get a line but no label, which would overlap.
        if frame.x(end if end is not None else frame.t_max) - x >= CHAR_WIDTH * len(name):
            frame.label(shorten_middle(name, 12), "plabel", [(x + 2, frame.top - 8, "start")])


def _target(frame: _Frame, info: SLOInfo | None, unit: str) -> None:
    if info is None:
        return
    y = frame.y(info.target)
    label = f"target {info.op} {facts.format_value(info.target, unit)}"
    frame.parts.append(
        f'<line class="target" x1="{frame.left}" y1="{y:.1f}" '
        f'x2="{frame.width - frame.right}" y2="{y:.1f}"><title>{escape(label)}</title></line>')
    right, left = frame.width - frame.right - 4, frame.left + 4
    frame.label(label, "tlabel", [(right, y - 4, "end"), (right, y + 14, "end"),
                                  (left, y - 4, "start"), (left, y + 14, "start")])


def _lines(frame: _Frame, segments: list[list[Point]], max_points: int) -> None:
    total = sum(len(segment) for segment in segments) or 1
    for segment in segments:
        budget = max(2, max_points * len(segment) // total)
        points = downsample(segment, budget)
        if len(points) == 1:
            t, value = points[0]
            frame.parts.append(f'<circle class="dot" cx="{frame.x(t):.1f}" '
                               f'cy="{frame.y(value):.1f}" r="2"/>')
            continue
        coords = " ".join(f"{frame.x(t):.1f},{frame.y(value):.1f}" for t, value in points)
        frame.parts.append(f'<polyline class="series" points="{coords}"/>')


def _abort(frame: _Frame, abort_at: float | None) -> None:
    if abort_at is None:
        return
    x = frame.x(abort_at)
    frame.parts.append(
        f'<line class="abort" x1="{x:.1f}" y1="{frame.top}" x2="{x:.1f}" '
        f'y2="{frame.plot_bottom:.1f}"><title>abort</title></line>')
    low = frame.plot_bottom - 8
    frame.label("abort", "alabel", [(x - 3, low, "end"), (x + 3, low, "start"),
                                    (x - 3, low - 16, "end"), (x + 3, low - 16, "start")])

