"""`chaosrunner` command line: parse, dispatch to one module per command, map errors.

Each command lives in `chaosrunner.cli.<module>` as `command(args) -> int` and is
imported only when used, so `chaosrunner validate` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from chaosrunner import __version__
from chaosrunner.errors import ChaosRunnerError, Verdict

if TYPE_CHECKING:
    from chaosrunner.engine.backends import Backends

DEFAULT_STATE_DIR = ".chaosrunner"


# The global options, declared once: the top-level parser and each command's get them from
# `_global_options()` with SUPPRESS defaults, so that a value given before the command is
# not overwritten by the command's parser; `GLOBAL_DEFAULTS` fills in what was not given.
GLOBAL_OPTIONS: dict[str, dict[str, Any]] = {
    "--state-dir": {"metavar": "D", "help": "state directory (ledger, live runners, halt "
                    f"file, history); default {DEFAULT_STATE_DIR}/"},
    "--output": {"choices": ("human", "json"),
                 "help": "human output on a terminal, json for machines"},
    "--var": {"action": "append", "metavar": "K=V",
              "help": "a value for ${K} in the files (repeat; a later one wins)"},
    "--config": {"metavar": "F", "help": "the config file (notify:, annotations:, "
                 "otlp_endpoint, pushgateway; default ~/.config/chaosrunner/config.yaml); "
                 "for `proxy`, the proxies.json to populate"},
    "--halt-source": {"metavar": "SOURCE", "help": "also halt when this says so: "
                      "k8s://NAMESPACE/NAME (a ConfigMap) or an http(s) URL; default "
                      "CHAOSRUNNER_HALT_SOURCE"},
}
GLOBAL_DEFAULTS: dict[str, Any] = {"state_dir": DEFAULT_STATE_DIR, "output": None, "var": [],
                                   "config": None, "halt_source": None}


class UsageError(Exception):
    """A command line argparse refuses, with the parser whose usage applies."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser


