"""Toxics: what they are (API model, validation) and what they do to one connection.

A `Toxic` is the API object (`name`, `type`, `stream`, `toxicity`, `attributes`), shared by
every connection of a proxy. A `Stage` is one toxic applied to one direction of one
connection: it holds the per-connection state (bytes sent, bandwidth schedule, timers)
and turns each incoming item into the items that go on. Stages never sleep: they only
stamp each chunk with the loop time at which it may be written (`due`), so a chain of
stages is a pure, ordered transformation and the link writes items in order, each no
earlier than its `due`. That is what keeps bytes in order while toxics come and go.

Units follow Toxiproxy: milliseconds everywhere, except slicer's `delay` (microseconds)
and bandwidth's `rate` (KB/s, 1 KB = 1000 bytes).
"""

from __future__ import annotations

import enum
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

STREAMS = ("upstream", "downstream")


class ApiError(Exception):
    """An error the API returns as `{"error": message, "status": status}`."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def to_json(self) -> dict[str, Any]:
        return {"error": self.message, "status": self.status}


# Toxiproxy's error values (api.go); the texts are the wire contract clients match on.
def bad_request(detail: str) -> ApiError:
    return ApiError(f"bad request body: {detail}", 400)


def missing_field(what: str) -> ApiError:
    return ApiError(f"missing required field: {what}", 400)


PROXY_NOT_FOUND = ("proxy not found", 404)
PROXY_EXISTS = ("proxy already exists", 409)
TOXIC_NOT_FOUND = ("toxic not found", 404)
TOXIC_EXISTS = ("toxic already exists", 409)
INVALID_STREAM = ("stream was invalid, can be either upstream or downstream", 400)
INVALID_TYPE = ("invalid toxic type", 400)


def api_error(pair: tuple[str, int]) -> ApiError:
    return ApiError(*pair)


# --- the API model -------------------------------------------------------------------------

# Attribute names and defaults per type, in Toxiproxy's JSON order. The TCP toxics' are
# integers; the HTTP toxics' (an extension) are checked by `_check_http` below.
ATTRIBUTES: dict[str, dict[str, Any]] = {
    "noop": {},
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
}

# HTTP toxics: what they match on, then what they do. `toxicity` is per matching request.
MATCH_DEFAULTS: dict[str, Any] = {"method": "", "path": "", "headers": {}}
HTTP_ATTRIBUTES: dict[str, dict[str, Any]] = {
    "http_error": {"status": 503, "body": "", "response_headers": {}, **MATCH_DEFAULTS},
    "http_latency": {"latency": 0, "jitter": 0, **MATCH_DEFAULTS},
    "http_reset": {**MATCH_DEFAULTS},
}
ATTRIBUTES.update(HTTP_ATTRIBUTES)

# Every toxic may carry an expiry (an extension): Unix time in seconds after which the proxy
# removes it by itself. Absent (or null) means no expiry, and the API shows nothing new.
EXPIRES_AT = "expires_at"

_GO_TYPE = {"noop": "NoopToxic", "latency": "LatencyToxic", "bandwidth": "BandwidthToxic",
            "slow_close": "SlowCloseToxic", "timeout": "TimeoutToxic",
            "reset_peer": "ResetToxic", "slicer": "SlicerToxic", "limit_data": "LimitDataToxic",
            "http_error": "HttpErrorToxic", "http_latency": "HttpLatencyToxic",
            "http_reset": "HttpResetToxic"}


def merge_attributes(kind: str, current: Mapping[str, Any], given: Any) -> dict[str, Any]:
    """`current` updated with the known keys of `given`; unknown keys are ignored (as Go does)."""
    if given is None:
        return dict(current)
    if not isinstance(given, dict):
        raise bad_request(f"json: cannot unmarshal {_json_kind(given)} into Go struct field "
                          f"ToxicWrapper.attributes of type toxics.{_GO_TYPE[kind]}")
    merged = dict(current)
    for key, value in given.items():
        if key == EXPIRES_AT:
            _set_expiry(merged, value)
        elif key not in ATTRIBUTES[kind]:
            continue
        elif isinstance(ATTRIBUTES[kind][key], int):
            merged[key] = _int_attribute(kind, key, value)
        else:
            merged[key] = value  # HTTP strings and maps: checked as a whole below
    _check_attributes(kind, merged)
    return merged


def _int_attribute(kind: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise bad_request(f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
                          f"{_GO_TYPE[kind]}.attributes.{key} of type int64")
    return int(value)


def _set_expiry(merged: dict[str, Any], value: Any) -> None:
    if value is None:
        merged.pop(EXPIRES_AT, None)
        return
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value):
        raise bad_request(f"attributes.{EXPIRES_AT} must be Unix time in seconds (a number) "
                          f"or null, got {_json_kind(value)}")
    merged[EXPIRES_AT] = value


def _check_attributes(kind: str, attrs: Mapping[str, Any]) -> None:
    # Real Toxiproxy panics on a slicer with average_size 0; refuse it instead.
    if kind == "slicer" and attrs["average_size"] <= 0:
        raise bad_request("average_size must be greater than 0")
    if kind == "slicer" and attrs["size_variation"] < 0:
        raise bad_request("size_variation must not be negative")
    if kind in HTTP_ATTRIBUTES:
        HttpRule.build(kind, attrs)


@dataclass(frozen=True)
class HttpRule:
    """A checked HTTP toxic: its compiled matchers and what it does to a matching request."""

    kind: str
    method: re.Pattern[str] | None
    path: re.Pattern[str] | None
    headers: tuple[tuple[str, re.Pattern[str]], ...]
    attrs: Mapping[str, Any]

    @classmethod
    def build(cls, kind: str, attrs: Mapping[str, Any]) -> HttpRule:
        """The rule for these attributes, or the API's 400 naming the bad one."""
        if kind == "http_error":
            status = attrs["status"]
            if not 400 <= status <= 599:
                raise bad_request(f"attributes.status must be 400-599, got {status}")
            _expect_str(attrs, "body")
            _expect_str_map(attrs, "response_headers")
            for name, value in attrs["response_headers"].items():
                if not _TOKEN.fullmatch(name) or "\r" in value or "\n" in value:
                    raise bad_request(f"attributes.response_headers: {name!r} is not a "
                                      "valid header (name: a token; value: one line)")
        if kind == "http_latency" and (attrs["latency"] < 0 or attrs["jitter"] < 0):
            raise bad_request("attributes.latency and attributes.jitter must not be negative")
        headers = tuple((name.lower(), _regex(attrs["headers"], name, f"headers.{name}"))
                        for name in _expect_str_map(attrs, "headers"))
        return cls(kind, _optional_regex(attrs, "method"), _optional_regex(attrs, "path"),
                   headers, dict(attrs))

    def matches(self, method: str, target: str, headers: Mapping[str, list[str]]) -> bool:
        """Regexes are searched (`re.search`): anchor them with ^ and $ for a whole match."""
        if self.method is not None and not self.method.search(method):
            return False
        if self.path is not None and not self.path.search(target):
            return False
        for name, pattern in self.headers:
            if not any(pattern.search(value) for value in headers.get(name, ())):
                return False
        return True


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _expect_str(attrs: Mapping[str, Any], key: str) -> str:
    value = attrs[key]
    if not isinstance(value, str):
        raise bad_request(f"attributes.{key} must be a string, got {_json_kind(value)}")
    return value


