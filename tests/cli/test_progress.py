"""The live panel shows phase, SLIs, burn and the faults in effect."""

from __future__ import annotations

import io
from dataclasses import fields

from rich.console import Console

from chaosrunner.cli.progress import LiveDisplay, print_listener
from chaosrunner.engine.events import CATALOGUE


def rendered(display: LiveDisplay) -> str:
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(display.render())
    return out.getvalue()


def test_panel_follows_the_run() -> None:
    display = LiveDisplay()
    display.live.console.file = io.StringIO()  # keep the test's terminal clean
    events = [
        {"t": 0.0, "event": "phase", "phase": "faults"},
        {"t": 0.1, "event": "inject", "fault": "freeze", "action": "process.pause",
         "target": "pid 42", "key": "run.freeze.0"},
        {"t": 0.5, "event": "sample", "phase": "faults",
         "slos": {"checkout_probe": [0.5, False], "latency": [None, None]},
         "burn": {"1m": 50.0, "5m": None}},
    ]
    for event in events:
        display(event)
    text = rendered(display)
    assert "faults" in text and "checkout_probe" in text and "0.5" in text
    assert "no data" in text and "50.0x" in text and "freeze -> pid 42" in text
    display({"t": 0.6, "event": "revert", "fault": "freeze", "action": "process.pause",
             "target": "pid 42", "key": "run.freeze.0"})
    assert "freeze -> pid 42" not in rendered(display)


def test_every_event_with_a_message_gets_a_plain_line() -> None:
    """CI logs (print_listener) show each kind of the catalogue that carries a message."""
    out = io.StringIO()
    show = print_listener(out)
    kinds = [kind for kind, cls in CATALOGUE.items()
             if "message" in {field.name for field in fields(cls)}]
    assert "abort" in kinds and "refused" in kinds
    for kind in kinds:
        show({"t": 1.0, "event": kind, "message": f"{kind} said"})
    assert out.getvalue().splitlines() == [f"[   1.00s] {kind}: {kind} said" for kind in kinds]
