"""`chaosrunner demo`: start the demo shop locally, run the shipped experiments, clean up.

Everything it starts (the shop's processes, the embedded fault proxy) is stopped before
it returns, also when an experiment fails or the user presses Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaosrunner.errors import InvalidInput

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DemoExperiment:
    file: str
    needs_proxy: bool


EXPERIMENTS = (
    DemoExperiment("experiments/instance-failure.yaml", needs_proxy=False),
    DemoExperiment("experiments/network-latency.yaml", needs_proxy=True),
)


def command(args: argparse.Namespace) -> int:
    from chaosrunner.cli.run import options_from, run_file

    args.allow_production, args.allow_exec, args.var, args.junit = False, False, [], None
    results: list[tuple[str, str, int, str | None]] = []
    with demo_system(Path(args.state_dir)) as proxy_url:
        for item in EXPERIMENTS:
            path = REPO_ROOT / item.file
            if not path.exists() or (item.needs_proxy and proxy_url is None):
                continue
            report_dir = Path(args.report_dir) / path.stem if args.report_dir else None
            args.report_dir_effective = report_dir
            options = options_from(args)
            if report_dir is not None:
                options = _with_report_dir(options, report_dir)
            report = run_file(path, options, output=args.output)
            results.append((path.name, report.verdict, report.exit_code, report.report_dir))
    if not results:
        raise InvalidInput(f"no demo experiments found under {REPO_ROOT / 'experiments'}")
    print("\ndemo summary:")
    for name, verdict, code, where in results:
        print(f"  {name:28} {verdict:20} exit {code}  reports: {where}")
    return max(code for _, _, code, _ in results)


def _with_report_dir(options: Any, report_dir: Path) -> Any:
    import dataclasses

    return dataclasses.replace(options, report_dir=report_dir)


@contextlib.contextmanager
def demo_system(state_dir: Path) -> Iterator[str | None]:
    """The shop (checkout :8080, payments :8081-8084) and, when it is available, the
    embedded Toxiproxy in front of payments. Yields the proxy API URL or None."""
    from chaosrunner.demo.shop import Shop

    with contextlib.ExitStack() as stack:
        proxy_url = stack.enter_context(_maybe_proxy())
        shop = Shop.start(base_port=8080, replicas=4, state_dir=state_dir / "shop")
        stack.callback(shop.stop)
        print(f"demo shop up: checkout {shop.checkout_endpoint}, "
              f"{len(shop.payments_urls)} payments replicas")
        yield proxy_url


@contextlib.contextmanager
def _maybe_proxy() -> Iterator[str | None]:
    try:
        from chaosrunner.demo.network import proxied_payments
    except ImportError:
        yield None
        return
    with proxied_payments() as url:
        yield url
