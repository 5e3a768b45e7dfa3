"""`chaosrunner demo`: start the demo shop locally, run the shipped experiments, clean up.

Two set-ups, one per experiment:

* instance-failure: checkout (:8080) calls four payments replicas (:8081-8084) directly;
  the experiment SIGKILLs one of them (the process driver).
* network-latency: the embedded Toxiproxy-compatible proxy (API :8474) carries every
  call from checkout to payments through a proxy named `payments` (:8090 -> :8081);
  the experiment adds 500 ms of latency with a toxic (the toxiproxy driver). Checkout's
  payment timeout is raised to 1.5 s here: the shop is built to absorb that latency.

Everything it starts is stopped before it returns, also when an experiment fails or the
user presses Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from chaosrunner.errors import InvalidInput
from chaosrunner.report.model import RunReport

REPO_ROOT = Path(__file__).resolve().parents[2]
PROXY_API_PORT = 8474
PAYMENTS_PROXY_PORT = 8090


@dataclass(frozen=True)
class DemoExperiment:
    file: str
    system: Callable[[Path], contextlib.AbstractContextManager[None]]


@contextlib.contextmanager
def direct_shop(state_dir: Path) -> Iterator[None]:
    from chaosrunner.demo.shop import Shop

    with Shop.start(base_port=8080, replicas=4, state_dir=state_dir / "shop") as shop:
        print(f"demo shop up: checkout {shop.checkout_endpoint} -> "
              f"{len(shop.payments_urls)} payments replicas")
        yield


@contextlib.contextmanager
def proxied_shop(state_dir: Path) -> Iterator[None]:
    from chaosrunner.demo.shop import Shop
    from chaosrunner.proxy.server import start_background

    proxies = [{"name": "payments", "listen": f"127.0.0.1:{PAYMENTS_PROXY_PORT}",
                "upstream": "127.0.0.1:8081", "enabled": True}]
    proxy = start_background("127.0.0.1", PROXY_API_PORT, proxies)
    try:
        via_proxy = ["--payments", f"http://127.0.0.1:{PAYMENTS_PROXY_PORT}",
                     "--timeout-ms", "1500"]
        with Shop.start(base_port=8080, replicas=4, state_dir=state_dir / "shop",
                        checkout_args=via_proxy) as shop:
            print(f"demo shop up: checkout {shop.checkout_endpoint} -> proxy 'payments' "
                  f"(API {proxy.url}) -> payments-1")
            yield
    finally:
        proxy.stop()


EXPERIMENTS = (
    DemoExperiment("experiments/instance-failure.yaml", direct_shop),
    DemoExperiment("experiments/network-latency.yaml", proxied_shop),
)


def command(args: argparse.Namespace) -> int:
    results: list[RunReport] = []
    for item in EXPERIMENTS:
        path = REPO_ROOT / item.file
        if not path.exists():
            raise InvalidInput(f"demo experiment {path} is missing; run the demo from a "
                               "checkout of the chaosrunner repository")
        with item.system(Path(args.state_dir)):
            results.append(run_one(path, args))
    print("\ndemo summary:")
    for report in results:
        print(f"  {report.experiment:20} {report.verdict:20} exit {report.exit_code}  "
              f"reports: {report.report_dir}")
    return max(report.exit_code for report in results)


def run_one(path: Path, args: argparse.Namespace) -> RunReport:
    from chaosrunner.cli.run import run_file
    from chaosrunner.engine.context import RunOptions

    options = RunOptions(state_dir=Path(args.state_dir))
    if args.report_dir:
        options = dataclasses.replace(options, report_dir=Path(args.report_dir) / path.stem)
    report: RunReport = run_file(path, options, output=args.output)
    return report

