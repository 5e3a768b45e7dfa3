"""Local HTTP servers the observe tests talk to, over real sockets on 127.0.0.1.

- `Capture`: records every request (a JSON webhook for apprise's json://, a probe target);
- `FakeGrafana`: a FAKE of Grafana's annotations API that checks each request against
  Grafana's documented HTTP API (POST /api/annotations, PATCH /api/annotations/:id) and
  records any violation in `errors` (no Grafana can be installed here);
- `OtlpReceiver`: an OTLP/HTTP trace receiver that decodes the protobuf with
  opentelemetry-proto.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.requests: list[Request] = []
        self.status = 200
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def answer(self, request: Request) -> tuple[int, str, bytes]:
        return self.status, "application/json", b"{}"


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                          self.rfile.read(length) if length else b"")
        with self.server.lock:
            self.server.requests.append(request)
            status, ctype, body = self.server.answer(request)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serving(server: Recorder) -> Iterator[Any]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def capture() -> Any:
    return serving(Recorder(_Handler))


# --- Grafana -----------------------------------------------------------------------------

POST_FIELDS = {"dashboardUID", "dashboardId", "panelId", "time", "timeEnd", "tags", "text"}
PATCH_FIELDS = {"time", "timeEnd", "tags", "text"}


@dataclass
class Annotation:
    id: int
    body: dict[str, Any]
    patches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def current(self) -> dict[str, Any]:
        merged = dict(self.body)
        for patch in self.patches:
            merged.update(patch)
        return merged


class FakeGrafana(Recorder):
    """A fake Grafana: only the annotations endpoints, strict about their documented shape."""

    def __init__(self, token: str) -> None:
        super().__init__(_Handler)
        self.token = token
        self.annotations: dict[int, Annotation] = {}
        self.errors: list[str] = []

    def answer(self, request: Request) -> tuple[int, str, bytes]:
        problem = self._auth(request) or self._content_type(request)
        if problem is None:
            if request.method == "POST" and request.path == "/api/annotations":
                return self._post(request)
            if request.method == "PATCH" and request.path.startswith("/api/annotations/"):
                return self._patch(request)
            problem = f"{request.method} {request.path} is not an annotations endpoint"
        self.errors.append(problem)
        return 400, "application/json", json.dumps({"message": problem}).encode()

    def _auth(self, request: Request) -> str | None:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return "missing or wrong Authorization: Bearer <service account token>"
        return None

    def _content_type(self, request: Request) -> str | None:
        if not request.headers.get("content-type", "").startswith("application/json"):
            return "Content-Type must be application/json"
        return None

    def _post(self, request: Request) -> tuple[int, str, bytes]:
        body = request.json()
        problems = _check_fields(body, POST_FIELDS)
        if not isinstance(body.get("text"), str) or not body.get("text"):
            problems.append("text is required")
        if "time" not in body:
            problems.append("time is required for a region")
        if problems:
            return self._bad(problems)
        annotation = Annotation(len(self.annotations) + 1, body)
        self.annotations[annotation.id] = annotation
        return 200, "application/json", json.dumps(
            {"message": "Annotation added", "id": annotation.id}).encode()

    def _patch(self, request: Request) -> tuple[int, str, bytes]:
        raw_id = request.path.rsplit("/", 1)[1]
        annotation = self.annotations.get(int(raw_id)) if raw_id.isdigit() else None
        if annotation is None:
            return self._bad([f"no annotation {raw_id}"], 404)
        body = request.json()
        problems = _check_fields(body, PATCH_FIELDS)
        end = body.get("timeEnd")
        if isinstance(end, int) and end < annotation.current["time"]:
            problems.append("timeEnd before time")
        if problems:
            return self._bad(problems)
        annotation.patches.append(body)
        return 200, "application/json", b'{"message": "Annotation patched"}'

    def _bad(self, problems: list[str], status: int = 400) -> tuple[int, str, bytes]:
        self.errors.extend(problems)
        return status, "application/json", json.dumps({"message": "; ".join(problems)}).encode()


def _check_fields(body: Any, allowed: set[str]) -> list[str]:
    if not isinstance(body, dict):
        return ["body must be a JSON object"]
    problems = [f"unknown field {key}" for key in body if key not in allowed]
    for key in ("time", "timeEnd", "panelId", "dashboardId"):
        if key in body and not (isinstance(body[key], int) and body[key] >= 0):
            problems.append(f"{key} must be a non-negative integer (epoch ms for times)")
    if "time" in body and "timeEnd" in body and body["timeEnd"] < body["time"]:
        problems.append("timeEnd before time")
    if "tags" in body and not (isinstance(body["tags"], list)
                               and all(isinstance(t, str) for t in body["tags"])):
        problems.append("tags must be a list of strings")
    if "dashboardUID" in body and not isinstance(body["dashboardUID"], str):
        problems.append("dashboardUID must be a string")
    return problems


def grafana(token: str) -> Any:
    return serving(FakeGrafana(token))


# --- OTLP/HTTP ---------------------------------------------------------------------------


class OtlpReceiver(Recorder):
    """Decodes ExportTraceServiceRequest protobufs posted to /v1/traces."""

    def __init__(self) -> None:
        super().__init__(_Handler)
        self.spans: list[Any] = []
        self.errors: list[str] = []

    def answer(self, request: Request) -> tuple[int, str, bytes]:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        if request.method != "POST" or request.path != "/v1/traces":
            self.errors.append(f"{request.method} {request.path}")
            return 404, "text/plain", b"not found"
        if request.headers.get("content-type") != "application/x-protobuf":
            self.errors.append(f"content-type {request.headers.get('content-type')}")
            return 415, "text/plain", b"protobuf only"
        message = ExportTraceServiceRequest()
        message.ParseFromString(request.body)
        for resource_spans in message.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend(scope_spans.spans)
        return 200, "application/x-protobuf", ExportTraceServiceResponse().SerializeToString()


def otlp() -> Any:
    return serving(OtlpReceiver())
