"""Skip-or-fail for tests that need a real service.

A test that needs Docker, Prometheus, Chromium, ... calls `need("docker", ok, why)`.
When the service is missing it skips with the reason, unless the service is named in
CHAOSRUNNER_REQUIRE (CI sets it), in which case the test fails: in CI a skip must
never hide a missing service.
"""

from __future__ import annotations

import os

import pytest


def required() -> set[str]:
    raw = os.environ.get("CHAOSRUNNER_REQUIRE", "")
    return {item.strip() for item in raw.split(",") if item.strip()}


def is_required(service: str) -> bool:
    """Is `service` named in CHAOSRUNNER_REQUIRE (or is "all")?"""
    return bool({service, "all"} & required())


def need(service: str, available: bool, reason: str = "") -> None:
    if available:
        return
    message = f"{service} is not available: {reason}" if reason else f"{service} is not available"
    if is_required(service):
        pytest.fail(f"{message} (required by CHAOSRUNNER_REQUIRE)")
    pytest.skip(message)
