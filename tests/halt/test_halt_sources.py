"""Halt sources (issue 13 item 3): the state dir, a ConfigMap, an HTTP URL; `halt --source`,
`halt --clear`, CHAOSRUNNER_HALT_SOURCE; a halt before the start refuses and injects nothing."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import REPO, proc_state, sleeping_process, wait_until
from k8s_fixture import CONFIGMAPS, FakeCluster

from chaosrunner.engine.halt import ConfigMapHalt, HttpHalt, StateDirHalt, parse_source
from chaosrunner.engine.ledger import Ledger
from chaosrunner.errors import InvalidInput
from chaosrunner.testing.experiments import write_one_fault_experiment


@pytest.fixture
def sleepers(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(sleeping_process(tmp_path / f"sleeper{index}.pid"))
               for index in range(2)]


def experiment(tmp_path: Path, name: str, index: int, interval: str = "1s") -> Path:
    return write_one_fault_experiment(
        tmp_path, name, "process.pause", f"{{pid_file: {tmp_path / f'sleeper{index}.pid'}}}",
        hypothesis="a halt reaches every runner", fault="freeze", before=interval,
        after=interval, interval=interval)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "chaosrunner", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def start_run(tmp_path: Path, name: str, index: int, *extra: str,
              env: dict[str, str] | None = None, interval: str = "1s") -> subprocess.Popen[str]:
    return cli("run", str(experiment(tmp_path, name, index, interval)), "--allow-exec",
               "--state-dir", str(tmp_path / f"state-{name}"),
               "--report-dir", str(tmp_path / f"report-{name}"), *extra, env=env)


def injected(tmp_path: Path, name: str) -> bool:
    return any(f.confirmed for f in Ledger(tmp_path / f"state-{name}").open_faults())


def abort_time(tmp_path: Path, name: str) -> float:
    for line in (tmp_path / f"report-{name}" / "journal.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["event"] == "abort":
            return datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()
    raise AssertionError(f"{name}: no abort event")


# --- parsing -----------------------------------------------------------------------------------


def test_parse_source(tmp_path: Path) -> None:
    assert parse_source("k8s://chaos/halt", tmp_path) == ConfigMapHalt("chaos", "halt")
    assert parse_source("http://127.0.0.1:1/halt", tmp_path) == HttpHalt("http://127.0.0.1:1/halt")
    assert parse_source(str(tmp_path), tmp_path) == StateDirHalt(tmp_path)
    for bad in ("k8s://only-namespace", "k8s:///name", "k8s://a/b/c", "ftp://x", "halt"):
        with pytest.raises(InvalidInput, match="halt source"):
            parse_source(bad, tmp_path)


def test_a_bad_halt_source_is_exit_4(tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
                                     ) -> None:
    code, out, err = finish(start_run(tmp_path, "bad", 0, "--halt-source", "k8s://nope"))
    assert code == 4 and "k8s://NAMESPACE/NAME" in err and "Traceback" not in err
    assert proc_state(sleepers[0].pid) != "T"


# --- a ConfigMap ---------------------------------------------------------------------------------


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[FakeCluster, dict[str, str]]]:
    with FakeCluster() as fake:
        yield fake, {"KUBECONFIG": str(fake.write_kubeconfig(tmp_path / "kubeconfig"))}


def test_one_configmap_halt_stops_two_runners_within_one_sample_interval(
        tmp_path: Path, sleepers: list[subprocess.Popen[bytes]],
        cluster: tuple[FakeCluster, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    fake, env = cluster
    source = "k8s://default/chaos-halt"
    # A 2 s sample interval: the halt must stop both runs within it (loaded CI machines).
    runners = [start_run(tmp_path, name, index, env={**env, "CHAOSRUNNER_HALT_SOURCE": source},
                         interval="2s") for index, name in enumerate(("one", "two"))]
    try:
        assert wait_until(lambda: all(injected(tmp_path, n) for n in ("one", "two"))
                          or any(r.poll() is not None for r in runners), timeout=60)
        assert all(r.poll() is None for r in runners), [finish(r) for r in runners]
        monkeypatch.setenv("KUBECONFIG", env["KUBECONFIG"])
        halt = ConfigMapHalt("default", "chaos-halt")
        assert halt.check() is None  # the client is loaded before the clock starts
        set_at = time.time()
        halt.set("fleet stop")
        results = [finish(r) for r in runners]
    finally:
        for runner in runners:
            if runner.poll() is None:
                runner.kill()
                runner.communicate()
    for code, _, err in results:
        assert code == 2, err
    for name in ("one", "two"):
        # The abort follows the halt within one sample interval (2 s).
        took = abort_time(tmp_path, name) - set_at
        print(f"{name}: aborted {took:.3f}s after the halt")
        assert took < 2.0
        report = json.loads((tmp_path / f"report-{name}" / "report.json").read_text())
        assert "fleet stop" in report["abort"]["reason"] and source in report["abort"]["reason"]
    assert all(proc_state(s.pid) in ("S", "R") for s in sleepers)
    configmap = fake.get(CONFIGMAPS, "default", "chaos-halt")
    assert configmap is not None and configmap["data"]["halted"] == "true"


def test_halt_source_cli_sets_refuses_and_clears(
        tmp_path: Path, sleepers: list[subprocess.Popen[bytes]],
        cluster: tuple[FakeCluster, dict[str, str]]) -> None:
    fake, env = cluster
    source = "k8s://default/chaos-halt"
    code, out, err = finish(cli("halt", "--source", source, "--reason", "freeze", env=env))
    assert code == 0 and source in out, err
    # Set before the start: refused with exit 3, nothing injected.
    code, out, err = finish(start_run(tmp_path, "refused", 0, "--halt-source", source, env=env))
    assert code == 3 and "freeze" in out + err, out + err
    assert not list(Ledger(tmp_path / "state-refused").records())
    assert proc_state(sleepers[0].pid) != "T"
    code, out, err = finish(cli("halt", "--clear", "--source", source, env=env))
    assert code == 0 and "cleared" in out, err
    configmap = fake.get(CONFIGMAPS, "default", "chaos-halt")
    assert configmap is not None and configmap["data"]["halted"] == "false"
    # Re-armed: a run starts (and a local halt then stops it).
    runner = start_run(tmp_path, "armed", 1, "--halt-source", source, env=env)
    assert wait_until(lambda: injected(tmp_path, "armed") or runner.poll() is not None,
                      timeout=60)
    assert runner.poll() is None
    code, _, err = finish(cli("halt", "--state-dir", str(tmp_path / "state-armed")))
    assert code == 0, err
    assert finish(runner)[0] == 2
    assert proc_state(sleepers[1].pid) in ("S", "R")


def test_an_unreachable_halt_source_refuses_the_start(
        tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]) -> None:
    code, out, err = finish(start_run(tmp_path, "unreachable", 0, "--halt-source",
                                      "http://127.0.0.1:9/halt"))
    assert code == 3 and "cannot be reached" in out + err
    assert proc_state(sleepers[0].pid) != "T"


# --- an HTTP URL -----------------------------------------------------------------------------------


class HaltStore(BaseHTTPRequestHandler):
    """GET answers 200 with the reason while halted, 404 otherwise; PUT sets, DELETE clears."""

    reason = b""

    def do_GET(self) -> None:
        self._answer(200 if HaltStore.reason else 404, HaltStore.reason)

    def do_PUT(self) -> None:
        HaltStore.reason = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer(204, b"")

    def do_DELETE(self) -> None:
        HaltStore.reason = b""
        self._answer(204, b"")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def halt_url() -> Iterator[str]:
    HaltStore.reason = b""
    server = ThreadingHTTPServer(("127.0.0.1", 0), HaltStore)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/halt"
    finally:
        server.shutdown()
        server.server_close()


def test_an_http_halt_from_the_environment_stops_a_run(
        tmp_path: Path, sleepers: list[subprocess.Popen[bytes]], halt_url: str) -> None:
    env = {"CHAOSRUNNER_HALT_SOURCE": halt_url}
    runner = start_run(tmp_path, "http", 0, env=env)
    try:
        assert wait_until(lambda: injected(tmp_path, "http") or runner.poll() is not None,
                          timeout=60)
        assert runner.poll() is None, finish(runner)
        code, out, err = finish(cli("halt", "--reason", "from the pager", env=env))
        assert code == 0 and halt_url in out, err
        assert HaltStore.reason == b"from the pager"
        code, _, err = finish(runner)
    finally:
        with contextlib.suppress(ProcessLookupError):
            runner.kill()
    assert code == 2, err
    assert proc_state(sleepers[0].pid) in ("S", "R")
    report = json.loads((tmp_path / "report-http" / "report.json").read_text())
    assert "from the pager" in report["abort"]["reason"]
    code, out, err = finish(cli("halt", "--clear", env=env))
    assert code == 0 and HaltStore.reason == b""


def test_a_state_dir_halt_left_from_before_refuses_until_cleared(
        tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]) -> None:
    state = str(tmp_path / "state-local")
    assert finish(cli("halt", "--state-dir", state, "--reason", "incident"))[0] == 0
    code, out, err = finish(start_run(tmp_path, "local", 0))
    assert code == 3 and "incident" in out + err
    assert proc_state(sleepers[0].pid) != "T"
    assert finish(cli("halt", "--clear", "--state-dir", state))[0] == 0
    assert not (tmp_path / "state-local" / "HALT").exists()


def test_halt_ends_a_running_game_day(tmp_path: Path,
                                      sleepers: list[subprocess.Popen[bytes]]) -> None:
    """Issue 12 item 4: with stop_on: never the next experiment used to start after a halt."""
    for index, name in enumerate(("first", "second")):
        experiment(tmp_path, name, index)
    (tmp_path / "day.yaml").write_text(
        "apiVersion: chaosrunner/v1\nkind: GameDay\nname: day\n"
        "experiments: [first.yaml, second.yaml]\nstop_on: never\n")
    state = tmp_path / "state"
    day = cli("gameday", str(tmp_path / "day.yaml"), "--allow-exec", "--state-dir", str(state),
              "--report-dir", str(tmp_path / "day"))
    try:
        assert wait_until(lambda: any(f.confirmed for f in Ledger(state).open_faults())
                          or day.poll() is not None, timeout=60)
        assert day.poll() is None, finish(day)
        assert finish(cli("halt", "--state-dir", str(state), "--reason", "pager"))[0] == 0
        code, out, err = finish(day)
    finally:
        if day.poll() is None:
            day.kill()
            day.communicate()
    assert code == 2, out + err
    assert all(proc_state(s.pid) in ("S", "R") for s in sleepers)
    data = json.loads((tmp_path / "day" / "gameday.json").read_text())
    assert "pager" in data["halted"] and "halted: pager" in data["reason"]
    assert [e["status"] for e in data["experiments"]] == ["ran", "skipped"]
    # The first experiment's fault was confirmed above: the ledger holds its run, only.
    runs = {r["run"] for r in Ledger(state).records() if "run" in r}
    assert runs and all(run.startswith("first") for run in runs), runs


def test_a_bare_name_is_refused_with_how_to_write_a_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"'halts'.*write it as \./halts"):
        parse_source("halts", tmp_path)
    assert parse_source("./halts", tmp_path) == StateDirHalt(Path("./halts"))
