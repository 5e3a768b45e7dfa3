"""OpenTelemetry: a run is one trace, exported over OTLP/HTTP.

    run <experiment>                      (root: run id, verdict, exit code)
      phase plan | before | faults | rollback | after
        inject <fault> -> <target>        (the driver call; error status when it failed)
        revert <fault> -> <target>
      events: "abort decision" (reason), on the root and on the phase it happened in

The endpoint is a base URL as in OTEL_EXPORTER_OTLP_ENDPOINT: spans go to
`<endpoint>/v1/traces`. The run's own TracerProvider is used, never the global one, so
two runs in one process (a game day) are two traces. Probe requests carry the current
phase's `traceparent` (`trace_headers`), so the service's own spans join the run's trace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from chaosrunner import __version__
from chaosrunner.engine.events import (
    AbortRequested,
    Injected,
    Injecting,
    PhaseBegun,
    Reverted,
    Reverting,
)
from chaosrunner.observe.base import Event
from chaosrunner.report.model import Announcement, RunReport
from chaosrunner.secrets import display_url

FLUSH_TIMEOUT_MS = 10_000


def traces_url(endpoint: str) -> str:
    """OTLP/HTTP traces URL of a base endpoint (`http://collector:4318`)."""
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


def otlp_exporter(endpoint: str) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=traces_url(endpoint), timeout=5.0)


class CountingExporter(SpanExporter):
    """Counts what the exporter delivered and what it could not, for the report."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.sent = self.failed = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception:  # noqa: BLE001 - a collector that is down must not break the run
            result = SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            self.sent += len(spans)
        else:
            self.failed += len(spans)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class RunTracer:
    """An inline observer turning the run's events into spans."""

    def __init__(self, exporter: SpanExporter, experiment: str, run_id: str,
                 endpoint: str, link_template: str | None = None) -> None:
        self.provider = TracerProvider(resource=Resource.create({
            "service.name": "chaosrunner", "service.version": __version__}))
        self.exporter = CountingExporter(exporter)
        self.provider.add_span_processor(BatchSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("chaosrunner", __version__)
        self.root = self.tracer.start_span(f"run {experiment}", attributes={
            "chaosrunner.experiment": experiment, "chaosrunner.run_id": run_id})
        self.phase: Span | None = None
        self.calls: dict[str, Span] = {}  # by injection key: the driver call in flight
        self.endpoint = endpoint
        self.trace_id = format(self.root.get_span_context().trace_id, "032x")
        self.link = link_template.replace("{trace_id}", self.trace_id) if link_template \
            else None

    def trace_headers(self) -> Mapping[str, str]:
        """W3C trace context of the current phase (or the run), for outgoing requests."""
        carrier: dict[str, str] = {}
        context = trace.set_span_in_context(self.phase or self.root)
        TraceContextTextMapPropagator().inject(carrier, context=context)
        return carrier

    def on_event(self, event: Event) -> None:
        kind = event["event"]
        if kind == PhaseBegun.kind:
            self._end_phase()
            self.phase = self._child(self.root, f"phase {event['phase']}",
                                     {"chaosrunner.phase": str(event["phase"])})
        elif kind in (Injecting.kind, Reverting.kind):
            verb = "inject" if kind == Injecting.kind else "revert"
            self._end_call(str(event["key"]), None)
            self.calls[str(event["key"])] = self._child(
                self.phase or self.root, f"{verb} {event['fault']} -> {event['target']}",
                {"chaosrunner.fault": str(event["fault"]),
                 "chaosrunner.target": str(event["target"]),
                 "chaosrunner.driver_call": verb, "chaosrunner.key": str(event["key"])})
        elif kind in (Injected.kind, Reverted.kind):
            self._end_call(str(event["key"]), None)
        elif kind == AbortRequested.kind:
            attributes = {"chaosrunner.reason": str(event.get("message", ""))}
            for span in (self.root, self.phase):
                if span is not None:
                    span.add_event("abort decision", attributes)

    def finish(self, report: RunReport) -> None:
        for key in list(self.calls):
            error = next((f.error for f in report.faults if f.key == key), None)
            self._end_call(key, error or "did not complete")
        self._end_phase()
        self.root.set_attributes({"chaosrunner.verdict": report.verdict,
                                  "chaosrunner.exit_code": report.exit_code})
        if report.verdict not in ("passed", "not_started"):
            self.root.set_status(Status(StatusCode.ERROR, report.reason or report.verdict))
        self.root.end()
        report.trace_id = self.trace_id
        self.provider.force_flush(FLUSH_TIMEOUT_MS)
        self.provider.shutdown()

    def announcements(self) -> list[Announcement]:
        return [Announcement("otlp", display_url(traces_url(self.endpoint)),
                             sent=self.exporter.sent, failed=self.exporter.failed,
                             detail=self.trace_id, link=self.link)]

    def _child(self, parent: Span, name: str, attributes: dict[str, Any]) -> Span:
        return self.tracer.start_span(name, context=trace.set_span_in_context(parent),
                                      attributes=attributes)

    def _end_phase(self) -> None:
        if self.phase is not None:
            self.phase.end()
            self.phase = None

    def _end_call(self, key: str, error: str | None) -> None:
        span = self.calls.pop(key, None)
        if span is None:
            return
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end()
