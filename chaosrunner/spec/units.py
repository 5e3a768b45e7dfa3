"""Durations, ratios, rates and targets as they are written in files.

    >>> parse_duration("250ms"), parse_duration("5m"), parse_duration("30d")
    (0.25, 300.0, 2592000.0)
    >>> parse_ratio("99.9%"), parse_ratio(0.999)
    (0.999, 0.999)
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0,
          "w": 604800.0}
# A duration as written: 400ms, 1.5s, 5m (group 1 the number, group 2 the unit).
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m|h|d|w)\s*$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$")
_NEGATIVE = re.compile(r"^\s*-\s*\d")
# What a run can schedule and a probe can send; larger values are typos, and infinite or
# astronomically large ones overflow the clock arithmetic of a run.
MAX_DURATION = 3650 * 86400.0
MAX_RATE = 10_000.0


def parse_duration(value: Any) -> float:
    """Seconds from '250ms', '2s', '5m', '1h', '30d' (a bare 0 is allowed)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 2s or 250ms, got {_shown(value)}")
    if isinstance(value, int | float) and value == 0:
        return 0.0
    if isinstance(value, str):
        match = DURATION.match(value)
        if match:
            return _bounded_duration(float(match.group(1)) * _UNITS[match.group(2)], value)
        if _NEGATIVE.match(value):
            raise ValueError(f"a duration must be positive, got {_shown(value)}")
    if isinstance(value, int | float) and value < 0:
        raise ValueError(f"a duration must be positive, got {_shown(value)}")
    raise ValueError(
        f"expected a duration with a unit (250ms, 2s, 5m, 1h, 30d), got {_shown(value)}"
    )


def _bounded_duration(seconds: float, written: str) -> float:
    if not seconds <= MAX_DURATION:  # also catches inf from a 400-digit number
        raise ValueError(f"duration {_shown(written)} is longer than 10 years; "
                         "write a duration a run can wait for")
    return seconds


def parse_ratio(value: Any) -> float:
    """A fraction in [0, 1] from 0.999 or '99.9%'."""
    wrong = f"expected a ratio such as 0.999 or 99.9%, got {_shown(value)}"
    if isinstance(value, bool):
        raise ValueError(wrong)
    number: float
    if isinstance(value, int | float):
        number = _float(value)
    elif isinstance(value, str) and value.strip().endswith("%"):
        try:
            number = float(value.strip()[:-1]) / 100.0
        except ValueError:
            raise ValueError(wrong) from None
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise ValueError(wrong) from None
    else:
        raise ValueError(wrong)
    if not 0.0 <= number <= 1.0 or math.isnan(number):
        hint = f"; did you mean {value:g}%?" if isinstance(value, int | float) \
            and 1 < value <= 100 else ""
        raise ValueError(f"a ratio must lie between 0 and 1 (0% and 100%), got "
                         f"{_shown(value)}{hint}")
    return number


def parse_rate(value: Any) -> float:
    """Requests per second from '20/s', '600/m' or a bare number."""
    rate = 0.0
    if isinstance(value, int | float) and not isinstance(value, bool):
        rate = _float(value)
    elif isinstance(value, str):
        match = _RATE.match(value)
        if match:
            per = {"s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2)]
            rate = float(match.group(1)) / per
    if rate > MAX_RATE:
        raise ValueError(f"rate {_shown(value)} is more than {MAX_RATE:g}/s, the most a probe "
                         "sends")
    if rate > 0:
        return rate
    raise ValueError(f"expected a positive rate such as 20/s or 600/m, got {_shown(value)}")


def parse_quantity(value: Any) -> float:
    """A target or criterion value: a number, a ratio ('99%') or a duration ('400ms' -> 0.4)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, ratio or duration, got {_shown(value)}")
    if isinstance(value, int | float):
        return _finite(_float(value), value)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            return parse_ratio(text)
        if DURATION.match(text):
            return parse_duration(text)
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            return _finite(number, value)
    raise ValueError(f"expected a number, a ratio (99%) or a duration (400ms), got {_shown(value)}")


def _float(value: float) -> float:
    """float(value), or inf for an integer too large for a float (float() would raise)."""
    return float(value) if abs(value) < 1e300 else math.inf


def _finite(number: float, written: Any) -> float:
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {_shown(written)}")
    return number


def format_duration(seconds: float) -> str:
    """The shortest exact spelling: 0.25 -> '250ms', 300 -> '5m'."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and float(seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{round(seconds * 1000, 3):g}ms"


def _dump_duration(seconds: float) -> str:
    return format_duration(seconds)


# The JSON Schema of each type describes what users write (`chaosrunner schema`, editors),
# not the parsed float: strings with patterns, and `${NAME}` where a --var fills them in.
_NUMBER = r"\d+(\.\d+)?"
_VARIABLE = {"type": "string", "pattern": r"^\s*\$\{[^}]+\}\s*$"}
_DURATION_SCHEMA = {"type": "string", "pattern": rf"^\s*{_NUMBER}\s*(us|µs|ms|s|m|h|d|w)\s*$"}
_PERCENT_SCHEMA = {"type": "string", "pattern": rf"^\s*{_NUMBER}\s*%\s*$"}
DURATION_SCHEMA: dict[str, Any] = {
    "description": "a duration with a unit: 250ms, 2s, 5m, 1h, 30d (or 0)",
    "anyOf": [_DURATION_SCHEMA, {"const": 0}, _VARIABLE]}
RATIO_SCHEMA: dict[str, Any] = {
    "description": "a ratio: 0.999 or '99.9%'",
    "anyOf": [{"type": "number", "minimum": 0, "maximum": 1}, _PERCENT_SCHEMA,
              {"type": "string", "pattern": r"^\s*(0(\.\d+)?|1(\.0+)?)\s*$"}, _VARIABLE]}
RATE_SCHEMA: dict[str, Any] = {
    "description": "requests per second: 20/s, 600/m, 36000/h or a number",
    "anyOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": MAX_RATE},
              {"type": "string", "pattern": rf"^\s*{_NUMBER}\s*/\s*(s|m|h)\s*$"}, _VARIABLE]}
QUANTITY_SCHEMA: dict[str, Any] = {
    "description": "a number, a ratio (99%) or, for latency, a duration (400ms)",
    "anyOf": [{"type": "number"}, _PERCENT_SCHEMA, _DURATION_SCHEMA,
              {"type": "string", "pattern": rf"^\s*-?{_NUMBER}\s*$"}, _VARIABLE]}

Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(_dump_duration),
                     WithJsonSchema(DURATION_SCHEMA)]
Ratio = Annotated[float, BeforeValidator(parse_ratio), WithJsonSchema(RATIO_SCHEMA)]
Rate = Annotated[float, BeforeValidator(parse_rate), WithJsonSchema(RATE_SCHEMA)]
Quantity = Annotated[float, BeforeValidator(parse_quantity), WithJsonSchema(QUANTITY_SCHEMA)]


def _shown(value: Any) -> str:
    """repr() for messages, shortened in the middle: a 400-digit number stays readable."""
    return shorten_middle(repr(value.strip() if isinstance(value, str) else value), 40)


def shorten_middle(text: str, limit: int) -> str:
    """`text` in at most `limit` characters, cut in the middle: the two ends of a command
    line or a path (`.../target.py --port 8001`) are where two of them differ."""
    if len(text) <= limit:
        return text
    keep = max(0, limit - 3)
    head = keep // 2
    return f"{text[:head]}...{text[len(text) - (keep - head):]}" if keep else text[:limit]
