"""`capacity.html`: the capacity plan with its chart (usage history, forecast, the
breaking point and the limit under it). Self-contained; every string is escaped."""

from __future__ import annotations

from chaosrunner.load.capacity import MONTH, CapacityPlan
from chaosrunner.report.html import _CSP, _STYLE, e

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 720, 300, 60, 20, 20, 40


def render_capacity_html(plan: CapacityPlan) -> str:
    rows = "".join(f"<tr><td>{m}</td><td>{v:g}</td></tr>" for m, v in enumerate(plan.forecast))
    facts = [f"usage now: <b>{plan.current:g}</b> (<code>{e(plan.usage_query)}</code>)",
             f"growth: {plan.growth_per_month:+.1%}/month ({e(plan.model)})",
             f"headroom: {plan.headroom:.0%}"]
    if plan.breaking_point is not None:
        facts.append(f"breaking point: <b>{plan.breaking_point:g}</b> "
                     f"({e(plan.breaking_point_source or '')}); limit {plan.limit:g}")
        facts.append("months until the limit: <b>"
                     f"{'never' if plan.months_to_limit is None else f'{plan.months_to_limit:g}'}"
                     "</b>")
    facts.append(e(plan.recommendation))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            f"<title>capacity plan · chaosrunner</title><style>{_STYLE}</style></head>"
            "<body><main><h1>Capacity plan</h1><ul>"
            + "".join(f"<li>{f}</li>" for f in facts) + "</ul>" + capacity_chart(plan)
            + "<table><thead><tr><th>month</th><th>forecast</th></tr></thead><tbody>"
            + rows + "</tbody></table></main></body></html>\n")


def capacity_chart(plan: CapacityPlan) -> str:
    """SVG: x in months (history before 0), y in the usage's unit."""
    history = []
    if plan.trend is not None and plan.trend.history:
        end = plan.trend.history[-1][0]
        history = [((t - end) / MONTH, v) for t, v in plan.trend.history]
    x_min = min([0.0, *(x for x, _ in history)])
    x_max = float(plan.months)
    levels = [v for _, v in history] + plan.forecast + [
        v for v in (plan.breaking_point, plan.limit) if v is not None]
    y_max = max(levels) * 1.1 or 1.0

    def px(x: float) -> float:
        return LEFT + (x - x_min) / ((x_max - x_min) or 1) * (WIDTH - LEFT - RIGHT)

    def py(y: float) -> float:
        return HEIGHT - BOTTOM - y / y_max * (HEIGHT - TOP - BOTTOM)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
             'role="img" aria-label="usage forecast against the breaking point">',
             f'<line x1="{LEFT}" y1="{py(0):.1f}" x2="{WIDTH - RIGHT}" y2="{py(0):.1f}" '
             'stroke="#888"/>']
    for month in range(plan.months + 1):
        parts.append(f'<text x="{px(month):.1f}" y="{HEIGHT - 20}" font-size="11" '
                     f'text-anchor="middle">{month}</text>')
    parts.append(f'<text x="{LEFT}" y="{HEIGHT - 4}" font-size="11">months from now</text>')
    for value, label, colour in ((plan.breaking_point, "breaking point", "#c0392b"),
                                 (plan.limit, "limit (minus headroom)", "#e67e22")):
        if value is not None:
            parts.append(f'<line x1="{LEFT}" y1="{py(value):.1f}" x2="{WIDTH - RIGHT}" '
                         f'y2="{py(value):.1f}" stroke="{colour}" stroke-dasharray="6 4"/>'
                         f'<text x="{LEFT + 4}" y="{py(value) - 4:.1f}" font-size="11" '
                         f'fill="{colour}">{e(label)} {value:g}</text>')
    if history:
        parts.append(_polyline([(px(x), py(y)) for x, y in history], "#7f8c8d", "history"))
    parts.append(_polyline([(px(m), py(v)) for m, v in enumerate(plan.forecast)], "#2471a3",
                           "forecast"))
    return "".join(parts) + "</svg>"


def _polyline(points: list[tuple[float, float]], colour: str, label: str) -> str:
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return (f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2">'
            f"<title>{e(label)}</title></polyline>")
