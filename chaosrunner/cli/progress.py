"""Live progress on a terminal: phase, current SLIs, budget burn, faults in effect.

On a terminal, a rich status panel redraws in place and notable events (inject, revert,
abort, checks) scroll above it. Anywhere else (CI logs, pipes) plain lines are printed,
one per event, by `print_listener`.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, TextIO

from chaosrunner.engine.events import Listener

NOTABLE = {"inject", "revert", "abort", "refused", "error", "warning", "interrupt", "check",
           "plan"}


class LiveDisplay:
    """A listener that keeps one panel up to date. Use as a context manager."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=True)
        self.live = Live(console=self.console, refresh_per_second=8, transient=True)
        self.phase = "plan"
        self.t = 0.0
        self.slos: dict[str, tuple[Any, Any]] = {}
        self.burn: dict[str, Any] = {}
        self.active: dict[str, str] = {}

    def __enter__(self) -> LiveDisplay:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()

    def __call__(self, event: dict[str, Any]) -> None:
        self.t = event["t"]
        kind = event["event"]
        if kind == "phase":
            self.phase = event["phase"]
        elif kind == "sample":
            self.slos = event["slos"]
            self.burn = event.get("burn") or self.burn
        elif kind == "inject":
            self.active[event["key"]] = f"{event['fault']} -> {event['target']}"
        elif kind == "revert":
            self.active.pop(event["key"], None)
        if kind in NOTABLE:
            self.live.console.print(f"[dim]{event['t']:7.2f}s[/] {describe_event(event)}")
        self.live.update(self.render())

    def render(self) -> Any:
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        table.add_row("[bold]phase[/]", f"{self.phase}  ({self.t:.1f}s)")
        for name, (value, good) in self.slos.items():
            shown = "no data" if value is None else f"{value:.4g}"
            style = "green" if good else ("yellow" if good is None else "red")
            table.add_row(name, f"[{style}]{shown}[/]")
        if self.burn:
            table.add_row("burn", "  ".join(f"{w}: {'-' if v is None else f'{v:.1f}x'}"
                                            for w, v in self.burn.items()))
        for label in self.active.values():
            table.add_row("[red]fault[/]", label)
        return table


def progress_listener() -> tuple[Listener, Any]:
    """(listener, context manager): a live panel on a terminal, plain lines elsewhere."""
    if sys.stderr.isatty():
        display = LiveDisplay()
        return display, display
    return print_listener(), contextlib.nullcontext()


def print_listener(stream: TextIO | None = None) -> Listener:
    """Plain-line progress for terminals and CI logs: phase, SLIs, budget burn."""
    out = stream or sys.stderr

    def show(event: dict[str, Any]) -> None:
        line = describe_event(event)
        if line:
            print(f"[{event['t']:7.2f}s] {line}", file=out, flush=True)

    return show


def describe_event(event: dict[str, Any]) -> str | None:
    kind = event["event"]
    if kind == "phase":
        return f"== {event['phase']} =="
    if kind == "sample":
        parts = [f"{name}={_fmt(v)}{'' if ok in (True, None) else ' (!)'}"
                 for name, (v, ok) in event["slos"].items()]
        burn = event.get("burn")
        if burn:
            parts.append("burn " + ", ".join(f"{k}={_fmt(v)}x" for k, v in burn.items()))
        return "   " + "  ".join(parts)
    if kind in ("inject", "revert"):
        return f"{kind} {event['fault']} ({event['action']}) -> {event['target']}"
    if kind in NOTABLE:  # the message-carrying kinds (engine/events.py's CATALOGUE)
        return f"{kind}: {event.get('message', '')}"
    return None


def _fmt(value: Any) -> str:
    if value is None:
        return "no-data"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
