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

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from random import Random

sys.path.insert(0, str(Path(__file__).resolve().parent))

from campaign import (
    Tally,
    Target,
    docker_available,
    fault_sample,
    rng,
    runs_per_check,
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
    if reached and jitter:
        with contextlib.suppress(subprocess.TimeoutExpired):  # still running, as wanted
            runner.proc.wait(timeout=rand.uniform(0, jitter))
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
    kinds = ["process", "proxy"]
    missing = docker_available()
    if missing is None:
        kinds += ["docker", "docker-stop"]
    elif "docker" in os.environ.get("CHAOSRUNNER_REQUIRE", ""):
        out(f"sigkill: FAILED, Docker is required and unavailable: {missing}")
        return False
    ok = True
    with tempfile.TemporaryDirectory(prefix="chaosrunner-sigkill-") as tmp:
        work = Path(tmp)
        with targets(work, kinds) as made:
            for kind in kinds:
                tally = Tally(f"SIGKILL then recover, {CHECKS[kind]}")
                for index in range(runs):
                    tally.add(*one_run(made[kind], work, f"{kind}-{index}", rand))
                out(tally.line())
                for problem in tally.problems:
                    out(f"    {problem}")
                ok = ok and tally.ok
    out(f"sigkill: seed {seed}" + ("" if missing is None else f"; docker skipped: {missing}"))
    return ok


if __name__ == "__main__":
    sys.exit(0 if campaign(int(sys.argv[1]) if len(sys.argv) > 1 else runs_per_check())
             else 1)
