"""SIGINT, double SIGINT and SIGTERM at random moments of real runs (issue 10.5).

Each run injects a process, a proxy or a Docker fault (in turn) and gets its signal at a
moment drawn at random: the before-phase, the injection in flight, the fault phase, the
rollback at the fault phase's end, or the report writing; a second SIGINT at once, during
the rollback or while the reports are written. Expected: exit status exactly 130 (SIGINT)
or 143 (SIGTERM), the fault taken back, nothing open in the ledger, no traceback.

    python reliability/signals.py [RUNS]      # one line of figures per check
"""

from __future__ import annotations

import signal
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from random import Random
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from campaign import (
    SIGNAL_STATUS,
    Tally,
    Target,
    event,
    fault_sample,
    kinds_here,
    main,
    phase,
    rng,
    settle,
    start,
    targets,
    write_experiment,
)

Predicate = Callable[[dict[str, Any]], bool]

FIRST: dict[str, tuple[Predicate, float]] = {  # moment: (event to wait for, max jitter s)
    "before-phase": (phase("before"), 0.3),
    "inject": (lambda e: e.get("event") == "inject", 0.0),
    "fault phase": (fault_sample, 0.5),
    "rollback": (phase("rollback"), 0.0),
    "report writing": (event("check", "after "), 0.0),
}
SECOND: dict[str, tuple[Predicate | None, float]] = {
    "at once": (None, 0.05),
    "rollback": (phase("rollback"), 0.0),
    "report writing": (lambda e: e.get("event") == "revert", 0.0),
}
CHECKS: dict[str, list[int]] = {
    "SIGINT": [signal.SIGINT],
    "double SIGINT": [signal.SIGINT, signal.SIGINT],
    "SIGTERM": [signal.SIGTERM],
}


def one_run(target: Target, work: Path, tag: str, numbers: list[int], rand: Random,
            seen: Counter[str]) -> tuple[bool, bool, bool, str]:
    experiment = write_experiment(work, target)
    runner = start(experiment, work, tag)
    first = rand.choice(list(FIRST))
    predicate, jitter = FIRST[first]
    sent: list[int] = []
    moments = [first]
    if runner.wait_event(predicate):
        runner.linger(rand.uniform(0, jitter))
        if runner.signal(numbers[0]):
            sent.append(numbers[0])
    for number in numbers[1:]:
        second = rand.choice(list(SECOND))
        moments.append(second)
        wait_for, jitter = SECOND[second]
        if wait_for is not None:
            runner.wait_event(wait_for, timeout=30)
        runner.linger(rand.uniform(0, jitter))
        if runner.signal(number):
            sent.append(number)
    code, err = runner.finish()
    seen[" then ".join(moments) if len(sent) == len(numbers) else "(run ended first)"] += 1
    expected = SIGNAL_STATUS[sent[0]] if sent else 0
    restored = settle(target, runner.state)
    traceback = "Traceback" in err
    detail = (f"{tag}: {target.kind}, {' then '.join(moments)}, sent "
              f"{[signal.Signals(n).name for n in sent]}: exit {code} (expected {expected})"
              f"{'' if restored else ', LEFT BEHIND'}{', traceback' if traceback else ''}"
              f"; stderr tail: {err[-300:]!r}")
    return restored, code == expected, traceback, detail + ("" if sent else " (no signal: "
                                                            "the run ended first)")


def campaign(runs: int, out: Callable[[str], None] = print) -> bool:
    rand, seed = rng()
    kinds, missing = kinds_here("signals", ["docker"], out)
    if kinds is None:
        return False
    ok = True
    with tempfile.TemporaryDirectory(prefix="chaosrunner-signals-") as tmp:
        work = Path(tmp)
        with targets(work, kinds) as made:
            for name, numbers in CHECKS.items():
                tally = Tally(f"{name} at random moments ({', '.join(kinds)})")
                seen: Counter[str] = Counter()
                for index in range(runs):
                    target = made[kinds[index % len(kinds)]]
                    tag = f"{name.replace(' ', '-')}-{index}"
                    tally.add(*one_run(target, work, tag, numbers, rand, seen))
                moments = ", ".join(f"{m} {n}" for m, n in sorted(seen.items()))
                ok = tally.report(out, f"moments: {moments}") and ok
    out(f"signals: seed {seed}" + ("" if missing is None else f"; docker skipped: {missing}"))
    return ok


if __name__ == "__main__":
    main(campaign)
