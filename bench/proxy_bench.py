"""Benchmark of `chaosrunner proxy` against direct loopback (and Toxiproxy, socat), in one run.

    .venv/bin/python bench/proxy_bench.py [--rounds 7] [--bytes 512M] [--rtts 2000]
        [--rps-seconds 2] [--connections 10000] [--toxiproxy PATH] [--skip-socat]

Every figure is measured side by side, the targets interleaved round by round (round 1:
direct, proxy, toxiproxy, ...; round 2: the same again; ...), so drift in the load of
this shared machine hits every target alike. Each figure is the median over the rounds,
with the range (min-max) of the per-round values.

  1. added latency per 100-byte round trip (an HTTP/1.1 request of exactly 100 bytes, a
     response of exactly 100 bytes, keep-alive), over direct loopback: the proxy with no
     toxic, the proxy with an HTTP toxic that does not match the request, Toxiproxy with
     no toxic. The per-round value is the p50 of --rtts round trips minus direct's p50 in
     the same round.
  2. throughput of one TCP stream into a sink, and the relay's CPU seconds per GiB (from
     /proc, robust to the load of a shared machine). The sink is told the length first
     and answers when it has every byte, so it does not depend on half-close (which
     Toxiproxy does not pass on).

Our proxy runs three ways side by side: asyncio with os.splice for bulk links (the
default), asyncio with --no-splice, and uvloop (when installed: `chaosrunner[fast]`).
  3. requests per second through an `http_error` on 10 % of requests, against the same
     proxy with no toxic (wrk if installed, else an asyncio client; 8 connections).
  4. latency-toxic accuracy, and connections held open at once (the proxy raises its
     file-descriptor soft limit to the hard limit itself; this script does not do it for
     the proxy).

The Toxiproxy column appears when `toxiproxy-server` is on PATH or given with --toxiproxy.
Every server runs in its own process, so the client does not share a GIL with the relay.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

# Exactly 100 bytes each way: an HTTP/1.1 request and its response.
_START = b"GET /bench HTTP/1.1\r\nHost: bench\r\nX-Pad: "
REQUEST = _START + b"p" * (100 - len(_START) - 4) + b"\r\n\r\n"
_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
RESPONSE = _HEAD % (100 - len(_HEAD % 10)) + b"r" * (100 - len(_HEAD % 10))
assert len(REQUEST) == 100 and len(RESPONSE) == 100


# --- helper servers (run as subprocesses of this script) -------------------------------------


class _Sink(asyncio.BufferedProtocol):
    """Reads an 8-byte length, then that many bytes; answers with the count (8 bytes)."""

    def __init__(self) -> None:
        self.buf = bytearray(1 << 20)
        self.head = b""
        self.want = -1
        self.count = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buf

    def buffer_updated(self, nbytes: int) -> None:
        data = memoryview(self.buf)[:nbytes]
        if self.want < 0:
            need = 8 - len(self.head)
            self.head += bytes(data[:need])
            data = data[need:]
            if len(self.head) < 8:
                return
            self.want = int.from_bytes(self.head, "big")
        self.count += len(data)
        if self.count >= self.want:
            self.transport.write(self.count.to_bytes(8, "big"))  # type: ignore[attr-defined]


class _Http100(asyncio.Protocol):
    """Answers every request head with the 100-byte RESPONSE (keep-alive, pipelining)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        self.pending += data
        count = self.pending.count(b"\r\n\r\n")
        if count:
            self.pending = self.pending[self.pending.rfind(b"\r\n\r\n") + 4:]
            self.transport.write(RESPONSE * count)  # type: ignore[attr-defined]


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


SERVERS: dict[str, Callable[[], asyncio.BaseProtocol]] = {
    "sink": _Sink, "http": _Http100, "echo": _Echo}


