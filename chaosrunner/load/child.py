"""The Locust process behind a `load.http` fault. Runs only as a child process:

    python -m chaosrunner.load.child run CONFIG.json --key KEY      local, or master + workers
    python -m chaosrunner.load.child worker HOST:PORT [--key KEY]   one Locust worker

Importing this module imports Locust, which monkey-patches the process for gevent: the
runner never imports it (see chaosrunner.load). `run` writes one JSON line a second to
the status file named in the config (`state`, `step`, `rate`, `users`, `requests`,
`failures`, `workers`, wall time `t`), stops on SIGTERM/SIGINT, when its deadline
passes, and when the runner that started it is gone (its parent changed): the load never
outlives the runner by more than about a second, even after a SIGKILL.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import gevent
import gevent.event
from locust import FastHttpUser, task
from locust.env import Environment
from locust.runners import MasterRunner, Runner, WorkerRunner

from chaosrunner.load.settings import resolve_env, users_for

CONFIG_MESSAGE = "chaosrunner_config"
MARKER = "chaosrunner.load.child"


class Traffic(FastHttpUser):
    """One virtual user: picks a url by weight, sends it, then keeps its pace."""

    host = "http://127.0.0.1"
    urls: Sequence[Mapping[str, Any]] = ()
    weights: Sequence[float] = ()

    @task
    def hit(self) -> None:
        if not self.urls:  # a worker that has not had the master's config yet
            gevent.sleep(0.1)
            return
        entry = random.choices(self.urls, weights=self.weights)[0]
        self.client.request(entry["method"], entry["url"], headers=entry["headers"],
                            data=entry["body"], name=entry["name"])


def configure(config: Mapping[str, Any]) -> None:
    """Set the user class from a config (the master sends it to every worker)."""
    urls = [{**u, "headers": {k: resolve_env(v, os.environ) for k, v in u["headers"].items()},
             "body": None if u["body"] is None else resolve_env(u["body"], os.environ)}
            for u in config["urls"]]
    Traffic.urls = urls
    Traffic.weights = [float(u["weight"]) for u in urls]
    Traffic.host = str(urls[0]["url"])
    Traffic.network_timeout = float(config["timeout"])
    Traffic.connection_timeout = float(config["timeout"])
    per_user = config.get("per_user")
    if per_user:
        Traffic.wait_time = paced(float(per_user))  # type: ignore[method-assign,assignment]


def paced(per_second: float) -> Callable[[Traffic], float]:
    """A wait that starts each task on a fixed schedule (Locust's constant_throughput
    loses the scheduling delay of every wait, so it undershoots by some percent). A user
    that falls more than one interval behind (a slow target) restarts its schedule
    instead of bursting to catch up."""
    interval = 1.0 / per_second

    def wait_time(user: Traffic) -> float:
        now = time.monotonic()
        last: float | None = user.__dict__.get("_due")
        due = now + random.uniform(0.0, interval) if last is None \
            else max(last + interval, now - interval)
        user.__dict__["_due"] = due
        return max(0.0, due - now)

    return wait_time


def schedule(config: Mapping[str, Any]) -> list[tuple[float, float | None]]:
    """(offset, rate) steps; rate None means the fixed `users:`."""
    if config.get("steps"):
        return [(float(a), float(b)) for a, b in config["steps"]]
    return [(0.0, float(config["rate"]) if config.get("rate") else None)]


class Status:
    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, **fields: Any) -> None:
        with self.path.open("a") as out:
            out.write(json.dumps({"t": round(time.time(), 3), **fields}) + "\n")


# --- run: local or master -------------------------------------------------------------------

def run(config_path: Path, key: str) -> int:
    config = json.loads(config_path.read_text())
    configure(config)
    status = Status(Path(config["status"]))
    env = Environment(user_classes=[Traffic], stop_timeout=1.0)
    distributed = bool(config.get("workers") or config.get("master"))
    runner = _start_runner(env, config, key) if distributed else env.create_local_runner()
    stop = gevent.event.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(number, stop.set)
    try:
        if distributed and not _wait_for_workers(runner, config, stop, status):
            return 3
        _drive(runner, config, stop, status)
    finally:
        _stop(runner, status)
    return 0


def _start_runner(env: Environment, config: Mapping[str, Any], key: str) -> Runner:
    if config.get("master"):
        host, _, port = str(config["master"]).rpartition(":")
        return env.create_master_runner(host, int(port))
    master = env.create_master_runner("127.0.0.1", 0)
    bound = master.server.port
    for _ in range(int(config["workers"])):
        # Workers share this process group (the driver made it), so one killpg stops all.
        subprocess.Popen([sys.executable, "-m", MARKER, "worker", f"127.0.0.1:{bound}",
                          f"--key={key}"], stdin=subprocess.DEVNULL)
    return master


def _wait_for_workers(runner: Runner, config: Mapping[str, Any], stop: gevent.event.Event,
                      status: Status) -> bool:
    assert isinstance(runner, MasterRunner)
    wanted = int(config["expect_workers"])
    deadline = time.monotonic() + float(config["start_timeout"])
    while len(runner.clients.ready) < wanted:
        runner.send_message(CONFIG_MESSAGE, dict(config))
        if time.monotonic() > deadline or stop.wait(0.2) or _orphaned(config):
            status.write(state="failed", message=f"{len(runner.clients.ready)} of {wanted} "
                         f"Locust workers connected within {config['start_timeout']:g}s")
            return False
    runner.send_message(CONFIG_MESSAGE, dict(config))
    return True


def _drive(runner: Runner, config: Mapping[str, Any], stop: gevent.event.Event,
           status: Status) -> None:
    steps = schedule(config)
    start, current = time.monotonic(), -1
    while True:
        elapsed = time.monotonic() - start
        index = max(i for i, (offset, _) in enumerate(steps) if offset <= elapsed)
        if index != current:
            current = index
            _apply_step(runner, config, steps[index][1], first=index == 0)
        _report(runner, status, "running", current, steps[current][1])
        if isinstance(runner, MasterRunner):
            runner.send_message(CONFIG_MESSAGE, dict(config))  # workers that joined late
        if stop.wait(1.0) or _orphaned(config) or time.time() > float(config["deadline"]):
            return


def _apply_step(runner: Runner, config: Mapping[str, Any], rate: float | None,
                first: bool) -> None:
    users = users_for(config, rate)
    ramp = float(config["ramp"]) if first else 0.0
    spawn_rate = users / ramp if ramp > 0 else max(float(users), 1.0) * 20
    runner.start(users, spawn_rate=spawn_rate)


def _report(runner: Runner, status: Status, state: str, step: int, rate: float | None) -> None:
    total = runner.stats.total
    workers = len(runner.clients.all) if isinstance(runner, MasterRunner) else 0
    status.write(state=state, step=step, rate=rate, users=runner.user_count,
                 requests=total.num_requests, failures=total.num_failures, workers=workers)


def _orphaned(config: Mapping[str, Any]) -> bool:
    return os.getppid() != int(config["parent"])


def _stop(runner: Runner, status: Status) -> None:
    # quit, not just stop: our own workers exit; a `chaosrunner load-worker` elsewhere
    # starts a fresh Locust worker that announces itself to the next master.
    runner.quit()
    _report(runner, status, "stopped", -1, None)


# --- worker ----------------------------------------------------------------------------------

def worker(master: str, once: bool = False) -> int:
    """A Locust worker for chaosrunner's traffic. once=True (started by `run`): it ends
    with its master, or as soon as its parent is gone. once=False (`chaosrunner
    load-worker`): it reconnects whenever its master goes away, ready for the next run."""
    host, _, port = master.rpartition(":")
    stop = gevent.event.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(number, stop.set)
    parent = os.getppid()
    while not stop.is_set():
        env = Environment(user_classes=[Traffic], stop_timeout=1.0)
        runner = env.create_worker_runner(host, int(port))
        runner.register_message(CONFIG_MESSAGE, lambda environment, msg, **_: configure(msg.data))
        finished = gevent.spawn(runner.greenlet.join)  # the runner quit (master said so)
        while not finished.dead and not stop.wait(0.5):
            if once and os.getppid() != parent:
                stop.set()
        if stop.is_set():
            _quit_worker(runner)
        if once:
            break
    return 0


def _quit_worker(runner: WorkerRunner) -> None:
    runner.stop()
    runner.greenlet.kill(block=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MARKER}")
    commands = parser.add_subparsers(dest="command", required=True)
    run_cmd = commands.add_parser("run")
    run_cmd.add_argument("config", type=Path)
    run_cmd.add_argument("--key", required=True)
    worker_cmd = commands.add_parser("worker")
    worker_cmd.add_argument("master")
    worker_cmd.add_argument("--key", default="")
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.config, args.key)
    # A worker started by `run` (it has a key) ends with its master; others reconnect.
    return worker(args.master, once=bool(args.key))


if __name__ == "__main__":
    sys.exit(main())
