"""Run options and the event stream: everything a run owns, in one place, no globals."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from chaosrunner.spec.models import GameDay


class ObserveConfig(Protocol):
    """The observers' settings (`chaosrunner.observe.settings.ObserveSettings`): the CLI
    sets them, `app.run` hands them to the observers; the engine only carries them, so
    it knows nothing of the observe package."""

    def start(self) -> None: ...

    def for_gameday(self, gameday: GameDay,
                    notify_places: tuple[str, ...] = ()) -> ObserveConfig: ...


@dataclass(frozen=True)
class RunOptions:
    state_dir: Path = Path(".chaosrunner")
    report_dir: Path | None = None
    junit: Path | None = None
    allow_production: bool = False
    allow_exec: bool = False
    dry_run: bool = False
    variables: Mapping[str, str] = field(default_factory=dict)
    revert_retries: int = 3
    revert_timeout: float = 60.0
    seed: int | None = None
    # A game day's own gate, applied on top of the experiment's min_budget_remaining.
    min_budget_remaining: float | None = None
    # Start a watchdog process that takes the faults back if this process dies. The CLI
    # turns it on (`--no-watchdog` off); embedders and in-process tests opt in.
    watchdog: bool = False
    # `--halt-source` (else CHAOSRUNNER_HALT_SOURCE): a fleet-wide halt, besides the state
    # dir's HALT file (chaosrunner.engine.halt).
    halt_source: str | None = None
    # Notifications, annotations, traces and metrics (chaosrunner.observe): set by the CLI.
    observe: ObserveConfig | None = None


class StopCondition(Protocol):
    """Something outside the run that must not be in a given state while faults are in
    (a firing alert, chaosrunner.observe.alerts). Polled like the halt file."""

    @property
    def source(self) -> str:
        """Where it is read, for messages (no secrets)."""
        ...

    async def check(self) -> str | None:
        """The reason to stop, or None; raises SourceError when it cannot tell."""
        ...


@dataclass(frozen=True)
class RunHooks:
    """What observers lend a run: stop conditions, and the headers that carry the run's
    trace into probe requests (W3C traceparent)."""

    stop_conditions: tuple[StopCondition, ...] = ()
    trace_headers: Callable[[], Mapping[str, str]] | None = None
