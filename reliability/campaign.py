"""The reliability campaign's shared parts: real targets, real runs, one tally per check.

A check runs `chaosrunner run` N times against a real target (a paused process, a toxic
on `chaosrunner proxy`, a paused Docker container), does something hostile to it at a
random moment (a signal, SIGKILL then `recover`, a storage fault) and counts:

    <check>: N/N restored, 0 left behind, exit status exact N/N, 0 tracebacks

"restored" means that, once the runner has exited (and, where the check says so, once
`recover` has run), the target is as it was and the ledger holds no open fault. A fault
still in effect, or still open in the ledger, is "left behind" (and then cleaned up, so
that the next run starts clean). Moments are drawn from a seeded random generator; the
seed is printed with the figures, and CHAOSRUNNER_RELIABILITY_SEED replays a campaign.

One module per family of checks (signals.py, sigkill.py, storage_faults.py, cronjob.py, and
those of other families: hostile_files.py); each has a `test_*.py` that `make reliability`
runs. Sizes: CHAOSRUNNER_RELIABILITY_RUNS (default 50 runs per check; `.ci/run` uses 5).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from helpers import embedded_proxy, proc_state, wait_until  # noqa: E402
from services import is_required  # noqa: E402

from chaosrunner.engine.ledger import Ledger  # noqa: E402
from chaosrunner.testing.experiments import write_one_fault_experiment  # noqa: E402

SIGNAL_STATUS: dict[int, int] = {int(signal.SIGINT): 130, int(signal.SIGTERM): 143}


def runs_per_check() -> int:
    return int(os.environ.get("CHAOSRUNNER_RELIABILITY_RUNS", "50"))


def main(campaign: Callable[..., bool], runs: int | None = None) -> None:
    """`python reliability/<family>.py [RUNS]`: exit 0 when every check of it passed."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else runs or runs_per_check()
    sys.exit(0 if campaign(count) else 1)


def check(campaign: Callable[..., bool], runs: int) -> None:
    """A family's pytest test: run it, print its figures, fail with them on a problem."""
    lines: list[str] = []
    ok = campaign(runs, out=lines.append)
    print("\n" + "\n".join(lines))
    assert ok, "\n".join(lines)


def rng() -> tuple[random.Random, int]:
    seed = int(os.environ.get("CHAOSRUNNER_RELIABILITY_SEED", str(time.time_ns() % 10**6)))
    return random.Random(seed), seed


@dataclass
class Tally:
    """The figures of one check."""

    name: str
    runs: int = 0
    restored: int = 0
    left_behind: int = 0
    exact: int = 0
    tracebacks: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, restored: bool, exact: bool, traceback: bool, detail: str) -> None:
        self.runs += 1
        self.restored += restored
        self.left_behind += not restored
        self.exact += exact
        self.tracebacks += traceback
        if not (restored and exact) or traceback:
            self.problems.append(detail)

    @property
    def ok(self) -> bool:
        return self.runs > 0 and self.restored == self.exact == self.runs \
            and self.tracebacks == 0

    def line(self) -> str:
        return (f"{self.name}: {self.restored}/{self.runs} restored, {self.left_behind} left "
                f"behind, exit status exact {self.exact}/{self.runs}, "
                f"{self.tracebacks} tracebacks")

    def report(self, out: Callable[[str], None], *notes: str) -> bool:
        """Say the figures, the notes and each problem on `out`; True when all is well."""
        out(self.line())
        for line in [*notes, *self.problems]:
            out(f"    {line}")
        return self.ok


# --- targets ---------------------------------------------------------------------------------


class Target:
    """Something a fault is injected into, and a way to tell whether it still is."""

    kind = ""
    action = ""

    def target(self) -> str:
        raise NotImplementedError

    def params(self) -> str:
        """The fault's `with:` (a YAML flow mapping), if any."""
        return ""

    def in_effect(self) -> bool:
        raise NotImplementedError

    def heal(self) -> None:
        """Take a left-behind fault back by hand, so that the next run starts clean."""

    def close(self) -> None:
        """Free what the target holds."""


