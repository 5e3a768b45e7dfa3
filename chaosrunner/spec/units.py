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

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0,
          "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m|h|d|w)\s*$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$")


def parse_duration(value: Any) -> float:
    """Seconds from '250ms', '2s', '5m', '1h', '30d' (a bare 0 is allowed)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 2s or 250ms, got {value!r}")
    if isinstance(value, int | float) and value == 0:
        return 0.0
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError(
        f"expected a duration with a unit (250ms, 2s, 5m, 1h, 30d), got {value!r}"
    )


def parse_ratio(value: Any) -> float:
    """A fraction in [0, 1] from 0.999 or '99.9%'."""
    if isinstance(value, bool):
        raise ValueError(f"expected a ratio such as 0.999 or 99.9%, got {value!r}")
    number: float
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and value.strip().endswith("%"):
        try:
            number = float(value.strip()[:-1]) / 100.0
        except ValueError:
            raise ValueError(f"expected a ratio such as 0.999 or 99.9%, got {value!r}") from None
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"expected a ratio such as 0.999 or 99.9%, got {value!r}") from None
    else:
        raise ValueError(f"expected a ratio such as 0.999 or 99.9%, got {value!r}")
    if not 0.0 <= number <= 1.0 or math.isnan(number):
        raise ValueError(f"a ratio must lie between 0 and 1 (0% and 100%), got {value!r}")
    return number


def parse_rate(value: Any) -> float:
    """Requests per second from '20/s', '600/m' or a bare number."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    if isinstance(value, str):
        match = _RATE.match(value)
        if match:
            per = {"s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2)]
            rate = float(match.group(1)) / per
            if rate > 0:
                return rate
    raise ValueError(f"expected a positive rate such as 20/s or 600/m, got {value!r}")


def parse_quantity(value: Any) -> float:
    """A target or criterion value: a number, a ratio ('99%') or a duration ('400ms' -> 0.4)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, ratio or duration, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            return parse_ratio(text)
        if _DURATION.match(text):
            return parse_duration(text)
        try:
            return float(text)
        except ValueError:
            pass
    raise ValueError(f"expected a number, a ratio (99%) or a duration (400ms), got {value!r}")


def format_duration(seconds: float) -> str:
    """The shortest exact spelling: 0.25 -> '250ms', 300 -> '5m'."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and float(seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{round(seconds * 1000, 3):g}ms"


def _dump_duration(seconds: float) -> str:
    return format_duration(seconds)


Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(_dump_duration)]
Ratio = Annotated[float, BeforeValidator(parse_ratio)]
Rate = Annotated[float, BeforeValidator(parse_rate)]
Quantity = Annotated[float, BeforeValidator(parse_quantity)]
