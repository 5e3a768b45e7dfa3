"""Benchmark of `chaosrunner proxy` against direct loopback and a socat relay, in one run.

    .venv/bin/python bench/proxy_bench.py [--bytes 512M] [--rounds 3] [--rtts 3000]
                                          [--connections 10000] [--skip-socat]

Measures, side by side on this machine:
  1. bulk throughput (one TCP stream into a sink): direct, socat, proxy (no toxics);
  2. round-trip time of 100-byte request/response pairs: p50/p99 and the latency each
     relay adds over direct loopback;
  3. connections held open through the proxy at once (bounded by RLIMIT_NOFILE: the
     proxy holds two sockets per connection, so a hard limit of 20000 caps it near 9,990);
  4. latency-toxic accuracy: 100 ms asked, p50 of the added round-trip latency.

Every server runs in its own process (sink/echo servers, socat, the proxy) so the
client's Python does not share a GIL with the relay under test. Prints medians and the
ratios the issue's goals are stated in.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


# --- helper servers (run as subprocesses of this script) -------------------------------------


class _Sink(asyncio.BufferedProtocol):
    """Counts bytes until EOF, then answers with the count (8 bytes) and closes."""

    def __init__(self) -> None:
        self.buf = bytearray(1 << 20)
        self.count = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buf

    def buffer_updated(self, nbytes: int) -> None:
        self.count += nbytes

    def eof_received(self) -> bool:
        self.transport.write(self.count.to_bytes(8, "big"))  # type: ignore[attr-defined]
        self.transport.close()
        return False


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


def _raise_nofile() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def serve(kind: str) -> None:
    """Run a sink or echo server; prints its port on stdout."""
    _raise_nofile()

    async def main() -> None:
        factory = _Sink if kind == "sink" else _Echo
        server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0,
                                                                backlog=4096)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def run_proxy() -> None:
    """The proxy under test, with the file limit raised to the hard limit."""
    _raise_nofile()
    sys.path.insert(0, str(ROOT))
    from chaosrunner.cli.main import main

    sys.exit(main(["proxy", "--port", os.environ["BENCH_API_PORT"]]))


# --- process plumbing --------------------------------------------------------------------------


@contextlib.contextmanager
def helper(kind: str) -> Iterator[int]:
    proc = subprocess.Popen([PY, __file__, "--serve", kind], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port}")


@contextlib.contextmanager
def socat(upstream: int) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork",
                             f"TCP:127.0.0.1:{upstream}"])
    try:
        wait_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


class ProxyProcess:
    def __init__(self) -> None:
        self.api_port = free_port()
        env = {**os.environ, "BENCH_API_PORT": str(self.api_port)}
        self.proc = subprocess.Popen([PY, __file__, "--run-proxy"], env=env,
                                     stdout=subprocess.DEVNULL)
        wait_port(self.api_port)
        self.url = f"http://127.0.0.1:{self.api_port}"

    def call(self, method: str, path: str, body: object | None = None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def add_proxy(self, name: str, upstream: int) -> int:
        proxy = self.call("POST", "/proxies", {"name": name, "listen": "127.0.0.1:0",
                                               "upstream": f"127.0.0.1:{upstream}"})
        assert isinstance(proxy, dict)
        return int(proxy["listen"].rsplit(":", 1)[1])

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


# --- measurements ------------------------------------------------------------------------------


def throughput(port: int, total: int) -> float:
    """MB/s (10^6) of one stream of `total` bytes into the sink behind `port`."""
    block = memoryview(bytes(1 << 20))
    with socket.create_connection(("127.0.0.1", port)) as sock:
        start = time.perf_counter()
        sent = 0
        while sent < total:
            sent += sock.send(block[: min(len(block), total - sent)])
        sock.shutdown(socket.SHUT_WR)
        count = int.from_bytes(_recv_exact(sock, 8), "big")
        elapsed = time.perf_counter() - start
    if count != total:
        raise RuntimeError(f"sink received {count} bytes of {total}")
    return total / elapsed / 1e6


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        part = sock.recv(size - len(data))
        if not part:
            raise RuntimeError("connection closed early")
        data += part
    return data


def round_trips(port: int, count: int, size: int = 100) -> list[float]:
    """Seconds per request/response pair of `size` bytes, after a warm-up."""
    payload = os.urandom(size)
    out = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(count + 200):
            start = time.perf_counter()
            sock.sendall(payload)
            _recv_exact(sock, size)
            if i >= 200:
                out.append(time.perf_counter() - start)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def hold_connections(port: int, wanted: int, batch: int = 500) -> int:
    """Open `wanted` connections through `port`, all held at once; count those that echo.

    Connections are opened in batches, each proven by an echo before the next, so the
    kernel's accept queue (somaxconn) never overflows: an overflow would measure the
    kernel's SYN retry timers, not the proxy. At the end every connection echoes again.
    """
    socks: list[socket.socket] = []
    try:
        while len(socks) < wanted:
            fresh = []
            for _ in range(min(batch, wanted - len(socks))):
                try:
                    fresh.append(socket.create_connection(("127.0.0.1", port), timeout=10))
                except OSError as exc:
                    print(f"    stopped opening at {len(socks) + len(fresh)}: {exc}")
                    socks.extend(fresh)
                    return _echo_all(socks)
            _echo_all(fresh)
            socks.extend(fresh)
        return _echo_all(socks)
    finally:
        for sock in socks:
            sock.close()


def _echo_all(socks: list[socket.socket]) -> int:
    live = 0
    failures: dict[str, int] = {}
    for sock in socks:
        try:
            sock.sendall(b"x")
            answer = sock.recv(1).decode() or "closed"
        except OSError as exc:
            answer = type(exc).__name__
        if answer == "x":
            live += 1
        else:
            failures[answer] = failures.get(answer, 0) + 1
    if failures:
        print(f"    not echoing: {failures}")
    return live


# --- the run -----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bytes", default="512M")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rtts", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--skip-socat", action="store_true")
    parser.add_argument("--serve", choices=("sink", "echo"), help=argparse.SUPPRESS)
    parser.add_argument("--run-proxy", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    if args.run_proxy:
        run_proxy()
        return 0
    hard = _raise_nofile()
    total = _size(args.bytes)
    use_socat = not args.skip_socat and shutil.which("socat") is not None
    if not use_socat:
        print("socat not found (apt-get install -y socat): socat columns skipped")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, "
          f"RLIMIT_NOFILE hard {hard}, load {os.getloadavg()[0]:.2f}")
    proxy = ProxyProcess()
    try:
        with helper("sink") as sink, helper("echo") as echo:
            bench_throughput(proxy, sink, total, args.rounds, use_socat)
            bench_latency(proxy, echo, args.rtts, use_socat)
            bench_toxic(proxy, echo, max(300, args.rtts // 10))
            bench_connections(proxy, echo, args.connections, hard)
    finally:
        proxy.close()
    return 0


def bench_throughput(proxy: ProxyProcess, sink: int, total: int, rounds: int,
                     use_socat: bool) -> None:
    targets = {"direct": sink, "proxy": proxy.add_proxy("sink", sink)}
    results: dict[str, list[float]] = {name: [] for name in targets}
    with socat(sink) if use_socat else contextlib.nullcontext(0) as socat_port:
        if use_socat:
            targets["socat"] = socat_port
            results["socat"] = []
        for _ in range(rounds):  # interleaved, so drift in machine load hits all alike
            for name, port in targets.items():
                results[name].append(throughput(port, total))
    print(f"\nthroughput, one stream of {total / 1e6:.0f} MB, median of {rounds}:")
    for name, values in results.items():
        print(f"  {name:7s} {statistics.median(values):9.0f} MB/s   "
              f"(runs: {', '.join(f'{v:.0f}' for v in values)})")
    if "socat" in results:
        ratio = statistics.median(results["proxy"]) / statistics.median(results["socat"])
        print(f"  proxy / socat = {ratio:.2f}x   (goal >= 1.2x)")


def bench_latency(proxy: ProxyProcess, echo: int, count: int, use_socat: bool) -> None:
    targets = {"direct": echo, "proxy": proxy.add_proxy("echo", echo)}
    with socat(echo) if use_socat else contextlib.nullcontext(0) as socat_port:
        if use_socat:
            targets["socat"] = socat_port
        results = {name: round_trips(port, count) for name, port in targets.items()}
    base50, base99 = pct(results["direct"], 0.5), pct(results["direct"], 0.99)
    print(f"\nround trip, 100-byte request/response, {count} pairs (microseconds):")
    for name, values in results.items():
        p50, p99 = pct(values, 0.5), pct(values, 0.99)
        print(f"  {name:7s} p50 {p50 * 1e6:7.1f}  p99 {p99 * 1e6:7.1f}   "
              f"added p50 {(p50 - base50) * 1e6:6.1f}  added p99 {(p99 - base99) * 1e6:6.1f}")
    if "socat" in results:
        added_proxy = pct(results["proxy"], 0.5) - base50
        added_socat = pct(results["socat"], 0.5) - base50
        print(f"  added p50 proxy / socat = {added_proxy / added_socat:.2f}x   (goal <= 3x)")


def bench_toxic(proxy: ProxyProcess, echo: int, count: int) -> None:
    port = proxy.add_proxy("echo-slow", echo)
    baseline = round_trips(port, count)
    proxy.call("POST", "/proxies/echo-slow/toxics",
               {"type": "latency", "attributes": {"latency": 100}})
    slowed = round_trips(port, max(50, count // 6))
    added = [value - pct(baseline, 0.5) for value in slowed]
    p50 = pct(added, 0.5) * 1e3
    print(f"\nlatency toxic, 100 ms asked, {len(slowed)} round trips: added p50 {p50:.2f} ms, "
          f"p99 {pct(added, 0.99) * 1e3:.2f} ms, error {p50 - 100:+.2f} ms   (goal within 2 ms)")


def bench_connections(proxy: ProxyProcess, echo: int, wanted: int, hard: int) -> None:
    # The proxy holds two sockets per connection; leave room for its own few descriptors.
    possible = (hard - 64) // 2
    target = min(wanted, possible)
    port = proxy.add_proxy("many", echo)
    start = time.perf_counter()
    live = hold_connections(port, target)
    elapsed = time.perf_counter() - start
    note = f" (asked {wanted}; RLIMIT_NOFILE hard {hard} allows ~{possible})" \
        if target < wanted else ""
    print(f"\nconnections held open at once through the proxy, each echoing: {live} of "
          f"{target}{note} in {elapsed:.1f} s")


def _size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text[-1].upper() in units:
        return int(float(text[:-1]) * units[text[-1].upper()])
    return int(text)


if __name__ == "__main__":
    sys.exit(main())
