"""The success-criteria grammar: `<slo>[.<stat>] <op> <value>`.

    >>> c = parse_criterion("checkout_probe.p99 < 2s")
    >>> (c.slo, c.stat, c.op, c.value)
    ('checkout_probe', 'p99', '<', 2.0)

A hand-written tokenizer and a fixed grammar; nothing is ever evaluated.
"""

from __future__ import annotations

import re
from typing import Any

from chaosrunner.spec.units import parse_quantity

_TOKEN = re.compile(
    r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_-]*)|(?P<dot>\.)|(?P<op><=|>=|==|!=|<|>)"
    r"|(?P<value>[0-9]+(?:\.[0-9]+)?(?:%|us|µs|ms|s|m|h|d)?))"
)


def _check_statistic(text: str) -> None:
    # Imported here: models import this module (criteria parse at validation).
    from chaosrunner.spec.models import HTTP_STATS

    match = _STAT_LIKE.match(text)
    if match and match.group(1) not in HTTP_STATS:
        raise ValueError(f"criterion {text.strip()!r}: unknown statistic {match.group(1)!r}; "
                         f"the statistics are {', '.join(HTTP_STATS)}")


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    stripped = text.rstrip()
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        if match is None or match.end() == position:
            raise ValueError(f"unexpected {stripped[position:].strip()[:20]!r} in criterion "
                             f"{text!r}; expected '<slo>[.<stat>] <op> <value>' like "
                             "'checkout_probe.p99 < 2s'")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


_STAT_LIKE = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_-]*\.([^\s<>=!]+)\s*(<=|>=|==|!=|<|>)")


def parse_criterion(text: Any) -> dict[str, Any]:
    """Parse one criterion into the fields of `Criterion`."""
    if not isinstance(text, str):
        raise ValueError(f"a success criterion is a string like 'slo >= 99%', got {text!r}")
    _check_statistic(text)
    tokens = tokenize(text)
    kinds = [kind for kind, _ in tokens]
    if kinds == ["name", "op", "value"]:
        (_, slo), (_, op), (_, raw) = tokens
        stat = None
    elif kinds == ["name", "dot", "name", "op", "value"]:
        (_, slo), _, (_, stat), (_, op), (_, raw) = tokens
    else:
        raise ValueError(f"malformed criterion {text!r}: expected '<slo>[.<stat>] <op> <value>' "
                         "with op one of < <= > >= == != and a value like 2s, 99% or 0.5")
    return {"text": text.strip(), "slo": slo, "stat": stat, "op": op,
            "value": parse_quantity(raw)}
