"""The one error tree of chaosrunner, and the one map from outcome to exit code.

Every error a user can cause or meet is one of these; nothing else reaches the CLI
as a traceback. Messages say what was wrong, where (file:line, key path, target)
and what to do.

    ChaosRunnerError                      base; exit code 4 unless a subclass says otherwise
    ├── InvalidInput                      bad files, flags, parameters           (exit 4)
    │   └── SpecError                     a file that does not validate; carries file:line:path
    ├── Refused                           plan-time refusal: nothing was injected (exit 3)
    │   ├── BlastRadiusExceeded           selection larger than blast_radius allows
    │   ├── EnvironmentRefused            production without --allow-production
    │   ├── ExecNotAllowed                program from a file without --allow-exec
    │   └── BudgetGateRefused             min_budget_remaining not met
    ├── DriverError                       a driver could not do its job (abort during a run)
    │   ├── TargetNotFound                a selector matched nothing / target vanished
    │   └── DriverUnavailable             backend (engine, API) unreachable or refused access
    ├── SourceError                       an SLI source could not produce a reading
    ├── RollbackIncomplete                something could not be taken back (exit 5)
    └── StateError                        ledger / state dir / lock problems
"""

from __future__ import annotations

import enum


class Verdict(enum.Enum):
    """How a run ended. The value is what reports and `--output json` print."""

    PASSED = "passed"
    FAILED = "failed"
    ABORTED = "aborted"
    NOT_STARTED = "not_started"
    INVALID = "invalid"
    ROLLBACK_INCOMPLETE = "rollback_incomplete"
    INTERRUPTED = "interrupted"


EXIT_CODES: dict[Verdict, int] = {
    Verdict.PASSED: 0,
    Verdict.FAILED: 1,
    Verdict.ABORTED: 2,
    Verdict.NOT_STARTED: 3,
    Verdict.INVALID: 4,
    Verdict.ROLLBACK_INCOMPLETE: 5,
    Verdict.INTERRUPTED: 130,
}

SIGNAL_EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}


def exit_code_for(verdict: Verdict, signal_name: str | None = None) -> int:
    """Exit code of a verdict; an interruption by SIGTERM exits 143, by SIGINT 130."""
    if verdict is Verdict.INTERRUPTED and signal_name:
        return SIGNAL_EXIT_CODES.get(signal_name, 130)
    return EXIT_CODES[verdict]


class ChaosRunnerError(Exception):
    """Base of every error chaosrunner raises on purpose."""

    verdict: Verdict = Verdict.INVALID

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]


class InvalidInput(ChaosRunnerError):
    """Bad input: a file, a flag, a parameter. Nothing was changed."""


class SpecError(InvalidInput):
    """A file that does not load or validate, with the place of each problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class Refused(ChaosRunnerError):
    """Refused before injecting anything (plan, safety, budget gate, steady state)."""

    verdict = Verdict.NOT_STARTED


class BlastRadiusExceeded(Refused):
    """The selection would touch more instances than the blast radius allows."""


class EnvironmentRefused(Refused):
    """A production environment without --allow-production."""


class ExecNotAllowed(Refused):
    """The file asks to run a program and --allow-exec was not given."""


class BudgetGateRefused(Refused):
    """Too little error budget left to start (min_budget_remaining)."""


class DriverError(ChaosRunnerError):
    """A fault driver failed. During a run this aborts the run, with rollback."""

    verdict = Verdict.ABORTED


class TargetNotFound(DriverError):
    """A selector matched nothing, or a target vanished between plan and inject."""


class DriverUnavailable(DriverError):
    """The backend of a driver (Docker engine, Toxiproxy API, ...) cannot be used."""


class SourceError(ChaosRunnerError):
    """An SLI source could not produce a reading (server down, bad query, ...)."""

    verdict = Verdict.ABORTED


class RollbackIncomplete(ChaosRunnerError):
    """At least one fault could not be taken back: run `chaosrunner recover`."""

    verdict = Verdict.ROLLBACK_INCOMPLETE


class StateError(ChaosRunnerError):
    """The state directory, ledger or a lock is unusable."""
