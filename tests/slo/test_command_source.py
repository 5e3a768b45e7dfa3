"""The command SLI source runs a real program."""

from __future__ import annotations

import asyncio
import sys

import pytest

from chaosrunner.errors import SourceError
from chaosrunner.slo.sources.base import SourceContext
from chaosrunner.slo.sources.command import CommandSource
from chaosrunner.spec.models import SLO


def read(script: str, allow_exec: bool = True, timeout: str = "5s"):  # type: ignore[no-untyped-def]
    slo = SLO.model_validate({"sli": {"command": {"run": [sys.executable, "-c", script],
                                                  "timeout": timeout}}, "target": 0.99})
    source = CommandSource("cmd", slo, None, SourceContext(allow_exec=allow_exec))
    return asyncio.run(source.read(1.0))


def test_last_number_on_stdout_is_the_reading() -> None:
    assert read("print('good: 998 of 1000'); print(0.998)").value == 0.998
    assert read("print('1e-3')").value == 0.001


@pytest.mark.parametrize(("script", "note"), [
    ("print('nothing here')", "printed no number"),
    ("import sys; sys.stderr.write('boom\\n'); sys.exit(3)", "exited 3: boom"),
])
def test_failures_are_no_data_with_the_reason(script: str, note: str) -> None:
    reading = read(script)
    assert reading.value is None and note in (reading.note or "")


def test_timeout_kills_the_program() -> None:
    reading = read("import time; time.sleep(30)", timeout="300ms")
    assert reading.value is None and "timed out" in (reading.note or "")


def test_refuses_without_allow_exec() -> None:
    with pytest.raises(SourceError, match="--allow-exec"):
        read("print(1)", allow_exec=False)


def test_shorthand_command_forms() -> None:
    as_text = SLO.model_validate({"sli": {"command": f"{sys.executable} -c 'print(1)'"},
                                  "target": 0.5})
    as_list = SLO.model_validate({"sli": {"command": [sys.executable, "-c", "print(1)"]},
                                  "target": 0.5})
    assert as_text.sli.command == as_list.sli.command
    assert as_text.sli.command is not None and as_text.sli.command.run[1:] == ("-c", "print(1)")
