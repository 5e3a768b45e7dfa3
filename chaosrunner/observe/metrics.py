"""The runner's own Prometheus metrics (`--metrics-port`, `--pushgateway`).

One `RunnerMetrics` per process (a run, a game day, the scheduler) owns its registry;
each run adds a `MetricsObserver` that feeds it:

    chaosrunner_runs_total{experiment, verdict}            counter
    chaosrunner_aborts_total{experiment, reason}           counter (reason: a small fixed set)
    chaosrunner_faults_in_effect{experiment}               gauge
    chaosrunner_rollback_seconds{experiment}               histogram
    chaosrunner_abort_reaction_seconds{experiment}         histogram (abort -> rollback done)
    chaosrunner_sli_value{experiment, slo}                 gauge (last reading)
    chaosrunner_sli_good{experiment, slo}                  gauge (1 met, 0 missed)
    chaosrunner_run_in_progress{experiment}                gauge
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from chaosrunner.engine.events import Injecting, Reverted, Sampled
from chaosrunner.errors import InvalidInput
from chaosrunner.observe.base import Event, warn
from chaosrunner.report.model import Announcement, RunReport
from chaosrunner.secrets import display_url
from chaosrunner.timestamps import seconds_between

SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

# abort reason text -> label; the first match wins, "other" when none does.
ABORT_REASONS = (
    ("halt", re.compile(r"^halt\b")),
    ("alert", re.compile(r"\balert")),
    ("burn_rate", re.compile(r"burn rate")),
    ("budget", re.compile(r"of the error budget")),
    ("no_data", re.compile(r"no data")),
    ("sli_unreadable", re.compile(r"cannot be read")),
    ("driver_error", re.compile(r"driver error")),
    ("ledger", re.compile(r"ledger")),
)


def abort_reason_label(reason: str) -> str:
    return next((label for label, pattern in ABORT_REASONS if pattern.search(reason)), "other")


class RunnerMetrics:
    """The process's registry and metric families."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter("chaosrunner_runs", "Runs ended, by verdict",
                            ["experiment", "verdict"], registry=r)
        self.aborts = Counter("chaosrunner_aborts", "Runs aborted, by reason",
                              ["experiment", "reason"], registry=r)
        self.faults = Gauge("chaosrunner_faults_in_effect", "Faults injected and not yet "
                            "reverted", ["experiment"], registry=r)
        self.rollback = Histogram("chaosrunner_rollback_seconds", "Duration of the rollback "
                                  "phase", ["experiment"], buckets=SECONDS_BUCKETS, registry=r)
        self.reaction = Histogram("chaosrunner_abort_reaction_seconds", "From the abort "
                                  "decision to the last fault taken back", ["experiment"],
                                  buckets=SECONDS_BUCKETS, registry=r)
        self.sli = Gauge("chaosrunner_sli_value", "Last SLI reading", ["experiment", "slo"],
                         registry=r)
        self.sli_good = Gauge("chaosrunner_sli_good", "1 when the last reading met the SLO",
                              ["experiment", "slo"], registry=r)
        self.gamedays = Counter("chaosrunner_gamedays", "Game days ended (chaosrunner "
                                "schedule), by verdict", ["gameday", "verdict"], registry=r)
        self.running = Gauge("chaosrunner_run_in_progress", "1 while a run is in progress",
                             ["experiment"], registry=r)
        self.server: Any = None
        self.listening: str | None = None

    def serve(self, address: str) -> None:
        """Serve /metrics on `[HOST:]PORT` (host default 127.0.0.1) until the process ends."""
        from prometheus_client import start_http_server

        host, port = parse_listen(address)
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self.server = server
        self.listening = f"{host}:{server.server_port}"

    def push(self, gateway: str, job: str = "chaosrunner",
             grouping: dict[str, str] | None = None) -> Announcement:
        from prometheus_client import push_to_gateway

        shown = display_url(gateway)
        announcement = Announcement("pushgateway", shown, detail=f"job={job}")
        try:
            push_to_gateway(gateway, job=job, registry=self.registry,
                            grouping_key=grouping, timeout=10)
        except Exception as exc:  # noqa: BLE001 - the run is over; a failed push is told
            announcement.failed = 1
            warn(f"pushing metrics to {shown} failed: {type(exc).__name__}")
        else:
            announcement.sent = 1
        return announcement

    def record_end(self, report: Mapping[str, Any]) -> None:
        """Count an ended run from its report.json (the scheduler reads its children's)."""
        name, abort = str(report["experiment"]), report.get("abort")
        self.runs.labels(name, report["verdict"]).inc()
        if abort:
            self.aborts.labels(name, abort_reason_label(str(abort["reason"]))).inc()
        elif report["verdict"] == "interrupted":
            self.aborts.labels(name, "signal").inc()
        self.faults.labels(name).set(sum(1 for f in report.get("faults", [])
                                         if f.get("injected_at") and not f.get("reverted_at")))
        rollback: Mapping[str, Any] = next(
            (p for p in report.get("phases", []) if p["name"] == "rollback"), {})
        took = seconds_between(rollback.get("start"), rollback.get("end"))
        if took is not None:
            self.rollback.labels(name).observe(took)
        reaction = seconds_between(abort["at"], rollback.get("end")) if abort else None
        if reaction is not None:
            self.reaction.labels(name).observe(max(0.0, reaction))
        self.running.labels(name).set(0)

    def record_gameday(self, name: str, verdict: str, report_dir: Path) -> None:
        """A game day that `chaosrunner schedule` ran in a child process: the day and each
        of its experiments, from the reports it wrote."""
        self.gamedays.labels(name, verdict).inc()
        for path in sorted(report_dir.glob("*/report.json")):
            try:
                self.record_end(json.loads(path.read_text()))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                warn(f"metrics: cannot read {path}: {exc}")

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def parse_listen(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidInput(f"--metrics-port {address!r}: expected PORT or HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


class MetricsObserver:
    """An inline observer feeding one run's events into `RunnerMetrics`."""

    def __init__(self, metrics: RunnerMetrics, experiment: str,
                 pushgateway: str | None = None) -> None:
        self.metrics = metrics
        self.experiment = experiment
        self.pushgateway = pushgateway
        self.in_effect: set[str] = set()
        self.pushed: Announcement | None = None
        metrics.running.labels(experiment).set(1)
        metrics.faults.labels(experiment).set(0)

    def on_event(self, event: Event) -> None:
        kind = event["event"]
        if kind == Injecting.kind:
            self.in_effect.add(str(event["key"]))
        elif kind == Reverted.kind:
            self.in_effect.discard(str(event["key"]))
        elif kind == Sampled.kind:
            for slo, (value, good) in event["slos"].items():
                if value is not None:
                    self.metrics.sli.labels(self.experiment, slo).set(value)
                if good is not None:
                    self.metrics.sli_good.labels(self.experiment, slo).set(1 if good else 0)
        self.metrics.faults.labels(self.experiment).set(len(self.in_effect))

    def finish(self, report: RunReport) -> None:
        self.metrics.record_end(report.to_json())
        if self.pushgateway is not None:
            self.pushed = self.metrics.push(self.pushgateway,
                                            grouping={"experiment": self.experiment})

    def announcements(self) -> list[Announcement]:
        found = [Announcement("metrics", self.metrics.listening)] \
            if self.metrics.listening else []
        return found + ([self.pushed] if self.pushed else [])
