"""Storage faults on a small tmpfs (issue 10.4), in turn: a full report directory, a state
directory turned read-only in the middle of the run, and a read-only or full state
directory at start. Expected: the run's own exit status (0: the run passes) or exit 4 for
a state directory unusable at start, with nothing injected; the fault taken back; no
traceback. Needs root and mount(8): skipped, and said so, where mounting is refused.

    python reliability/storage_faults.py [RUNS]
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from campaign import (
    ProcessTarget,
    Runner,
    Tally,
    main,
    recover,
    settle,
    start,
    unavailable,
    write_experiment,
)
from helpers import wait_until
from storage import fill, mount_refused, read_only_from_now, tmpfs

from chaosrunner.engine.ledger import Ledger


def scenario_full_report_dir(work: Path, target: ProcessTarget, tag: str,
                             mounts: ExitStack) -> tuple[Runner, int]:
    disk = mounts.enter_context(tmpfs(work / f"disk-{tag}"))
    fill(disk)
    runner = start(write_experiment(work, target), work, tag, "--report-dir",
                   str(disk / "report"))
    return runner, 0


def scenario_state_read_only_mid_run(work: Path, target: ProcessTarget, tag: str,
                                     mounts: ExitStack) -> tuple[Runner, int]:
    runner = start(write_experiment(work, target), work, tag)
    runner.wait_event(lambda e: e.get("event") == "inject")
    ledger = Ledger(runner.state)
    deadline_ok = wait_until(lambda: any(f.confirmed for f in ledger.open_faults())
                             or runner.proc.poll() is not None, timeout=60)
    if deadline_ok and runner.proc.poll() is None:
        mounts.enter_context(read_only_from_now(runner.state))
    return runner, 0


def scenario_state_read_only_at_start(work: Path, target: ProcessTarget, tag: str,
                                      mounts: ExitStack) -> tuple[Runner, int]:
    read_only = mounts.enter_context(tmpfs(work / f"ro-{tag}", read_only=True))
    runner = start(write_experiment(work, target), work, tag, "--state-dir",
                   str(read_only / "state"))
    return runner, 4


def scenario_state_full_at_start(work: Path, target: ProcessTarget, tag: str,
                                 mounts: ExitStack) -> tuple[Runner, int]:
    disk = mounts.enter_context(tmpfs(work / f"full-{tag}"))
    (disk / "state").mkdir()
    fill(disk)
    runner = start(write_experiment(work, target), work, tag, "--state-dir",
                   str(disk / "state"))
    return runner, 4


SCENARIOS: dict[str, Callable[[Path, ProcessTarget, str, ExitStack], tuple[Runner, int]]] = {
    "full report dir": scenario_full_report_dir,
    "state dir read-only mid-run": scenario_state_read_only_mid_run,
    "read-only state dir at start": scenario_state_read_only_at_start,
    "full state dir at start": scenario_state_full_at_start,
}


def one_run(name: str, work: Path, target: ProcessTarget, tag: str
            ) -> tuple[bool, bool, bool, str]:
    with ExitStack() as mounts:
        runner, expected = SCENARIOS[name](work, target, tag, mounts)
        code, err = runner.finish()
        state = _state_dir(runner)
    # A done record that a read-only state dir refused leaves the fault open in the
    # ledger though it was taken back: `recover` (as the run's warning says) closes it.
    recovered = 0
    if Ledger(state).open_faults():
        recovered, said = recover(state)
        err += said
    restored = settle(target, state)
    traceback = "Traceback" in err
    return restored, code == expected and recovered == 0, traceback, (
        f"{tag} ({name}): exit {code} (expected {expected}), recover {recovered}"
        f"{'' if restored else ', LEFT BEHIND'}; stderr tail: {err[-300:]!r}")


def _state_dir(runner: Runner) -> Path:
    argv = [str(a) for a in runner.proc.args]  # type: ignore[union-attr]
    return Path(argv[len(argv) - 1 - argv[::-1].index("--state-dir") + 1])


def campaign(runs: int, out: Callable[[str], None] = print) -> bool:
    refused = mount_refused()
    if refused is not None:
        return unavailable("mount", "storage faults",
                           f"mounting a tmpfs is not permitted: {refused}", out)
    with tempfile.TemporaryDirectory(prefix="chaosrunner-storage-") as tmp:
        work = Path(tmp)
        target = ProcessTarget(work)
        try:
            tally = Tally(f"storage faults on a small tmpfs ({', '.join(SCENARIOS)})")
            names = list(SCENARIOS)
            for index in range(max(runs, len(names))):
                name = names[index % len(names)]
                tally.add(*one_run(name, work, target, f"storage-{index}"))
        finally:
            target.close()
    return tally.report(out)


if __name__ == "__main__":
    main(campaign)
