"""`chaosrunner demo`: start the demo shop locally, run the shipped experiments, clean up.

One system serves both experiments (and the `gamedays/q4-checkout.yaml` game day):
checkout (:8080) calls four payments replicas (:8081-8084), each through its own proxy
of the embedded Toxiproxy-compatible server (API :8474; proxies `payments-1` ..
`payments-4` on :8091-8094). `instance-failure` SIGKILLs one replica (process driver);
`network-latency` adds 500 ms to every proxy (toxiproxy driver); `payments-errors` has the
proxies answer a share of `POST /pay` with 503 (HTTP toxics), so checkout's retries and
circuit breakers are seen at work. Checkout's payment
timeout is 1.5 s here: the shop is built to absorb that latency.

Everything it starts is stopped before it returns, also when an experiment fails or the
user presses Ctrl-C. To keep the shop for your own commands (`chaosrunner plan
experiments/instance-failure.yaml` in another terminal), `chaosrunner demo shop` starts it
and holds it until Ctrl-C or SIGTERM; `--keep` holds it after the experiments ran.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

from chaosrunner.app.run import run_file
from chaosrunner.cli.progress import progress_listener
from chaosrunner.demo.shop import Shop
from chaosrunner.engine.context import RunOptions
from chaosrunner.engine.signals import SIGNALS
from chaosrunner.errors import InvalidInput
from chaosrunner.proxy.server import start_background
from chaosrunner.report.model import RunReport

REPO_ROOT = Path(__file__).resolve().parents[2]
PROXY_API_PORT = 8474
SHOP_PORT = 8080
REPLICAS = 4
EXPERIMENTS = ("experiments/instance-failure.yaml", "experiments/network-latency.yaml",
               "experiments/payments-errors.yaml")
# Run only when named (`chaosrunner demo checkout-capacity`): a breaking-point search
# takes two minutes and ends, by design, with the guard's abort.
OPT_IN = ("experiments/checkout-capacity.yaml",)


@contextlib.contextmanager
def demo_system(state_dir: Path) -> Iterator[None]:
    """The shop with a proxy in front of every payments replica; all stopped on exit."""
    proxies = [{"name": f"payments-{i}", "listen": f"127.0.0.1:{SHOP_PORT + 10 + i}",
                "upstream": f"127.0.0.1:{SHOP_PORT + i}", "enabled": True}
               for i in range(1, REPLICAS + 1)]
    try:
        proxy = start_background("127.0.0.1", PROXY_API_PORT, proxies)
    except (OSError, ValueError) as exc:  # a port taken: another demo, or anything else
        raise InvalidInput(f"the demo's proxies cannot start: {exc}; the demo needs ports "
                           f"{PROXY_API_PORT}, {SHOP_PORT}-{SHOP_PORT + REPLICAS} and "
                           f"{SHOP_PORT + 11}-{SHOP_PORT + 10 + REPLICAS}: stop what uses "
                           "them (another `chaosrunner demo`?)") from None
    try:
        via_proxies = ",".join(f"http://{p['listen']}" for p in proxies)
        with Shop.start(base_port=SHOP_PORT, replicas=REPLICAS, state_dir=state_dir / "shop",
                        checkout_args=["--payments", via_proxies, "--timeout-ms", "1500"]
                        ) as shop:
            print(f"demo shop up: checkout {shop.checkout_endpoint} -> proxies payments-1.."
                  f"{REPLICAS} (API {proxy.url}) -> {REPLICAS} payments replicas")
            yield
    finally:
        proxy.stop()


SHOP_ONLY = "shop"  # `chaosrunner demo shop`: the system alone, held until a signal
NEXT_STEPS = """the shop stays up until Ctrl-C (or SIGTERM). In another terminal:
  chaosrunner plan experiments/instance-failure.yaml
  chaosrunner run experiments/network-latency.yaml
  curl -s 127.0.0.1:8080/breakers"""


def hold() -> None:
    """Until SIGINT or SIGTERM: the guard notes the signal (the exit status is 130/143),
    and the `with` around this call stops the shop."""
    SIGNALS.arm()
    wake = threading.Event()
    while not SIGNALS.received:
        wake.wait(0.2)


def command(args: argparse.Namespace) -> int:
    names = list(getattr(args, "only", None) or [])
    if names == [SHOP_ONLY]:
        with demo_system(Path(args.state_dir)):
            print(NEXT_STEPS, flush=True)
            hold()
        return 0
    paths = [REPO_ROOT / file for file in selected(names)]
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise InvalidInput(f"demo experiments {missing} are missing; run the demo from a "
                           "checkout of the chaosrunner repository")

    results: list[RunReport] = []
    with demo_system(Path(args.state_dir)):
        for path in paths:
            results.append(run_one(path, args))
            if SIGNALS.received:  # Ctrl-C / SIGTERM: no further experiment
                break
        if getattr(args, "keep", False) and not SIGNALS.received:
            _summary(results)
            print(NEXT_STEPS, flush=True)
            hold()
            return max(report.exit_code for report in results)
    _summary(results)
    return max(report.exit_code for report in results)


def _summary(results: list[RunReport]) -> None:
    print("\ndemo summary:")
    for report in results:
        print(f"  {report.experiment:20} {report.verdict:20} exit {report.exit_code}  "
              f"reports: {report.report_dir}", flush=True)


def selected(names: list[str]) -> list[str]:
    """The shipped experiments named (by file stem), in the demo's order; all by default."""
    stems = {Path(file).stem: file for file in (*EXPERIMENTS, *OPT_IN)}
    unknown = [name for name in names if name not in stems]
    if unknown:
        raise InvalidInput(f"no demo experiment named {', '.join(unknown)}; "
                           f"the demo has: {', '.join(stems)} (or `chaosrunner demo "
                           f"{SHOP_ONLY}` alone: the shop, kept running)")
    if not names:
        return list(EXPERIMENTS)
    return [file for stem, file in stems.items() if stem in names]


def run_one(path: Path, args: argparse.Namespace) -> RunReport:
    options = RunOptions(state_dir=Path(args.state_dir), watchdog=True)  # as `run` has
    if args.report_dir:
        options = dataclasses.replace(options, report_dir=Path(args.report_dir) / path.stem)
    return run_file(path, options, output=args.output, display=progress_listener)

