"""Start and stop the whole demo shop as local child processes.

    with Shop.start(base_port=8080, replicas=4, state_dir=".chaosrunner/shop") as shop:
        httpx.get(shop.checkout_endpoint)          # http://127.0.0.1:8080/checkout
        shop.payments_pid_files                     # one pid file per replica
    # every process is gone here

Ports: checkout listens on `base_port`, payments replica i (1-based) on
`base_port + i`. In `state_dir` each service gets `<name>.pid`, `<name>.log` and
`<name>.journal` (the record the no-data-loss audit reads; see `Shop.audit`).

Command line, in the foreground until Ctrl-C or SIGTERM:

    python -m chaosrunner.demo.shop up [--base-port 8080] [--replicas 4] [--state-dir D]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

from chaosrunner.errors import ChaosRunnerError

DEFAULT_BASE_PORT = 8080
DEFAULT_REPLICAS = 4
DEFAULT_SHOP_NAME = "demo"


class ShopError(ChaosRunnerError):
    """The shop could not be started (port taken, a service died, too slow to answer)."""


@dataclass(frozen=True)
class Service:
    """One running service of the shop."""

    name: str
    port: int
    url: str
    pid_file: Path
    log_file: Path
    journal: Path
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass(frozen=True)
class OrderAudit:
    """The no-data-loss check: accepted orders against the payments' confirmations."""

    accepted: int
    confirmed: int
    unconfirmed: tuple[str, ...]

    @property
    def lost(self) -> bool:
        return bool(self.unconfirmed)


