"""Functions that Chaos Toolkit python providers and `probe` tolerances call in the tests."""

from __future__ import annotations

from typing import Any


def is_small(value: Any) -> bool:
    return isinstance(value, dict) and int(value.get("status", 999)) < 300


def echo(message: str, configuration: dict[str, Any] | None = None,
         secrets: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"message": message, "configuration": configuration or {},
            "secret_keys": sorted(secrets or {})}
