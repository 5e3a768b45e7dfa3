"""The load.http driver: real Locust child processes against a real HTTP server."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import free_port, wait_until
from load_support import CountingServer, counting_server

from chaosrunner.drivers.base import DEADLINE_PARAM, Handle, Instance, ParamError, get_driver
from chaosrunner.errors import DriverError
from chaosrunner.load.driver import LoadDriver, load_processes, read_status
from chaosrunner.testing.contract import ContractCase, DriverContract

pytestmark = pytest.mark.slow


@pytest.fixture
def server() -> Iterator[CountingServer]:
    with counting_server() as s:
        yield s


def on_server(server: CountingServer, options: dict[str, Any]
              ) -> tuple[LoadDriver, Instance, dict[str, Any]]:
    """A LoadDriver, `server` as its one load.http instance, `options` validated."""
    driver = LoadDriver()
    params = driver.validate("load.http", {"url": server.url}, options)
    [instance] = driver.resolve("load.http", {"url": server.url})
    return driver, instance, params


@contextlib.contextmanager
def injected(driver: LoadDriver, instance: Instance, params: dict[str, Any], key: str
             ) -> Iterator[Handle]:
    """The load injected as fault `key`; reverted at the end, whatever happened."""
    handle = driver.inject(instance, "load.http", params, key)
    try:
        yield handle
    finally:
        driver.revert(handle)


class TestLoadDriver(DriverContract):
    @pytest.fixture
    def case(self, server: CountingServer) -> ContractCase:
        return ContractCase(LoadDriver(), "load.http", {"url": server.url}, {"rate": "20/s"},
                            faulted=lambda instance: server.busy(),
                            settle=lambda check: wait_until(check, timeout=20))


def test_registered_like_the_other_drivers() -> None:
    assert isinstance(get_driver("load"), LoadDriver)


@pytest.mark.parametrize(("target", "params", "where"), [
    ({"url": "ftp://x"}, {"rate": 1}, ("target", "url")),
    ({}, {"rate": 1}, ("target",)),
    ({"url": "http://127.0.0.1:1"}, {}, ("with",)),
    ({"url": "http://127.0.0.1:1"}, {"rate": 1, "users": 2}, ("with",)),
    ({"url": "http://127.0.0.1:1"}, {"rate": "fast"}, ("with", "rate")),
    ({"url": "http://127.0.0.1:1"}, {"users": 0}, ("with", "users")),
    ({"url": "http://127.0.0.1:1"}, {"rate": 1, "workers": 0}, ("with", "workers")),
    ({"url": "http://127.0.0.1:1"}, {"rate": 1, "master": "nohost"}, ("with", "master")),
    ({"url": "http://127.0.0.1:1"}, {"rate": 1, "workers": 2, "master": "h:1"},
     ("with", "master")),
    ({"url": "http://127.0.0.1:1"}, {"rate": 1, "urls": [{"url": "/a", "weight": -1}]},
     ("with", "urls", 0, "weight")),
    ({"url": "http://127.0.0.1:1"}, {"rate": 1, "method": "BREW"}, ("with", "urls", 0, "method")),
    ({"url": "http://127.0.0.1:1"}, {"rate": 1, "rps": 3}, ("with", "rps")),
    ({"url": "http://127.0.0.1:1"}, {"rate": "1000000/s"}, ("with", "rate")),
    ({"url": "http://127.0.0.1:1"}, {"users": 10**9}, ("with", "users")),
    ({"url": "http://127.0.0.1:1"}, {"rate": 1, "timeout": "soon"}, ("with", "timeout")),
    ({"url": "http://127.0.0.1:1"}, {"rate": 1, "body": 3}, ("with", "urls", 0, "body")),
    ({"url": "http://127.0.0.1:1"}, {"rate": 1, "urls": []}, ("with", "urls")),
])
def test_bad_parameters_name_the_key(target: dict[str, object], params: dict[str, object],
                                     where: tuple[object, ...]) -> None:
    with pytest.raises(ParamError) as info:
        LoadDriver().validate("load.http", target, params)
    assert info.value.key_path == where


def test_urls_weights_method_headers_body_reach_the_target(server: CountingServer) -> None:
    driver, instance, params = on_server(server, {
        "users": 4, "headers": {"X-Load": "chaosrunner"},
        "urls": [{"url": "/checkout", "method": "POST", "body": {"item": 1}, "weight": 3},
                 "/healthz"]})
    with injected(driver, instance, params, f"t-{os.getpid()}.urls.0"):
        assert wait_until(lambda: server.count >= 400, timeout=60)
    assert b'{"item": 1}' in server.bodies
    posted = server.bodies.index(b'{"item": 1}')
    assert server.headers[posted].get("Content-Type") == "application/json"  # a mapping body
    assert all(h.get("X-Load") == "chaosrunner" for h in server.headers)
    # weight 3 against 1: 75% POST; with 400+ requests 0.6..0.9 is five standard deviations
    assert 0.6 < server.methods["POST"] / server.count < 0.9


def test_runner_sigkill_stops_the_load_and_the_ledger_handle_reverts(
        server: CountingServer) -> None:
    key = f"t-{os.getpid()}.killed.0"
    script = textwrap.dedent(f"""
        import json, sys, time
        from chaosrunner.load.driver import LoadDriver
        d = LoadDriver()
        p = d.validate("load.http", {{"url": "{server.url}"}}, {{"rate": "20/s"}})
        [i] = d.resolve("load.http", {{"url": "{server.url}"}})
        h = d.inject(i, "load.http", p, "{key}")
        print(json.dumps(h.to_json()), flush=True)
        time.sleep(300)
    """)
    runner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert runner.stdout is not None
        handle = Handle.from_json(json.loads(runner.stdout.readline()))
        assert handle.data["pid"] == handle.data["pgid"] and load_processes(key)
        assert wait_until(server.busy, timeout=20)
        runner.send_signal(signal.SIGKILL)
        runner.wait()
        # The Locust process notices its runner is gone and stops by itself...
        assert wait_until(lambda: not load_processes(key), timeout=20)
        assert wait_until(lambda: not server.busy(), timeout=20)
    finally:
        runner.kill()
        runner.wait()
        runner.stdout.close()  # type: ignore[union-attr]
        # ...and `recover`'s revert of the recorded handle is then a no-op.
        LoadDriver().revert(handle)
    assert not load_processes(key)


def test_two_local_workers_deliver_the_asked_rate_within_10_percent(
        server: CountingServer) -> None:
    """Counted at the target over 10 s from the moment Locust says all 20 users (100/s at
    5/s each) run on its two workers, not after a guess at how long spawning takes."""
    driver, instance, params = on_server(server, {"rate": "100/s", "workers": 2})
    key = f"t-{os.getpid()}.workers.0"
    with injected(driver, instance, params, key) as handle:
        status = Path(str(handle.data["status"]))
        assert len(load_processes(key)) == 3  # the master and its two workers
        assert wait_until(lambda: any(x.get("users") == 20 and x.get("workers") == 2
                                      for x in read_status(status)), timeout=60)
        delivered = server.rate_over(10.0)
    print(f"delivered {delivered:.1f}/s of 100/s")
    assert 90 <= delivered <= 110, delivered
    assert not load_processes(key)


def test_master_drives_a_load_worker_started_before_it_and_again_after(
        server: CountingServer) -> None:
    port = free_port()
    worker = subprocess.Popen([sys.executable, "-m", "chaosrunner", "load-worker", "--master",
                               f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    driver, instance, params = on_server(server, {"rate": "20/s",
                                                  "master": f"127.0.0.1:{port}"})
    try:
        for run in range(2):  # the worker serves one master after the other
            with injected(driver, instance, params, f"t-{os.getpid()}.m.{run}"):
                assert wait_until(server.busy, timeout=30)
            assert wait_until(lambda: not server.busy(), timeout=20)
            assert worker.poll() is None
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_master_without_its_workers_is_a_driver_error_and_leaves_nothing(
        server: CountingServer) -> None:
    driver, instance, params = on_server(server, {
        "rate": "20/s", "master": f"127.0.0.1:{free_port()}", "start_timeout": "1s"})
    key = f"t-{os.getpid()}.noworkers.0"
    with pytest.raises(DriverError, match="0 of 1 Locust workers"):
        driver.inject(instance, "load.http", params, key)
    assert not load_processes(key)


def test_the_load_stops_by_itself_at_the_faults_deadline(server: CountingServer) -> None:
    driver, instance, params = on_server(server, {"rate": "20/s"})
    assert driver.accepts_deadline
    key = f"t-{os.getpid()}.deadline.0"
    with injected(driver, instance, {**params, DEADLINE_PARAM: time.time() + 2},
                  key) as handle:
        assert wait_until(lambda: not load_processes(key), timeout=30)
    assert DEADLINE_PARAM not in handle.params


def test_env_secrets_reach_the_target_but_never_the_handle(
        server: CountingServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSRUNNER_TEST_LOAD_TOKEN", "s3cret")
    driver, instance, params = on_server(server, {
        "users": 1, "headers": {"Authorization": "Bearer ${env:CHAOSRUNNER_TEST_LOAD_TOKEN}"}})
    with injected(driver, instance, params, f"t-{os.getpid()}.env.0") as handle:
        assert wait_until(lambda: server.count >= 3, timeout=30)
    assert server.headers[0]["Authorization"] == "Bearer s3cret"
    assert "s3cret" not in json.dumps(handle.to_json())
    monkeypatch.delenv("CHAOSRUNNER_TEST_LOAD_TOKEN")
    with pytest.raises(DriverError, match="CHAOSRUNNER_TEST_LOAD_TOKEN"):
        driver.inject(instance, "load.http", params, f"t-{os.getpid()}.env.1")


def test_old_work_directories_are_swept_and_fresh_ones_kept(tmp_path: Path) -> None:
    from chaosrunner.load.driver import WORKDIR_KEEP, sweep_old_workdirs

    old = Path(tempfile.mkdtemp(prefix="chaosrunner-load-"))
    (old / "status.jsonl").write_text("{}\n")
    fresh = Path(tempfile.mkdtemp(prefix="chaosrunner-load-"))
    (fresh / "status.jsonl").write_text("{}\n")
    stale = time.time() - WORKDIR_KEEP - 60
    os.utime(old / "status.jsonl", (stale, stale))
    try:
        sweep_old_workdirs()
        assert not old.exists() and fresh.exists()
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def test_ramp_spawns_the_users_gradually(server: CountingServer) -> None:
    driver, instance, params = on_server(server, {"rate": "40/s", "per_user": "2/s",
                                                  "ramp": "5s"})
    with injected(driver, instance, params, f"t-{os.getpid()}.ramp.0") as handle:
        status = Path(str(handle.data["status"]))
        assert wait_until(lambda: any(x.get("users") == 20 for x in read_status(status)),
                          timeout=60)
    counts = [x["users"] for x in read_status(status) if x["state"] == "running"]
    assert counts[0] < 20 and any(0 < c < 20 for c in counts), counts  # not all at once
