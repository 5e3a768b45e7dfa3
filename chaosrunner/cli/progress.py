"""Live progress on a terminal: phase, current SLIs, budget burn, faults in effect.

On a terminal, a rich status panel redraws in place and notable events (inject, revert,
abort, checks) scroll above it. Anywhere else (CI logs, pipes) plain lines are printed,
one per event, by `engine.context.print_listener`.
"""

from __future__ import annotations

import sys
from typing import Any

from chaosrunner.engine.context import Listener, describe_event, print_listener

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
    import contextlib

    if sys.stderr.isatty():
        display = LiveDisplay()
        return display, display
    return print_listener(), contextlib.nullcontext()