def serve(kind: str) -> None:
    """Run one helper server; prints its port on stdout."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(SERVERS[kind], "127.0.0.1", 0,
                                                                backlog=4096)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


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


def wait_port(port: int, timeout: float = 15.0) -> None:
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


class ApiProcess:
    """A proxy server with the Toxiproxy API: `chaosrunner proxy` or `toxiproxy-server`."""

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __init__(self, argv: list[str], api_port: int) -> None:
        self.api_port = api_port
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(api_port)
        self.url = f"http://127.0.0.1:{api_port}"

    @classmethod
    def ours(cls, variant: str) -> ApiProcess:
        """`chaosrunner proxy` on the asyncio loop (os.splice for bulk links with no
        toxic), on asyncio without splice ("asyncio --no-splice"), or on uvloop."""
        port = free_port()
        loop, *extra = variant.split()
        return cls([PY, "-m", "chaosrunner", "proxy", "--port", str(port), "--loop", loop,
                    *extra], port)

    @classmethod
    def toxiproxy(cls, binary: str) -> ApiProcess:
        port = free_port()
        return cls([binary, "-host", "127.0.0.1", "-port", str(port)], port)

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

    def add_toxic(self, proxy: str, body: dict[str, object]) -> None:
        self.call("POST", f"/proxies/{proxy}/toxics", body)

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


# --- measurements ------------------------------------------------------------------------------


def throughput(port: int, total: int) -> float:
    """MB/s (10^6) of one stream of `total` bytes into the sink behind `port`."""
    block = memoryview(bytes(1 << 20))
    with socket.create_connection(("127.0.0.1", port)) as sock:
        start = time.perf_counter()
        sock.sendall(total.to_bytes(8, "big"))
        sent = 0
        while sent < total:
            sent += sock.send(block[: min(len(block), total - sent)])
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


def round_trip_p50(port: int, count: int) -> float:
    """p50 seconds of one 100-byte request / 100-byte response, after a warm-up."""
    out = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(count + 200):
            start = time.perf_counter()
            sock.sendall(REQUEST)
            _recv_exact(sock, 100)
            if i >= 200:
                out.append(time.perf_counter() - start)
    return statistics.median(out)


def requests_per_second(port: int, seconds: float, connections: int = 8) -> float:
    """Requests per second over `connections` keep-alive connections (wrk if installed)."""
    wrk = shutil.which("wrk")
    if wrk:
        out = subprocess.run([wrk, "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                              f"http://127.0.0.1:{port}/bench"], capture_output=True,
                             text=True, check=True).stdout
        match = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if match is None:
            raise RuntimeError(f"wrk said: {out}")
        return float(match.group(1))
    return asyncio.run(_rps(port, seconds, connections))


async def _rps(port: int, seconds: float, connections: int) -> float:
    stop = time.perf_counter() + seconds
    done = [0]

    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < stop:
            writer.write(REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            done[0] += 1
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(connections)))
    return done[0] / (time.perf_counter() - start)


def interleaved(targets: dict[str, int], rounds: int,
                measure: Callable[[int], float]) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, port in targets.items():
            results[name].append(measure(port))
    return results


def summary(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    return (f"{statistics.median(values) * scale:.{digits}f} "
            f"[{min(values) * scale:.{digits}f}-{max(values) * scale:.{digits}f}]")


# --- the run -----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bytes", default="512M")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--rtts", type=int, default=2000)
    parser.add_argument("--rps-seconds", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--toxiproxy", default=shutil.which("toxiproxy-server"),
                        help="a toxiproxy-server binary (default: the one on PATH)")
    parser.add_argument("--skip-socat", action="store_true")
    parser.add_argument("--serve", choices=tuple(SERVERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    total = _size(args.bytes)
    use_socat = not args.skip_socat and shutil.which("socat") is not None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, RLIMIT_NOFILE "
          f"soft {soft} hard {hard}, load {os.getloadavg()[0]:.2f}, {args.rounds} rounds "
          "interleaved; figures: median [min-max] over the rounds")
    if not args.toxiproxy:
        print("toxiproxy-server not found (on PATH or --toxiproxy): no Toxiproxy column")
    loops = ["asyncio --no-splice", "uvloop", "asyncio"] if _has_uvloop() \
        else ["asyncio --no-splice", "asyncio"]
    if len(loops) == 2:
        print("uvloop not installed (pip install 'chaosrunner[fast]'): asyncio loop only")
    ours = {loop: ApiProcess.ours(loop) for loop in loops}
    best = ours[loops[-1]]
    toxiproxy = ApiProcess.toxiproxy(args.toxiproxy) if args.toxiproxy else None
    try:
        with helper("sink") as sink, helper("http") as http, helper("echo") as echo:
            bench_latency(ours, toxiproxy, http, args.rounds, args.rtts)
            bench_throughput(ours, toxiproxy, sink, total, args.rounds, use_socat)
            bench_rps(best, loops[-1], http, args.rounds, args.rps_seconds)
            bench_toxic(best, echo, max(300, args.rtts // 10))
            bench_connections(best, echo, args.connections, hard)
    finally:
        for process in ours.values():
            process.close()
        if toxiproxy is not None:
            toxiproxy.close()
    return 0


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def bench_latency(ours: dict[str, ApiProcess], toxiproxy: ApiProcess | None, http: int,
                  rounds: int, rtts: int) -> None:
    targets = {"direct": http}
    for loop, process in ours.items():
        targets[f"proxy {loop}"] = process.add_proxy("lat", http)
        targets[f"proxy {loop}, HTTP toxic not matching"] = process.add_proxy("lat-http", http)
        process.add_toxic("lat-http", {"type": "http_error",
                                       "attributes": {"path": "^/never"}})
    if toxiproxy is not None:
        targets["toxiproxy"] = toxiproxy.add_proxy("lat", http)
    results = interleaved(targets, rounds, lambda port: round_trip_p50(port, rtts))
    direct = results.pop("direct")
    print(f"\nadded latency per 100-byte round trip (HTTP/1.1 keep-alive), p50 of {rtts} "
          "per round, minus direct's p50 of the same round, microseconds:")
    print(f"  direct loopback p50  {summary(direct, 1e6)}  (the baseline)")
    added = {name: [v - d for v, d in zip(values, direct, strict=True)]
             for name, values in results.items()}
    for name, values in added.items():
        print(f"  {name:40s} +{summary(values, 1e6)}")
    if "toxiproxy" in added:
        base = statistics.median(added["toxiproxy"])
        for name, values in added.items():
            if name != "toxiproxy":
                goal = "0.75x" if "HTTP" in name else "0.5x"
                print(f"  {name} / toxiproxy = {statistics.median(values) / base:.2f}x "
                      f"(goal <= {goal})")
    else:
        print("  (no Toxiproxy column: the goals, <= 0.5x and <= 0.75x of Toxiproxy's "
              "no-toxic figure, cannot be checked in this run)")


def bench_throughput(ours: dict[str, ApiProcess], toxiproxy: ApiProcess | None, sink: int,
                     total: int, rounds: int, use_socat: bool) -> None:
    targets = {"direct": sink}
    servers: dict[int, ApiProcess] = {}
    for loop, process in ours.items():
        targets[f"proxy {loop}"] = port = process.add_proxy("sink", sink)
        servers[port] = process
    if toxiproxy is not None:
        targets["toxiproxy"] = port = toxiproxy.add_proxy("sink", sink)
        servers[port] = toxiproxy
    cpu: dict[int, list[float]] = {port: [] for port in servers}

    def measure(port: int) -> float:
        before = servers[port].cpu_seconds() if port in servers else 0.0
        speed = throughput(port, total)
        if port in servers:
            cpu[port].append((servers[port].cpu_seconds() - before) / (total / (1 << 30)))
        return speed

    with socat(sink) if use_socat else contextlib.nullcontext(0) as socat_port:
        if use_socat:
            targets["socat"] = socat_port
        results = interleaved(targets, rounds, measure)
    print(f"\nthroughput, one stream of {total / 1e6:.0f} MB into a sink, MB/s "
          "(and the relay's CPU seconds per GiB):")
    for name, values in results.items():
        spent = f"   CPU {summary(cpu[targets[name]], 1, 2)} s/GiB" \
            if targets[name] in cpu else ""
        print(f"  {name:18s} {summary(values, 1, 0)}{spent}")
    for loop in ours:
        proxy = statistics.median(results[f"proxy {loop}"])
        print(f"  proxy {loop} / direct = {proxy / statistics.median(results['direct']):.2f}x")
        if "toxiproxy" in results:
            ratio = proxy / statistics.median(results["toxiproxy"])
            print(f"  proxy {loop} / toxiproxy = {ratio:.2f}x (goal >= 3x)")


def bench_rps(ours: ApiProcess, loop: str, http: int, rounds: int, seconds: float) -> None:
    targets = {"proxy": ours.add_proxy("rps", http),
               "proxy+http_error 10%": ours.add_proxy("rps-err", http)}
    ours.add_toxic("rps-err", {"type": "http_error", "toxicity": 0.1,
                               "attributes": {"status": 503}})
    results = interleaved(targets, rounds, lambda port: requests_per_second(port, seconds))
    client = "wrk -t2 -c8" if shutil.which("wrk") else "asyncio client, 8 connections"
    print(f"\nrequests per second through the proxy ({loop} loop; {client}, "
          f"{seconds:g} s per round):")
    for name, values in results.items():
        print(f"  {name:22s} {summary(values, 1, 0)}")
    ratio = statistics.median(results["proxy+http_error 10%"]) / \
        statistics.median(results["proxy"])
    print(f"  with the toxic / without = {ratio:.2f}x")


def bench_toxic(ours: ApiProcess, echo: int, count: int) -> None:
    port = ours.add_proxy("echo-slow", echo)
    baseline = _echo_rtts(port, count)
    ours.add_toxic("echo-slow", {"type": "latency", "attributes": {"latency": 100}})
    slowed = _echo_rtts(port, max(50, count // 6))
    added = sorted(value - statistics.median(baseline) for value in slowed)
    p50, p99 = statistics.median(added) * 1e3, added[int(0.99 * (len(added) - 1))] * 1e3
    print(f"\nlatency toxic, 100 ms asked, {len(slowed)} round trips: added p50 {p50:.2f} ms, "
          f"p99 {p99:.2f} ms, error {p50 - 100:+.2f} ms   (goal within 2 ms)")


def _echo_rtts(port: int, count: int) -> list[float]:
    out = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            start = time.perf_counter()
            sock.sendall(b"x" * 100)
            _recv_exact(sock, 100)
            out.append(time.perf_counter() - start)
    return out


def bench_connections(ours: ApiProcess, echo: int, wanted: int, hard: int) -> None:
    # The proxy holds two sockets per connection; leave room for its own descriptors.
    possible = (hard - 64) // 2
    target = min(wanted, possible)
    port = ours.add_proxy("many", echo)
    start = time.perf_counter()
    live = hold_connections(port, target)
    elapsed = time.perf_counter() - start
    note = f" (asked {wanted}; RLIMIT_NOFILE hard {hard} allows ~{possible})" \
        if target < wanted else ""
    print(f"\nconnections held open at once through the proxy, each echoing: {live} of "
          f"{target}{note} in {elapsed:.1f} s")


def hold_connections(port: int, wanted: int, batch: int = 500) -> int:
    """Open `wanted` connections through `port`, all held at once; count those that echo.

    Batches, each proven by an echo before the next, so the kernel's accept queue never
    overflows (that would measure SYN retry timers, not the proxy).
    """
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the client's own sockets
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


def _size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text[-1].upper() in units:
        return int(float(text[:-1]) * units[text[-1].upper()])
    return int(text)


if __name__ == "__main__":
    sys.exit(main())
