"""engine/events.py: one definition per journal event; listeners are isolated."""

from __future__ import annotations

import asyncio
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

from chaosrunner.engine.context import RunOptions
from chaosrunner.engine.events import CATALOGUE, EventLog, Injected, Warned
from chaosrunner.testing.fakes import World, fake_run

ENGINE = Path(__file__).resolve().parents[2] / "chaosrunner" / "engine"


def test_a_failing_listener_is_unsubscribed_and_the_others_still_hear() -> None:
    log = EventLog()
    heard: list[str] = []

    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("terminal gone")

    log.subscribe(broken)
    log.subscribe(lambda event: heard.append(event["event"]))
    log.emit(Injected("down", "k.0", "api-1"))
    log.emit(Injected("down", "k.1", "api-2"))
    assert log.listeners and broken not in log.listeners
    assert heard == ["injected", "warning", "injected"]
    warning = next(e for e in log.events if e["event"] == "warning")
    assert "terminal gone" in warning["message"] and "unsubscribed" in warning["message"]


def test_on_delivers_one_kind_as_its_dataclass() -> None:
    log = EventLog()
    seen: list[Injected] = []
    log.on(Injected, seen.append)
    log.emit(Warned("unrelated"))
    log.emit(Injected("down", "k.0", "api-1"))
    assert seen == [Injected("down", "k.0", "api-1")]


def test_the_journal_dict_carries_kind_time_and_fields() -> None:
    record = EventLog().emit(Injected("down", "k.0", "api-1"))
    assert record["event"] == "injected" and {"time", "t"} <= set(record)
    assert (record["fault"], record["key"], record["target"]) == ("down", "k.0", "api-1")


def test_every_event_a_run_emits_is_in_the_catalogue(write_experiment: Any,
                                                     tmp_path: Path, world: World) -> None:
    run = fake_run(write_experiment(), world, RunOptions(state_dir=tmp_path / "state"))
    report = asyncio.run(run.execute())
    kinds = {e["event"] for e in report.events}
    assert kinds <= set(CATALOGUE) and {"phase", "inject", "revert", "sample"} <= kinds
    for event in report.events:
        expected = {f.name for f in fields(CATALOGUE[event["event"]])}
        assert set(event) - {"time", "t", "event"} == expected, event


def test_the_engine_emits_only_catalogued_events() -> None:
    for module in ENGINE.glob("*.py"):
        assert not re.search(r"\.emit\(\s*[\"']", module.read_text()), module.name
