"""What the command line and the config file say about observing runs, and the observers
built from it for one run.

Sources, most specific first: the experiment file (`notify:`, `annotations:`,
`abort.alerts`), its game day (`notify:` added, `annotations:` as a default), the config file
(`--config`, default ~/.config/chaosrunner/config.yaml; `notify:` added, the rest defaults),
and the flags (`--otlp-endpoint`, else OTEL_EXPORTER_OTLP_ENDPOINT; `--metrics-port`,
`--pushgateway`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaosrunner.engine.context import RunHooks
from chaosrunner.errors import InvalidInput
from chaosrunner.observe.base import Observer, ObserverHub
from chaosrunner.spec.loader import load_document
from chaosrunner.spec.models import AnnotationsSpec, GameDay, NotifyTarget, RunnerConfig
from chaosrunner.spec.validate import ExperimentBundle, validate_model

if TYPE_CHECKING:
    from chaosrunner.observe.metrics import RunnerMetrics

DEFAULT_CONFIG = Path("~/.config/chaosrunner/config.yaml")


@dataclass(frozen=True)
class ObserveSettings:
    config: RunnerConfig = dataclasses.field(default_factory=RunnerConfig)
    otlp_endpoint: str | None = None
    metrics: RunnerMetrics | None = None
    metrics_address: str | None = None
    pushgateway: str | None = None
    # From the game day being run, if any.
    gameday_notify: tuple[NotifyTarget, ...] = ()
    gameday_annotations: AnnotationsSpec | None = None
    # Where each notify target is written ('c.yaml:3: notify[0].url'), for messages.
    config_notify_places: tuple[str, ...] = ()
    gameday_notify_places: tuple[str, ...] = ()

    def for_gameday(self, gameday: GameDay,
                    notify_places: tuple[str, ...] = ()) -> ObserveSettings:
        return dataclasses.replace(self, gameday_notify=gameday.notify,
                                   gameday_annotations=gameday.annotations,
                                   gameday_notify_places=notify_places)

    def start(self) -> None:
        """Serve the metrics port (once per process)."""
        if self.metrics is not None and self.metrics_address is not None \
                and self.metrics.listening is None:
            try:
                self.metrics.serve(self.metrics_address)
            except OSError as exc:
                raise InvalidInput(f"--metrics-port {self.metrics_address}: cannot listen "
                                   f"({exc.strerror or exc}); choose a free port") from None


def settings_from_args(args: argparse.Namespace) -> ObserveSettings:
    """The flags and the config file; InvalidInput (exit 4) for a bad config file or flag."""
    config, places = load_config(getattr(args, "config", None))
    otlp = _url("--otlp-endpoint", getattr(args, "otlp_endpoint", None)) \
        or _url("OTEL_EXPORTER_OTLP_ENDPOINT", os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")) \
        or config.otlp_endpoint
    address = getattr(args, "metrics_port", None)
    pushgateway = _url("--pushgateway", getattr(args, "pushgateway", None)) \
        or config.pushgateway
    metrics = None
    if address is not None or pushgateway is not None:
        # Imported here: prometheus_client loads only when the runner's metrics are asked for.
        from chaosrunner.observe.metrics import RunnerMetrics, parse_listen

        if address is not None:
            parse_listen(address)  # a bad value is bad input before anything else happens
        metrics = RunnerMetrics()
    return ObserveSettings(config=config, otlp_endpoint=otlp, metrics=metrics,
                           metrics_address=address, pushgateway=pushgateway,
                           config_notify_places=places)


def _url(where: str, value: str | None) -> str | None:
    if not value:
        return None
    if not value.startswith(("http://", "https://")):
        raise InvalidInput(f"{where} {value!r}: expected an http:// or https:// URL")
    return value


def load_config(path: str | None) -> tuple[RunnerConfig, tuple[str, ...]]:
    """The config file and where its notify targets are written; the default path may be
    missing, an explicit one may not."""
    file = Path(path).expanduser() if path else DEFAULT_CONFIG.expanduser()
    if not file.exists():
        if path:
            raise InvalidInput(f"--config {path}: no such file")
        return RunnerConfig(), ()
    document = load_document(file)
    if document.data is None:
        return RunnerConfig(), ()
    config = validate_model(document, RunnerConfig)
    return config, document.where_items(("notify",), len(config.notify), ("url",))


def build(bundle: ExperimentBundle, settings: ObserveSettings | None,
          run_id: str) -> tuple[ObserverHub, RunHooks]:
    """The observers and engine hooks of one run. InvalidInput (exit 4, before anything
    runs) for an unset `${env:...}` or a URL apprise does not know."""
    # Imported here: each observer (and its client library) loads only when configured.
    from chaosrunner.observe.alerts import AlertStop

    settings = settings or ObserveSettings()
    experiment = bundle.experiment
    stops = (AlertStop(experiment.abort.alerts),) if experiment.abort.alerts else ()
    inline: list[Observer] = []
    background: list[Observer] = []
    headers = None
    if settings.otlp_endpoint:
        # Imported here: each observer (and its client library) loads only when configured.
        from chaosrunner.observe.tracing import RunTracer, otlp_exporter

        tracer = RunTracer(otlp_exporter(settings.otlp_endpoint), experiment.name, run_id,
                           settings.otlp_endpoint, settings.config.trace_url)
        inline.append(tracer)
        headers = tracer.trace_headers
    if settings.metrics is not None:
        # Imported here: each observer (and its client library) loads only when configured.
        from chaosrunner.observe.metrics import MetricsObserver

        inline.append(MetricsObserver(settings.metrics, experiment.name, settings.pushgateway))
    notifier = _notifier(bundle, settings, run_id)
    if notifier is not None:
        background.append(notifier)
    annotations = (experiment.annotations or settings.gameday_annotations
                   or settings.config.annotations)
    if annotations is not None and annotations.grafana is not None:
        # Imported here: each observer (and its client library) loads only when configured.
        from chaosrunner.observe.grafana import GrafanaAnnotator

        # The experiment's own settings are placed at their file:line.
        where = ("annotations.grafana" if annotations is not experiment.annotations else
                 bundle.document.where(("annotations", "grafana")))
        background.append(GrafanaAnnotator(annotations.grafana, experiment.name, run_id,
                                           where=where))
    return ObserverHub(inline, background), RunHooks(stop_conditions=stops,
                                                      trace_headers=headers)


def _notifier(bundle: ExperimentBundle, settings: ObserveSettings, run_id: str) -> Any:
    # Imported here: each observer (and its client library) loads only when configured.
    from chaosrunner.observe.notify import Notifier, open_channel

    sources = (("experiment", bundle.experiment.notify, ()),
               ("game day", settings.gameday_notify, settings.gameday_notify_places),
               ("config file", settings.config.notify, settings.config_notify_places))
    channels = [open_channel(target, _place(bundle, where, index, places))
                for where, targets, places in sources for index, target in enumerate(targets)]
    return Notifier(channels, bundle.experiment.name, run_id) if channels else None


def _place(bundle: ExperimentBundle, source: str, index: int,
           places: tuple[str, ...]) -> str:
    """'exp.yaml:12: experiment notify[0]' for the experiment's own targets; the game
    day's and the config file's at their file:line when known."""
    if source != "experiment":
        return places[index] if index < len(places) else f"{source} notify[{index}]"
    line = bundle.document.line_of(("notify", index))
    return f"{bundle.document.path}:{line}: experiment notify[{index}]"
