"""SIGKILL the runner at a random moment, then `chaosrunner recover` in a new process
(issue 10, "Keep the campaign"): process.pause, a toxic, docker.pause, and docker.stop
with a slow stop.

The runner runs without its watchdog (`--no-watchdog`: the watchdog's own campaign is
tests/watchdog), so `recover` alone must take the fault back. Moments: the injection in
flight (intent written, driver call running) or the fault phase. Expected: `recover`
exits 0, the target is restored, nothing is open in the ledger, no traceback.

    python reliability/sigkill.py [RUNS]      # one line of figures per check
"""

from __future__ import annotations

import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from random import Random

sys.path.insert(0, str(Path(__file__).resolve().parent))

from campaign import (
    Tally,
    Target,
    fault_sample,
    kinds_here,
    main,
    rng,
    settle,
    start,
    targets,
    write_experiment,
)
from campaign import recover as run_recover

MOMENTS = {
    "inject in flight": (lambda e: e.get("event") == "inject", 0.02),
    "fault phase": (fault_sample, 0.5),
}
CHECKS = {"process": "process.pause", "proxy": "a toxic", "docker": "docker.pause",
          "docker-stop": "docker.stop with a slow stop (SIGTERM ignored, 2 s grace)"}


def one_run(target: Target, work: Path, tag: str, rand: Random) -> tuple[bool, bool, bool, str]:
    runner = start(write_experiment(work, target, duration="60s"), work, tag, "--no-watchdog")
    moment = rand.choice(list(MOMENTS))
    predicate, jitter = MOMENTS[moment]
    reached = runner.wait_event(predicate)
    if reached:
        runner.linger(rand.uniform(0, jitter))
    killed = runner.signal(signal.SIGKILL)
    code, err = runner.finish()
    recovered, output = run_recover(runner.state)
    restored = settle(target, runner.state)
    traceback = "Traceback" in err + output
    exact = killed and code == -signal.SIGKILL and recovered == 0
    detail = (f"{tag}: {moment}{'' if reached else ' (not reached)'}: runner {code}, recover "
              f"{recovered}{'' if restored else ', LEFT BEHIND'}; recover said: "
              f"{output[-300:]!r}; runner stderr tail: {err[-200:]!r}")
    return restored, exact, traceback, detail


def campaign(runs: int, out: Callable[[str], None] = print) -> bool:
    rand, seed = rng()
    kinds, missing = kinds_here("sigkill", ["docker", "docker-stop"], out)
    if kinds is None:
        return False
    ok = True
    with tempfile.TemporaryDirectory(prefix="chaosrunner-sigkill-") as tmp:
        work = Path(tmp)
        with targets(work, kinds) as made:
            for kind in kinds:
                tally = Tally(f"SIGKILL then recover, {CHECKS[kind]}")
                for index in range(runs):
                    tally.add(*one_run(made[kind], work, f"{kind}-{index}", rand))
                ok = tally.report(out) and ok
    out(f"sigkill: seed {seed}" + ("" if missing is None else f"; docker skipped: {missing}"))
    return ok


if __name__ == "__main__":
    main(campaign)
