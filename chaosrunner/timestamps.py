"""The one home of the timestamps chaosrunner writes and reads back.

Reports, the ledger and the history keep wall times as UTC ISO-8601 strings to the
millisecond (`2026-11-27T10:00:00.123Z`); these helpers write and read them.

    >>> seconds_between("2026-11-27T10:00:00.000Z", "2026-11-27T10:00:02.500Z")
    2.5
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    """'2026-11-27T10:00:00.123Z'."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str | None) -> datetime | None:
    """An aware UTC datetime from an ISO-8601 string (naive times are taken as UTC); None
    for None, an empty string or text that is not a time."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def seconds_between(first: str | None, last: str | None) -> float | None:
    """Seconds from `first` to `last`, to the millisecond; None when either is unknown."""
    start, end = parse_time(first), parse_time(last)
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)