class _Parser(argparse.ArgumentParser):
    """Raises UsageError where argparse would print and exit, so that `main` can also say
    it on stdout for --output json (its commands' parsers are of this class too)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)


def _global_options(omit: tuple[str, ...] = ()) -> _Parser:
    """A parent parser holding the global options (a fresh one per parser: argparse
    shares a parent's actions between the parsers that use it)."""
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("global options (before or after the command)")
    for flag, settings in GLOBAL_OPTIONS.items():
        if flag not in omit:
            group.add_argument(flag, default=argparse.SUPPRESS, **settings)
    return parent


class _Commands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """`--var` before and after the command add up: argparse parses the command's own
    options into a fresh namespace and copies it over the top-level one."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        before = getattr(namespace, "var", None)
        super().__call__(parser, namespace, values, option_string)
        after = getattr(namespace, "var", None)
        if before and after is not before:
            namespace.var = [*before, *(after or [])]


def _permissions(parser: argparse.ArgumentParser) -> None:
    """What a run must be allowed to touch: production environments, programs to exec."""
    parser.add_argument("--allow-production", action="store_true")
    parser.add_argument("--allow-exec", action="store_true")


def _injecting(parser: argparse.ArgumentParser) -> None:
    """The options of a command that injects faults (run, gameday, schedule)."""
    _permissions(parser)
    parser.add_argument("--no-watchdog", action="store_true", help="no watchdog process (it "
                        "takes the faults back if the runner dies)")
    _observability(parser)


def _observability(parser: argparse.ArgumentParser) -> None:
    """Where runs are seen (docs/observability.md)."""
    parser.add_argument("--otlp-endpoint", default=None, metavar="URL",
                        help="send the run's trace over OTLP/HTTP (default: "
                        "$OTEL_EXPORTER_OTLP_ENDPOINT)")
    parser.add_argument("--metrics-port", default=None, metavar="[HOST:]PORT",
                        help="serve the runner's Prometheus metrics (host default 127.0.0.1)")
    parser.add_argument("--pushgateway", default=None, metavar="URL",
                        help="push the runner's metrics to this Pushgateway at the end")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="chaosrunner",
        description="Declarative chaos experiments with SLO guards and rollback that "
                    "always happens.",
        parents=[_global_options()],
    )
    parser.add_argument("--version", action="version", version=f"chaosrunner {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", action=_Commands)

    p = sub.add_parser("validate", parents=[_global_options()],
                       help="check files without running anything")
    p.add_argument("files", nargs="+", metavar="FILE")

    p = sub.add_parser("plan", parents=[_global_options()],
                       help="resolve targets and show what a run would do")
    p.add_argument("file", metavar="FILE")
    _permissions(p)

    p = sub.add_parser("run", parents=[_global_options()],
                       help="run an experiment")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--report-dir", default=None, metavar="D")
    p.add_argument("--junit", default=None, metavar="P", help="also write JUnit XML here")
    p.add_argument("--dry-run", action="store_true", help="plan and print; inject nothing")
    _injecting(p)

    p = sub.add_parser("recover", parents=[_global_options()],
                       help="take back every fault injected and not reverted")
    p.add_argument("--force", action="store_true",
                   help="recover even though a runner seems to be alive")
    p.add_argument("--kubernetes", action="store_true",
                   help="revert what chaosrunner left in the cluster past its deadline, "
                   "whoever left it (scaled workloads, partition NetworkPolicies)")
    p.add_argument("--namespace", default=None, metavar="N",
                   help="with --kubernetes: only this namespace (default: all)")

    p = sub.add_parser("halt", parents=[_global_options()],
                       help="make a running experiment abort and roll back")
    p.add_argument("--reason", default="halted by operator")
    p.add_argument("--source", default=None, metavar="SOURCE",
                   help="where to set the halt: k8s://NAMESPACE/NAME, an http(s) URL, or a "
                   "directory (default: --halt-source, CHAOSRUNNER_HALT_SOURCE, the state dir)")
    p.add_argument("--clear", action="store_true", help="remove the halt: runs may start")

    p = sub.add_parser("proxy", parents=[_global_options(("--config",))],
                       help="run the Toxiproxy-compatible fault proxy")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8474)
    p.add_argument("--config", default=argparse.SUPPRESS, metavar="F",
                   help="proxies.json to populate")
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio",
                   help="event loop (uvloop: pip install 'chaosrunner[fast]'; measured "
                        "slower here, and without os.splice)")
    p.add_argument("--no-splice", action="store_true",
                   help="relay links without toxics in Python, not with os.splice")

    p = sub.add_parser("budget", parents=[_global_options()],
                       help="error budget status of a SteadyState file")
    p.add_argument("file", metavar="STEADYSTATE")
    p.add_argument("--prometheus", default=None, metavar="URL",
                   help="Prometheus server to ask instead of the file's `prometheus:`")
    p.add_argument("--at", default=None, metavar="TIME",
                   help="the budget as it was at TIME (RFC 3339 or Unix seconds), not now")

    p = sub.add_parser("gameday", parents=[_global_options()],
                       help="run a game day")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--report-dir", default=None, metavar="D")
    _injecting(p)

    p = sub.add_parser("schedule", parents=[_global_options()],
                       help="run game days on their cron schedules")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--once", action="store_true", help="run what is due now and exit")
    p.add_argument("--grace", default="5m", metavar="DURATION",
                   help="how late a scheduled run may still start (default 5m)")
    p.add_argument("--report-dir", default=None, metavar="D",
                   help="where game-day report directories go (default reports/)")
    _injecting(p)

    p = sub.add_parser("runs", parents=[_global_options()],
                       help="history of runs")
    p.add_argument("--since", default=None, help="e.g. 7d or 2026-11-01")
    p.add_argument("--experiment", default=None)
    p.add_argument("--gameday", default=None, help="only the runs of this game day")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="newest N runs")

    p = sub.add_parser("schema", parents=[_global_options()],
                       help="print the JSON Schema of each file kind")
    p.add_argument("kind", nargs="?", choices=("SteadyState", "Experiment", "GameDay", "Config"))

    p = sub.add_parser("convert", parents=[_global_options()],
                       help="convert a Chaos Toolkit experiment to a native one")
    p.add_argument("file", metavar="FILE")
    p.add_argument("-o", "--out", default=None)

    p = sub.add_parser("capacity", parents=[_global_options()],
                       help="forecast usage from Prometheus against the breaking point")
    p.add_argument("file", metavar="STEADY_STATE")
    p.add_argument("--usage", required=True, metavar="QUERY",
                   help="PromQL for the usage, one number (e.g. sum(rate(...[5m])))")
    p.add_argument("--growth", default=None, metavar="G",
                   help="e.g. 10%%/month (compounding); default: the trend over --window")
    p.add_argument("--window", default="30d", help="trend window (default 30d)")
    p.add_argument("--months", type=int, default=6, help="forecast horizon (default 6)")
    p.add_argument("--headroom", default="30%", help="kept free under the breaking point")
    p.add_argument("--breaking-point", default=None, metavar="RATE|REPORT",
                   help="450/s, or a search run's report; default: the newest in the history")
    p.add_argument("--prometheus", default=None, metavar="URL")
    p.add_argument("--report-dir", default=None, metavar="D",
                   help="also write capacity.html (with the chart) and capacity.json here")

    p = sub.add_parser("load-worker", parents=[_global_options()],
                       help="a Locust worker for load.http faults with master: HOST:PORT "
                       "(run one per machine that makes load)")
    p.add_argument("--master", required=True, metavar="HOST:PORT",
                   help="where the load.http fault's master listens")

    p = sub.add_parser("demo", parents=[_global_options()],
                       help="start the demo shop locally and run the shipped experiments")
    p.add_argument("only", nargs="*", metavar="NAME",
                   help="run only these shipped experiments (e.g. payments-errors); "
                   "`shop` alone starts the shop and keeps it running until Ctrl-C")
    p.add_argument("--keep", action="store_true",
                   help="keep the shop running after the experiments, until Ctrl-C")
    p.add_argument("--report-dir", default=None, metavar="D")
    p.add_argument("--quick", action="store_true", help="shorter phases")
    return parser


COMMAND_MODULES = {
    "validate": "validate", "plan": "run", "run": "run", "recover": "recover",
    "halt": "recover", "proxy": "proxy", "budget": "budget", "gameday": "gameday",
    "schedule": "schedule", "runs": "runs", "schema": "validate", "convert": "convert",
    "demo": "demo", "load-worker": "load", "capacity": "capacity",
}


def parse_command_line(parser: argparse.ArgumentParser,
                       argv: Sequence[str]) -> argparse.Namespace:
    """Parse; a global option given neither before nor after the command gets its default."""
    args = parser.parse_args(_signed_values_joined(argv))
    for name, default in GLOBAL_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, list(default) if isinstance(default, list) else default)
    return args


# Options whose value may be negative: argparse reads `--growth -10%/month` as two options
# (only plain negative numbers are values to it), so such a value is joined to its option.
SIGNED_VALUE_OPTIONS = ("--growth",)
_SIGNED_VALUE = re.compile(r"-\.?\d")


def _signed_values_joined(argv: Sequence[str]) -> list[str]:
    joined: list[str] = []
    for arg in argv:
        if joined and joined[-1] in SIGNED_VALUE_OPTIONS and _SIGNED_VALUE.match(arg):
            joined[-1] = f"{joined[-1]}={arg}"
        else:
            joined.append(arg)
    return joined


def main(argv: Sequence[str] | None = None, backends: Backends | None = None) -> int:
    """Run one command; returns its exit code (DESIGN.md 4). `backends`: the production
    drivers and SLI sources unless a test hands in its fakes (`run`, `plan`)."""
    # Imported here: kept out of the parser's import time.
    from chaosrunner.secrets import redact_standard_streams

    redact_standard_streams()  # a resolved secret is never printed
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse_command_line(parser, argv)
    except UsageError as exc:
        return report_usage_error(exc, argv)
    except SystemExit as exc:  # --help, --version
        return 0 if exc.code == 0 else Verdict.INVALID.exit_code
    if args.command is None:
        parser.print_help()
        return Verdict.INVALID.exit_code
    args.backends = backends
    module = importlib.import_module(f"chaosrunner.cli.{COMMAND_MODULES[args.command]}")
    handler = getattr(module, f"command_{args.command}", None) or module.command
    try:
        code: int = handler(args)
    except ChaosRunnerError as exc:
        print(f"chaosrunner: {exc}", file=sys.stderr)
        if getattr(args, "output", None) == "json":  # machines read stdout: say it there too
            print_json_error(str(exc), exc.exit_code)
        return exc.exit_code
    except KeyboardInterrupt:
        print("chaosrunner: interrupted", file=sys.stderr)
        return Verdict.INTERRUPTED.exit_code
    return code


def report_usage_error(error: UsageError, argv: Sequence[str]) -> int:
    """argparse's usage and message on stderr; with --output json, the error on stdout too."""
    error.parser.print_usage(sys.stderr)
    print(f"{error.parser.prog}: error: {error}", file=sys.stderr)
    if _wants_json(argv):
        print_json_error(f"{error} (see `{error.parser.prog} --help`)",
                         Verdict.INVALID.exit_code)
    return Verdict.INVALID.exit_code


def _wants_json(argv: Sequence[str]) -> bool:
    """--output json anywhere on a command line that did not parse."""
    pairs = zip(argv, [*argv[1:], ""], strict=True)
    return "--output=json" in argv or any(a == "--output" and b == "json" for a, b in pairs)


def print_json_error(message: str, code: int) -> None:
    """`{"error", "exit_code"[, "verdict": "invalid"]}` on stdout for --output json."""
    import json

    error: dict[str, Any] = {"error": message, "exit_code": code}
    if code == Verdict.INVALID.exit_code:
        error["verdict"] = Verdict.INVALID.value
    print(json.dumps(error, indent=2))


def entrypoint() -> None:
    # chaosrunner uses no pydantic plugins; looking them up scans every installed
    # distribution's entry points and costs a third of `validate`'s cold start.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    # Imported here: only the console entry point touches the real streams.
    from chaosrunner.cli.pipes import flush_standard_streams, quiet_standard_streams

    quiet_standard_streams()  # `chaosrunner ... | head` keeps its exit status
    code = main()
    flush_standard_streams()
    # Only a run arms the signal guard, so a command that never loaded it (validate's cold
    # start) has nothing armed and need not load it now.
    if "chaosrunner.engine.signals" in sys.modules:
        # Imported here: only the console entry point owns the process's signals.
        from chaosrunner.engine.signals import SIGNALS

        if SIGNALS.armed:
            # A run started: a signal from now on must change the status, not kill the
            # process, and the interpreter's shutdown would give the default handlers back.
            SIGNALS.hold()  # a signal from now on is noted, not printed
            flush_standard_streams()  # what a signal's handler printed before
            os._exit(SIGNALS.exit_status(code))  # decided last: one during the flush counts
    sys.exit(code)