class Shop:
    """The running shop: one checkout and N payments replicas, all children of this process."""

    def __init__(self, state_dir: Path, host: str) -> None:
        self.state_dir = state_dir
        self.host = host
        self.payments: list[Service] = []
        self.checkout: Service | None = None
        self._logs: list[IO[bytes]] = []
        self._stopped = threading.Event()
        self._reaper: threading.Thread | None = None

    # --- starting -------------------------------------------------------------------------

    @classmethod
    def start(cls, *, base_port: int = DEFAULT_BASE_PORT, replicas: int = DEFAULT_REPLICAS,
              state_dir: str | Path = ".chaosrunner/shop", host: str = "127.0.0.1",
              startup_timeout: float = 15.0, shop_name: str = DEFAULT_SHOP_NAME,
              payments_delay_ms: float = 0.0, checkout_args: Sequence[str] = (),
              die_with_parent: bool = True) -> Shop:
        """Start every service and wait until each answers /healthz.

        Raises ShopError when a port is taken, a service exits, or one does not
        answer within `startup_timeout` seconds; whatever was started is stopped
        first. `shop_name` is passed to every service as `--shop NAME`, so that a
        `cmdline_regex` can tell this shop's processes from another shop's.
        `die_with_parent` asks the kernel to SIGTERM the services when the thread
        that started them ends, so not even a SIGKILLed caller leaves them behind;
        turn it off when calling from a short-lived thread.
        """
        ports = _plan_ports(base_port, replicas)
        shop = cls(Path(state_dir), host)
        shop.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            _check_ports_free(host, ports)
            launch = _Launcher(shop, shop_name, die_with_parent)
            for index, port in enumerate(ports[1:], start=1):
                shop.payments.append(launch.payments(index, port, payments_delay_ms))
            payment_urls = ",".join(service.url for service in shop.payments)
            shop.checkout = launch.checkout(ports[0], payment_urls, checkout_args)
            shop._wait_healthy(startup_timeout)
        except BaseException:
            shop.stop()
            raise
        shop._start_reaper()
        return shop

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0) as client:
            for service in self.services:
                _wait_for(service, client, deadline, timeout)

    def _start_reaper(self) -> None:
        # A replica killed by an experiment would stay a zombie (and its pid file
        # would name it) until someone waits for it; a supervisor would notice.
        self._reaper = threading.Thread(target=self._reap, name="shop-reaper", daemon=True)
        self._reaper.start()

    def _reap(self) -> None:
        while not self._stopped.wait(0.2):
            for service in self.services:
                if not service.alive:
                    _remove_pid_file_of(service)

    # --- what callers use -----------------------------------------------------------------

    @property
    def services(self) -> list[Service]:
        """Every service started, payments replicas first."""
        return [*self.payments, *([self.checkout] if self.checkout else [])]

    @property
    def checkout_url(self) -> str:
        """Base URL of checkout, e.g. http://127.0.0.1:8080."""
        if self.checkout is None:
            raise ShopError("the shop has no checkout service (start failed or not started)")
        return self.checkout.url

    @property
    def checkout_endpoint(self) -> str:
        """The URL the steady-state probe requests: <checkout_url>/checkout."""
        return f"{self.checkout_url}/checkout"

    @property
    def payments_urls(self) -> tuple[str, ...]:
        return tuple(service.url for service in self.payments)

    @property
    def payments_pid_files(self) -> tuple[Path, ...]:
        return tuple(service.pid_file for service in self.payments)

    def alive_payments(self) -> list[Service]:
        """The payments replicas whose process is still running."""
        return [service for service in self.payments if service.alive]

    def audit(self) -> OrderAudit:
        """Check from the journals that every accepted order was confirmed by some replica.

        Reads files, not the services, so replicas that were killed still count.
        """
        if self.checkout is None:
            raise ShopError("the shop has no checkout service to audit")
        accepted = _journal_ids(self.checkout.journal)
        confirmed: set[str] = set()
        for service in self.payments:
            confirmed.update(_journal_ids(service.journal))
        missing = tuple(sorted(set(accepted) - confirmed))
        return OrderAudit(accepted=len(accepted), confirmed=len(confirmed), unconfirmed=missing)

    # --- stopping -------------------------------------------------------------------------

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM every service, SIGKILL what is left after `timeout`, wait for all.

        Idempotent; safe on a half-started shop.
        """
        self._stopped.set()
        if self._reaper is not None and self._reaper is not threading.current_thread():
            self._reaper.join()
        services = list(reversed(self.services))  # checkout first: it calls the others
        for service in services:
            if service.alive:
                with contextlib.suppress(ProcessLookupError):
                    service.process.terminate()
        deadline = time.monotonic() + timeout
        for service in services:
            try:
                service.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait()
            _remove_pid_file_of(service)
        for log in self._logs:
            log.close()
        self._logs.clear()

    def __enter__(self) -> Shop:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


class _Launcher:
    """Builds the command lines and spawns the services of one shop."""

    def __init__(self, shop: Shop, shop_name: str, die_with_parent: bool) -> None:
        self.shop = shop
        self.shop_name = shop_name
        self.preexec = _parent_death_signal() if die_with_parent else None

    def payments(self, index: int, port: int, delay_ms: float) -> Service:
        name = f"payments-{index}"
        return self._spawn(name, port, "chaosrunner.demo.payments",
                           ["--name", name, "--delay-ms", str(delay_ms)])

    def checkout(self, port: int, payment_urls: str, extra: Sequence[str]) -> Service:
        return self._spawn("checkout", port, "chaosrunner.demo.checkout",
                           ["--name", "checkout", "--payments", payment_urls, *extra])

    def _spawn(self, name: str, port: int, module: str, args: list[str]) -> Service:
        state = self.shop.state_dir
        pid_file, log_file, journal = (state / f"{name}.pid", state / f"{name}.log",
                                       state / f"{name}.journal")
        journal.write_bytes(b"")  # a fresh audit for every start
        log = log_file.open("wb")
        self.shop._logs.append(log)
        argv = [sys.executable, "-m", module, "--port", str(port), "--host", self.shop.host,
                *args, "--pid-file", str(pid_file), "--journal", str(journal),
                "--shop", self.shop_name]
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, preexec_fn=self.preexec)
        return Service(name=name, port=port, url=f"http://{self.shop.host}:{port}",
                       pid_file=pid_file, log_file=log_file, journal=journal, process=process)


def _plan_ports(base_port: int, replicas: int) -> list[int]:
    if replicas < 1:
        raise ShopError(f"replicas must be at least 1, got {replicas}")
    if base_port < 1 or base_port + replicas > 65535:
        raise ShopError(f"ports {base_port}..{base_port + replicas} are not all valid TCP "
                        "ports; choose a base port between 1024 and 65000")
    return [base_port + offset for offset in range(replicas + 1)]


def _check_ports_free(host: str, ports: list[int]) -> None:
    for port in ports:
        role = "checkout" if port == ports[0] else f"payments-{port - ports[0]}"
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # Same option as the services: a port in TIME_WAIT is free, one in LISTEN is not.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise ShopError(
                    f"cannot start the shop: port {port} on {host} (for {role}) is not free "
                    f"({exc.strerror}); stop what uses it (is a shop already running?) "
                    "or choose another base port") from None


def _wait_for(service: Service, client: httpx.Client, deadline: float, timeout: float) -> None:
    url = f"{service.url}/healthz"
    while True:
        if not service.alive:
            raise ShopError(f"{service.name} exited with code {service.process.returncode} "
                            f"while starting; its log {service.log_file} ends with:\n"
                            f"{_tail(service.log_file)}")
        try:
            answer = client.get(url)
            # The pid check makes sure it is our process answering, not a stranger.
            if answer.status_code == 200 and answer.json().get("pid") == service.pid:
                return
        except (httpx.HTTPError, ValueError):
            pass
        if time.monotonic() >= deadline:
            raise ShopError(f"{service.name} did not answer {url} within {timeout:g}s; "
                            f"see {service.log_file}")
        time.sleep(0.05)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


def _remove_pid_file_of(service: Service) -> None:
    """Remove a dead service's pid file, if it still names that service."""
    with contextlib.suppress(OSError, ValueError):
        if int(service.pid_file.read_text().strip()) == service.pid:
            service.pid_file.unlink()


def _journal_ids(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [line.split(" ", 1)[0] for line in text.splitlines() if line.strip()]


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec function that makes the child get SIGTERM when its parent dies (Linux)."""
    name = ctypes.util.find_library("c")
    if not sys.platform.startswith("linux") or name is None:
        return None
    prctl = ctypes.CDLL(name, use_errno=True).prctl  # resolved here, not in the forked child
    pr_set_pdeathsig = 1

    def set_signal() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGTERM))

    return set_signal


# --- command line -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`up`: run the shop in the foreground until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m chaosrunner.demo.shop",
                                     description="Run the demo shop in the foreground.")
    parser.add_argument("command", choices=["up"])
    parser.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT)
    parser.add_argument("--replicas", type=int, default=DEFAULT_REPLICAS)
    parser.add_argument("--state-dir", default=".chaosrunner/shop")
    args = parser.parse_args(argv)
    try:
        shop = Shop.start(base_port=args.base_port, replicas=args.replicas,
                          state_dir=args.state_dir)
    except ShopError as exc:
        print(f"shop: {exc}", file=sys.stderr)
        return 1
    # Blocked only now: the services must not inherit a blocked mask they did not ask for.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    with shop:
        print(f"checkout: {shop.checkout_endpoint}")
        for service in shop.payments:
            print(f"{service.name}: {service.url} (pid file {service.pid_file})")
        print("Ctrl-C stops the shop", flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
