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
from collections.abc import Iterable


class Verdict(enum.StrEnum):
    """How a run (or a game day) ended: the one home of everything a verdict implies.

    The value is what reports, `--output json` and the history print; as a `StrEnum` it
    compares equal to that string. Each member also carries its exit code, its `rank`
    (which verdict of several is the worst: a game day takes its worst experiment's),
    a one-line description and whether the run gets a post-mortem. "Severity" means the
    incident levels of `report/severity.py`, never this ranking.
    """

    _value_: str
    exit_code: int
    rank: int
    description: str
    postmortem_due: bool

    # The defaults only let `Verdict("passed")` (a lookup by value) type-check.
    def __new__(cls, value: str, exit_code: int = 0, rank: int = 0, description: str = "",
                postmortem_due: bool = False) -> Verdict:
        member = str.__new__(cls, value)
        member._value_ = value
        member.exit_code = exit_code
        member.rank = rank
        member.description = description
        member.postmortem_due = postmortem_due
        return member

    PASSED = ("passed", 0, 0,
              "steady state held, success criteria met, recovered in time", False)
    NOT_STARTED = ("not_started", 3, 1, "refused before injecting anything", False)
    FAILED = ("failed", 1, 2,
              "ran to the end and rolled back, but the hypothesis was refuted", True)
    ABORTED = ("aborted", 2, 3, "a safety limit stopped the run; faults were rolled back",
               True)
    INVALID = ("invalid", 4, 4, "bad input; nothing was run", False)
    INTERRUPTED = ("interrupted", 130, 5, "interrupted by a signal; faults were rolled back",
                   False)
    ROLLBACK_INCOMPLETE = ("rollback_incomplete", 5, 6,
                           "something could not be taken back: run `chaosrunner recover`",
                           True)

    def exit_code_for(self, signal_name: str | None = None) -> int:
        """The exit code; an interruption by SIGTERM exits 143, by SIGINT 130."""
        if self is Verdict.INTERRUPTED and signal_name:
            return SIGNAL_EXIT_CODES.get(signal_name, self.exit_code)
        return self.exit_code

    @classmethod
    def from_exit_code(cls, code: int) -> Verdict | None:
        """The verdict a process exit code stands for (143 and 130: interrupted); None for
        a code chaosrunner does not exit with."""
        if code in SIGNAL_EXIT_CODES.values():
            return cls.INTERRUPTED
        return next((v for v in cls if v.exit_code == code), None)

    @classmethod
    def worst(cls, verdicts: Iterable[Verdict]) -> Verdict | None:
        """The highest-ranked verdict; None for none."""
        return max(verdicts, key=lambda v: v.rank, default=None)

    @classmethod
    def ranking(cls) -> str:
        """`rollback_incomplete > interrupted > ... > passed`, for reports and docs."""
        return " > ".join(v.value for v in sorted(cls, key=lambda v: -v.rank))


SIGNAL_EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}


class ChaosRunnerError(Exception):
    """Base of every error chaosrunner raises on purpose."""

    verdict: Verdict = Verdict.INVALID

    @property
    def exit_code(self) -> int:
        return self.verdict.exit_code


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