def _expect_str_map(attrs: Mapping[str, Any], key: str) -> dict[str, str]:
    value = attrs[key]
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in value.items()):
        raise bad_request(f"attributes.{key} must be an object of strings "
                          f"(header name: value), got {_json_kind(value)}")
    return value


def _optional_regex(attrs: Mapping[str, Any], key: str) -> re.Pattern[str] | None:
    text = _expect_str(attrs, key)
    return _regex(attrs, key, key) if text else None


def _regex(source: Mapping[str, Any], key: str, label: str) -> re.Pattern[str]:
    try:
        return re.compile(source[key])
    except re.error as exc:
        raise bad_request(f"attributes.{label} is not a valid regex: {exc}") from None


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number " + repr(value)
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


@dataclass
class Toxic:
    """A toxic as the API shows it. Mutable: PATCH updates attributes and toxicity in place."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any]
    # Bumped on every update so links know to re-flip their coin and refresh the stage.
    revision: int = 0

    @property
    def is_http(self) -> bool:
        return self.type in HTTP_ATTRIBUTES

    @property
    def expires_at(self) -> float | None:
        value = self.attributes.get(EXPIRES_AT)
        return float(value) if value is not None else None

    def rule(self) -> HttpRule:
        """The compiled rule of an HTTP toxic (attributes were checked when they were set)."""
        return HttpRule.build(self.type, self.attributes)

    @classmethod
    def from_request(cls, body: Any) -> Toxic:
        """Parse a create-toxic body with Toxiproxy's defaults and checks, in its order."""
        if not isinstance(body, dict):
            raise bad_request("json: cannot unmarshal into Go value of type toxics.ToxicWrapper")
        stream = body.get("stream", "downstream")
        toxicity = body.get("toxicity", 1.0)
        kind = body.get("type", "")
        name = body.get("name", "")
        for key, value, want in (("name", name, "string"), ("type", kind, "string"),
                                 ("stream", stream, "string")):
            if not isinstance(value, str):
                raise bad_request(f"json: cannot unmarshal {_json_kind(value)} into Go struct "
                                  f"field ToxicWrapper.{key} of type {want}")
        toxicity = _toxicity(toxicity)
        if stream.lower() not in STREAMS:
            raise api_error(INVALID_STREAM)
        stream = stream.lower()
        if not name:
            name = f"{kind}_{stream}"
        if kind not in ATTRIBUTES:
            raise api_error(INVALID_TYPE)
        return cls(name=name, type=kind, stream=stream, toxicity=toxicity,
                   attributes=dict(ATTRIBUTES[kind]))

    def to_json(self) -> dict[str, Any]:
        return {"attributes": dict(self.attributes), "name": self.name, "type": self.type,
                "stream": self.stream, "toxicity": self.toxicity}


