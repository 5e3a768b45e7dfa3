"""Hostile and broken files end in exit 4 with file:line, never a traceback (issue 10.6)."""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest
from spec_files import EXPERIMENT as BASE
from spec_files import STEADY

from chaosrunner.cli.main import main

EXPERIMENT = BASE + "    at: 0s\n"


def _replace(old: str, new: str) -> str:
    assert old in EXPERIMENT
    return EXPERIMENT.replace(old, new, 1)


def _line_of(text: str, needle: str) -> int:
    return text[:text.index(needle)].count("\n") + 1


BOMB = "".join(f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n"
               for a, b in zip("abcdefg", "bcdefgh", strict=True))

HOSTILE = {
    "bad date": (_replace("name: demo", "name: 2024-13-45"), "name:"),
    "impossible date": (_replace("name: demo", "name: 2024-02-30"), "name:"),
    "int tag": (_replace("name: demo", "name: !!int abc"), "name:"),
    "float tag": (_replace("name: demo", "name: !!float zz"), "name:"),
    "bool tag": (_replace("name: demo", "name: !!bool maybe"), "name:"),
    "timestamp tag": (_replace("name: demo", "name: !!timestamp x"), "name:"),
    "deep flow nesting": (EXPERIMENT + "x: " + "[" * 500 + "]" * 500 + "\n", "x:"),
    "deep block nesting": (EXPERIMENT + "".join(f"{' ' * i}k{i}:\n" for i in range(500))
                           + " " * 500 + "v: 1\n", "k65:"),
    "kind list": (_replace("kind: Experiment", "kind: [Experiment]"), "kind:"),
    "kind mapping": (_replace("kind: Experiment", "kind: {a: 1}"), "kind:"),
    "infinite for": (_replace("    at: 0s", "    at: 0s\n    for: .inf"), "for:"),
    "huge at": (_replace("    at: 0s", "    at: " + "9" * 400 + "s"), "at:"),
    "huge int duration": (_replace("duration: 10s", "duration: " + "9" * 400), "duration:"),
    "nan interval": (_replace("interval: 250ms", "interval: .nan"), "steady_state:"),
    "control character": (_replace("it holds", "it \x01holds"), "hypothesis:"),
    "alias bomb": ("a: &a [x, x, x, x, x, x, x, x, x]\n" + BOMB + EXPERIMENT, "f:"),
}


@pytest.fixture
def steady(tmp_path: Path) -> Path:
    path = tmp_path / "steady.yaml"
    path.write_text(STEADY)
    return path


def _validate(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["validate", str(path)])
    err = capsys.readouterr().err
    assert code == 4, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_experiment_is_exit_4_at_its_line(name: str, tmp_path: Path, steady: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    text, needle = HOSTILE[name]
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    err = _validate(path, capsys)
    assert f"{path}:{_line_of(text, needle)}:" in err


def test_not_utf8_names_the_line(tmp_path: Path, steady: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "exp.yaml"
    path.write_bytes(EXPERIMENT.replace("it holds", "it h\xffolds").encode("latin-1"))
    assert f"{path}:4: not UTF-8" in _validate(path, capsys)


@pytest.mark.parametrize("value", [".inf", "1" + "0" * 30, "100000000/s", "1e999/s", "-5/s"])
def test_probe_rate_run_cannot_handle_is_refused(value: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "steady.yaml").write_text(STEADY.replace("rate: 20/s", f"rate: {value}"))
    path = tmp_path / "exp.yaml"
    path.write_text(EXPERIMENT)
    assert re.search(r"steady\.yaml:6: ", _validate(path, capsys))


def test_negative_duration_says_must_be_positive(tmp_path: Path, steady: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(_replace("duration: 10s", "duration: -10s"))
    assert "must be positive" in _validate(path, capsys)


@pytest.mark.parametrize("kind", ["device", "fifo", "directory"])
def test_non_regular_steady_state_is_refused_before_reading(
        kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = {"device": "/dev/zero", "fifo": str(tmp_path / "pipe"),
              "directory": str(tmp_path / "dir")}[kind]
    if kind == "fifo":
        os.mkfifo(target)  # nobody writes to it: a read would hang the test
    if kind == "directory":
        os.mkdir(target)
    path = tmp_path / "exp.yaml"
    path.write_text(_replace("from: steady.yaml", f"from: {target}"))
    err = _validate(path, capsys)
    assert f"{path}:5:" in err and target in err
    assert re.search(r"is a (device|FIFO|directory)", err)


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_non_regular_file_argument_is_refused(kind: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    target = "/dev/zero" if kind == "device" else str(tmp_path / "pipe")
    if kind == "fifo":
        os.mkfifo(target)
    assert "expected a YAML or JSON file" in _validate(Path(target), capsys)


def test_oversized_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(textwrap.dedent(EXPERIMENT) + "#" * (2 << 20) + "\n")
    assert "limit" in _validate(path, capsys)