class ProcessTarget(Target):
    kind, action = "process", "process.pause"

    def __init__(self, work: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        self.pid_file = work / "sleeper.pid"
        self.pid_file.write_text(str(self.proc.pid))

    def target(self) -> str:
        return f"{{pid_file: {self.pid_file}}}"

    def in_effect(self) -> bool:
        return bool(proc_state(self.proc.pid) == "T")

    def heal(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGCONT)

    def close(self) -> None:
        self.heal()
        self.proc.kill()
        self.proc.wait()


class ProxyTarget(Target):
    kind, action = "proxy", "toxiproxy.latency"

    def __init__(self, work: Path) -> None:
        self.stack = contextlib.ExitStack()
        self.proxy = self.stack.enter_context(embedded_proxy("rel"))

    def target(self) -> str:
        return self.proxy.target()

    def params(self) -> str:
        return "{latency: 10ms}"

    def in_effect(self) -> bool:
        return bool(self.proxy.toxics())

    def heal(self) -> None:
        for toxic in self.proxy.toxics():
            httpx.delete(f"{self.proxy.api}/proxies/{self.proxy.name}/toxics/{toxic['name']}",
                         timeout=10)

    def close(self) -> None:
        self.stack.close()


BUSYBOX_IMAGE = "chaosrunner-busybox:test"
LABEL = "org.chaosrunner.reliability"


class DockerTarget(Target):
    kind, action = "docker", "docker.pause"
    COMMAND: tuple[str, ...] = ("sleep", "3600")

    def __init__(self, work: Path) -> None:
        import docker

        build_images("busybox")
        self.client = docker.from_env(timeout=30)
        self.container = self.client.containers.run(
            BUSYBOX_IMAGE, list(self.COMMAND), name=f"crrel-{uuid.uuid4().hex[:8]}",
            detach=True, network_mode="host", init=True, labels={LABEL: "1"})

    def target(self) -> str:
        return f"{{container: {self.container.name}}}"

    def state(self) -> dict[str, Any]:
        self.container.reload()
        state: dict[str, Any] = self.container.attrs["State"]
        return state

    def in_effect(self) -> bool:
        state = self.state()
        return bool(state.get("Paused")) or not state.get("Running")

    def heal(self) -> None:
        state = self.state()
        if state.get("Paused"):
            self.container.unpause()
        elif not state.get("Running"):
            self.container.start()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.container.remove(force=True)
        self.client.close()


class SlowStopTarget(DockerTarget):
    """docker.stop on a container whose process ignores SIGTERM (issue 10 item 3): the stop
    lasts its whole grace period, so a runner killed mid-stop leaves an unconfirmed intent
    while the container still runs. Restored means: running, and no stop begun since its
    last start still in flight (it would take the container down at its grace period's end)."""

    kind, action = "docker-stop", "docker.stop"
    GRACE = 2.0
    TERM_MARK = "got-TERM"
    # `wait` returns at once on a trapped signal, so the mark is written when SIGTERM lands.
    COMMAND = ("sh", "-c", f"trap 'echo {TERM_MARK}' TERM; "
               "while true; do sleep 3600 & wait $!; done")

    def params(self) -> str:
        return f"{{grace_period: {self.GRACE:g}s}}"

    def in_effect(self) -> bool:
        state = self.state()
        if state.get("Running") and self.stop_began(state["StartedAt"]):
            # The engine kills at the grace period's end: the stop lands when FinishedAt
            # moves. The bound is generous; the wait ends as soon as it has landed.
            finished = state["FinishedAt"]
            if not wait_until(lambda: self.state()["FinishedAt"] != finished,
                              timeout=self.GRACE + 60):
                return True  # a stop still in flight past its bound: not restored
        return not self.state().get("Running")

    def stop_began(self, started_at: str) -> bool:
        """Did the container's process get SIGTERM since it was last started?"""
        since = docker_time(started_at)
        for line in self.container.logs(timestamps=True).decode(errors="replace").splitlines():
            stamp, _, text = line.partition(" ")
            if text.strip() == self.TERM_MARK and docker_time(stamp) >= since:
                return True
        return False


def docker_time(stamp: str) -> int:
    """An engine's RFC 3339 time (nanoseconds, "Z") as integer nanoseconds since the epoch."""
    seconds, _, fraction = stamp.rstrip("Z").partition(".")
    whole = datetime.strptime(seconds, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return int(whole.timestamp()) * 10**9 + int(fraction.ljust(9, "0")[:9])


TARGETS: dict[str, Callable[[Path], Target]] = {
    "process": ProcessTarget, "proxy": ProxyTarget, "docker": DockerTarget,
    "docker-stop": SlowStopTarget}


@contextlib.contextmanager
def targets(work: Path, kinds: list[str]) -> Iterator[dict[str, Target]]:
    made: dict[str, Target] = {}
    try:
        for kind in kinds:
            made[kind] = TARGETS[kind](work)
        yield made
    finally:
        for target in made.values():
            target.close()


def build_images(*names: str) -> None:
    result = subprocess.run([str(REPO / "images" / "build.sh"), *names], capture_output=True,
                            text=True, timeout=900, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"images/build.sh {' '.join(names)} failed:\n{result.stderr[-2000:]}")


def kinds_here(family: str, docker_kinds: list[str], out: Callable[[str], None]
               ) -> tuple[list[str] | None, str | None]:
    """The target kinds to run (process and proxy, and `docker_kinds` when an engine
    answers) and why Docker is missing. No kinds (said on `out`) when Docker is missing
    and CHAOSRUNNER_REQUIRE names it."""
    missing = docker_available()
    if missing is None:
        return ["process", "proxy", *docker_kinds], None
    if is_required("docker"):
        out(f"{family}: FAILED, Docker is required and unavailable: {missing}")
        return None, missing
    return ["process", "proxy"], missing


def unavailable(service: str, check: str, why: str, out: Callable[[str], None]) -> bool:
    """Say on `out` that `check` cannot run, `service` being missing (`why`): FAILED when
    CHAOSRUNNER_REQUIRE names the service, else skipped. The campaign's result: False when
    the service is required."""
    required = is_required(service)
    out(f"{check}: {'FAILED' if required else 'skipped'}, {why}")
    return not required


def docker_available() -> str | None:
    """None when a Docker engine answers, else why not."""
    try:
        from chaosrunner.drivers.docker import DockerDriver
        from chaosrunner.errors import DriverUnavailable

        DockerDriver().health()
    except ImportError as exc:
        return f"the Docker SDK is missing ({exc})"
    except DriverUnavailable as exc:
        return str(exc)
    return None


# --- runs --------------------------------------------------------------------------------------


@dataclass
class Runner:
    """One `chaosrunner run` in the background, its journal followed as it is written."""

    proc: subprocess.Popen[bytes]
    journal: Path
    stderr: Path
    state: Path
    _seen: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)

    def poll_events(self) -> list[dict[str, Any]]:
        with contextlib.suppress(OSError):
            lines = self.journal.read_text(errors="replace").splitlines()
            for line in lines[self._seen:]:
                with contextlib.suppress(ValueError):
                    self.events.append(json.loads(line))
            self._seen = len(lines)
        return self.events

    def wait_event(self, predicate: Callable[[dict[str, Any]], bool],
                   timeout: float = 60) -> bool:
        """Until an event matches (True), or the runner exits or time is up (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(predicate(e) for e in self.poll_events()):
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.01)
        return False

    def linger(self, seconds: float) -> None:
        """Let up to `seconds` pass while the runner runs: a moment drawn at random, not a
        wait for a condition (it ends early when the runner exits)."""
        if seconds > 0:
            with contextlib.suppress(subprocess.TimeoutExpired):  # still running, as wanted
                self.proc.wait(timeout=seconds)

    def signal(self, number: int) -> bool:
        """Send `number` if the runner still runs; False when it had already exited.

        "Still runs" excludes a process inside the kernel's exit (PF_EXITING): `os._exit`
        was called, its status is decided, and `poll()` says None only until the kernel has
        torn down its threads and memory (milliseconds for a runner with a Docker client).
        A signal sent then is not one the runner could have received."""
        if self.proc.poll() is not None or exiting(self.proc.pid):
            return False
        self.proc.send_signal(number)
        return True

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        return code, self.stderr.read_text(errors="replace")


PF_EXITING = 0x4  # include/linux/sched.h: "getting shut down"


def exiting(pid: int) -> bool:
    """True once the process is in the kernel's exit path (or gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[0] in ("Z", "X") or bool(int(fields[6]) & PF_EXITING)


def write_experiment(work: Path, target: Target, duration: str = "2s") -> Path:
    return write_one_fault_experiment(
        work, f"reliability-{target.kind}", target.action, target.target(),
        params=target.params(), duration=duration, before="500ms", after="500ms",
        hypothesis="whatever happens to the runner, the fault is taken back")


def start(experiment: Path, work: Path, tag: str, *extra: str) -> Runner:
    report = work / f"report-{tag}"
    stderr = work / f"stderr-{tag}.log"
    state = work / "state"
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "chaosrunner", "run", str(experiment), "--state-dir",
             str(state), "--report-dir", str(report), "--allow-exec", *extra],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=err)
    return Runner(proc, report / "journal.jsonl", stderr, state)


def recover(state: Path) -> tuple[int, str]:
    result = subprocess.run([sys.executable, "-m", "chaosrunner", "--state-dir", str(state),
                             "recover"], cwd=REPO, capture_output=True, text=True,
                            timeout=300, check=False)
    return result.returncode, result.stdout + result.stderr


def settle(target: Target, state: Path) -> bool:
    """True when the target is restored and the ledger has nothing open; else heal both."""
    ledger = Ledger(state)
    restored = not target.in_effect() and ledger.open_faults() == []
    if not restored:
        target.heal()
        for item in ledger.open_faults():
            ledger.record_done(item.run_id, item.handle.key, how="campaign cleanup")
    return restored


def phase(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e.get("event") == "phase" and e.get("phase") == name


def event(kind: str, text: str = "") -> Callable[[dict[str, Any]], bool]:
    return lambda e: e.get("event") == kind and text in str(e.get("message", ""))


def fault_sample(e: dict[str, Any]) -> bool:
    return e.get("event") == "sample" and e.get("phase") == "faults"