def _toxicity(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_request(f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
                          "ToxicWrapper.toxicity of type float32")
    return float(value)


def parse_toxicity(value: Any) -> float:
    """Toxicity from an update body (same rules as on create)."""
    return _toxicity(value)


# --- what a toxic does to one connection ---------------------------------------------------


class End(enum.Enum):
    """How a direction ends: EOF (half close), CLOSE (both sides), RESET (TCP RST both sides)."""

    EOF = "eof"
    CLOSE = "close"
    RESET = "reset"


class Chunk:
    """Bytes, or an end marker, with the loop time before which it must not be written."""

    __slots__ = ("data", "due", "end")

    def __init__(self, data: bytes, due: float, end: End | None = None) -> None:
        self.data = data
        self.due = due
        self.end = end


class Stage:
    """One toxic on one direction of one connection. Subclasses override `data`/`end`."""

    kind: ClassVar[str] = "noop"

    def __init__(self, attrs: Mapping[str, Any]) -> None:
        self.attrs = dict(attrs)
        self.finished = False  # after an end marker, later items are swallowed

    def feed(self, chunk: Chunk, now: float) -> list[Chunk]:
        if self.finished:
            return []
        if chunk.end is not None:
            self.finished = True
            return self.end(chunk, now)
        return self.data(chunk, now)

    def data(self, chunk: Chunk, now: float) -> list[Chunk]:
        return [chunk]

    def end(self, chunk: Chunk, now: float) -> list[Chunk]:
        return [chunk]

    def deadline(self) -> float | None:
        """Loop time at which `expire` must run even without input (timers), or None."""
        return None

    def expire(self, now: float) -> list[Chunk]:
        return []

    def on_removed(self) -> End | None:
        """What removing this toxic does to the connection (timeout closes it)."""
        return None


class LatencyStage(Stage):
    kind = "latency"

    def data(self, chunk: Chunk, now: float) -> list[Chunk]:
        delay = self.attrs["latency"]
        jitter = self.attrs["jitter"]
        if jitter > 0:
            delay += random.randrange(-jitter, jitter)
        # Stamped on the chunk, not slept: stacked latency toxics add up, and a stream of
        # chunks is delayed as a whole rather than one chunk after the other.
        chunk.due += delay / 1000.0
        return [chunk]

    def end(self, chunk: Chunk, now: float) -> list[Chunk]:
        return [chunk]


class BandwidthStage(Stage):
    kind = "bandwidth"

    def __init__(self, attrs: Mapping[str, Any]) -> None:
        super().__init__(attrs)
        self.free_at = 0.0  # when the modelled wire is free again

    def data(self, chunk: Chunk, now: float) -> list[Chunk]:
        rate = self.attrs["rate"] * 1000.0  # bytes per second
        if rate <= 0:
            return [chunk]
        # Pieces of at most 100 ms of wire time, like Toxiproxy, so a slow link trickles.
        piece = max(1, int(rate / 10))
        out = []
        data = chunk.data
        start = max(self.free_at, chunk.due)
        for offset in range(0, len(data), piece):
            part = data[offset:offset + piece]
            start += len(part) / rate
            out.append(Chunk(part, start))
        self.free_at = start
        return out

    def end(self, chunk: Chunk, now: float) -> list[Chunk]:
        chunk.due = max(chunk.due, self.free_at)
        return [chunk]


class SlowCloseStage(Stage):
    kind = "slow_close"

    def end(self, chunk: Chunk, now: float) -> list[Chunk]:
        chunk.due += self.attrs["delay"] / 1000.0
        return [chunk]


class TimeoutStage(Stage):
    """Swallows data; closes the connection after `timeout` ms without incoming data."""

    kind = "timeout"

    def __init__(self, attrs: Mapping[str, Any], now: float) -> None:
        super().__init__(attrs)
        self.last_input = now

    def data(self, chunk: Chunk, now: float) -> list[Chunk]:
        self.last_input = now
        return []

    def end(self, chunk: Chunk, now: float) -> list[Chunk]:
        return [Chunk(b"", now, End.CLOSE)]

    def deadline(self) -> float | None:
        if self.finished or self.attrs["timeout"] <= 0:
            return None
        return self.last_input + int(self.attrs["timeout"]) / 1000.0

    def expire(self, now: float) -> list[Chunk]:
        self.finished = True
        return [Chunk(b"", now, End.CLOSE)]

    def on_removed(self) -> End | None:
        return End.CLOSE


class ResetPeerStage(Stage):
    """On the first input, waits `timeout` ms and resets both sides (data is dropped)."""

    kind = "reset_peer"

    def __init__(self, attrs: Mapping[str, Any]) -> None:
        super().__init__(attrs)
        self.reset_at: float | None = None

    def data(self, chunk: Chunk, now: float) -> list[Chunk]:
        if self.reset_at is None:
            self.reset_at = now + max(0, self.attrs["timeout"]) / 1000.0
        return []

    def end(self, chunk: Chunk, now: float) -> list[Chunk]:
        self.finished = False  # the reset still fires
        return self.data(chunk, now)

    def deadline(self) -> float | None:
        return None if self.finished else self.reset_at

    def expire(self, now: float) -> list[Chunk]:
        self.finished = True
        return [Chunk(b"", now, End.RESET)]


class SlicerStage(Stage):
    kind = "slicer"

    def data(self, chunk: Chunk, now: float) -> list[Chunk]:
        bounds = slice_bounds(len(chunk.data), self.attrs["average_size"],
                              self.attrs["size_variation"])
        step = self.attrs["delay"] / 1_000_000.0
        return [Chunk(chunk.data[a:b], chunk.due + i * step) for i, (a, b) in enumerate(bounds)]


def slice_bounds(size: int, average: int, variation: int) -> list[tuple[int, int]]:
    """Split [0, size) into pieces of about `average` ± `variation` bytes, in order.

    >>> slice_bounds(10, 5, 0)
    [(0, 5), (5, 10)]
    """
    out: list[tuple[int, int]] = []
    stack = [(0, size)]
    while stack:
        start, end = stack.pop()
        if (end - start) - average <= variation or end - start <= 1:
            out.append((start, end))
            continue
        swing = random.randint(-variation, variation) if variation > 0 else 0
        mid = min(max(start + (end - start) // 2 + swing, start + 1), end - 1)
        stack.append((mid, end))  # right half after the left: the stack is LIFO
        stack.append((start, mid))
    return out


class LimitDataStage(Stage):
    """Passes `bytes` bytes per connection and direction, then closes the connection."""

    kind = "limit_data"

    def __init__(self, attrs: Mapping[str, Any]) -> None:
        super().__init__(attrs)
        self.sent = 0

    def data(self, chunk: Chunk, now: float) -> list[Chunk]:
        remaining = max(0, self.attrs["bytes"] - self.sent)
        out = []
        if remaining and chunk.data:
            part = chunk.data[:remaining]
            self.sent += len(part)
            out.append(Chunk(part, chunk.due))
        if self.attrs["bytes"] - self.sent <= 0:
            self.finished = True
            out.append(Chunk(b"", chunk.due, End.CLOSE))
        return out


@dataclass
class StageSlot:
    """A toxic attached to one connection direction: the coin flip and the stage it chose."""

    toxic: Toxic
    revision: int
    stage: Stage
    active: bool = field(default=True)


def make_stage(toxic: Toxic, now: float, previous: Stage | None = None) -> StageSlot:
    """Flip the toxicity coin for one connection and build the stage (or a pass-through).

    An update keeps per-connection state (bytes already sent under limit_data, timers) by
    reusing the previous stage object with the new attributes, as Toxiproxy keeps its state.
    """
    active = random.random() < toxic.toxicity
    if previous is not None and previous.kind == toxic.type:
        previous.attrs = dict(toxic.attributes)
        stage = previous
    else:
        stage = _new_stage(toxic, now)
    if not active:
        return StageSlot(toxic, toxic.revision, Stage({}), active=False)
    return StageSlot(toxic, toxic.revision, stage)


def _new_stage(toxic: Toxic, now: float) -> Stage:
    attrs = toxic.attributes
    kind = toxic.type
    if kind == "latency":
        return LatencyStage(attrs)
    if kind == "bandwidth":
        return BandwidthStage(attrs)
    if kind == "slow_close":
        return SlowCloseStage(attrs)
    if kind == "timeout":
        return TimeoutStage(attrs, now)
    if kind == "reset_peer":
        return ResetPeerStage(attrs)
    if kind == "slicer":
        return SlicerStage(attrs)
    if kind == "limit_data":
        return LimitDataStage(attrs)
    return Stage(attrs)
