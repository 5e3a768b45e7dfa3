"""Tolerances judge values as the Chaos Toolkit does (checked against chaostoolkit-lib)."""

from __future__ import annotations

from typing import Any

import pytest

from chaosrunner.ctk.tolerance import KINDS, ToleranceContext, within_tolerance
from chaosrunner.errors import InvalidInput

PROCESS_OK = {"status": 0, "stdout": "ready: 3 replicas\n", "stderr": ""}
HTTP_OK = {"status": 200, "headers": {}, "body": '{"status": "ok", "pods": [1, 2, 3]}'}

CASES: list[tuple[Any, Any, bool]] = [
    (200, HTTP_OK, True),
    (503, HTTP_OK, False),
    (0, PROCESS_OK, True),
    (1, PROCESS_OK, False),
    (True, True, True),
    (True, False, False),
    ("up", "up", True),
    ("up", "down", False),
    ([200, 201, 204], HTTP_OK, True),
    ([500, 503, 504], HTTP_OK, False),
    ([1, 5], 3, True),
    ([1, 5], 6, False),
    ({"type": "range", "range": [0, 3], "target": "status"}, PROCESS_OK, True),
    ({"type": "range", "range": [1, 3], "target": "status"}, PROCESS_OK, False),
    ({"type": "range", "range": [0.5, 1.5]}, "1.0", True),
    ({"type": "range", "range": [0, 1]}, "not a number", False),
    ({"type": "regex", "pattern": r"ready: \d+ replicas", "target": "stdout"}, PROCESS_OK, True),
    ({"type": "regex", "pattern": "^failed", "target": "stdout"}, PROCESS_OK, False),
]


@pytest.mark.parametrize(("tolerance", "value", "expected"), CASES)
def test_same_answer_as_chaostoolkit(tolerance: Any, value: Any, expected: bool) -> None:
    from chaoslib.hypothesis import within_tolerance as ctk_within_tolerance

    assert within_tolerance(tolerance, value) is expected
    assert ctk_within_tolerance(tolerance, value) is expected  # the reference agrees


@pytest.mark.parametrize(("tolerance", "expected"), [
    ({"type": "jsonpath", "path": "$.status", "expect": "ok", "target": "body"}, True),
    ({"type": "jsonpath", "path": "$.status", "expect": "down", "target": "body"}, False),
    ({"type": "jsonpath", "path": "$.pods[*]", "count": 3, "target": "body"}, True),
    ({"type": "jsonpath", "path": "$.pods[*]", "count": 2, "target": "body"}, False),
    ({"type": "jsonpath", "path": "$.missing", "target": "body"}, False),
    ({"type": "jsonpath", "path": "$.pods[*]", "expect": [1, 2, 3], "target": "body"}, True),
])
def test_jsonpath(tolerance: dict[str, Any], expected: bool) -> None:
    assert within_tolerance(tolerance, HTTP_OK) is expected


def test_probe_tolerance_calls_its_own_probe_with_the_value() -> None:
    tolerance = {"type": "probe", "name": "small",
                 "provider": {"type": "python", "module": "ctk_probe_functions",
                              "func": "is_small", "arguments": {}}}
    assert within_tolerance(tolerance, HTTP_OK, ToleranceContext()) is True
    assert within_tolerance(tolerance, {"status": 500}, ToleranceContext()) is False


def test_substitution_in_patterns() -> None:
    tolerance = {"type": "regex", "pattern": "ready: ${count} replicas", "target": "stdout"}
    assert within_tolerance(tolerance, PROCESS_OK, ToleranceContext({"count": 3}))
    assert not within_tolerance(tolerance, PROCESS_OK, ToleranceContext({"count": 4}))


def test_unknown_tolerances_are_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="unknown tolerance type 'fuzzy'"):
        within_tolerance({"type": "fuzzy"}, 1)
    with pytest.raises(InvalidInput, match="unsupported tolerance"):
        within_tolerance(None, 1)
    assert set(KINDS) == {"range", "regex", "jsonpath", "probe"}
