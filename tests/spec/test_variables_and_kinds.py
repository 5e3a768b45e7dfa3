"""Unset variables are invalid files (issue 12.5); validate accepts what run accepts (12.2);
plan exits 3 on a refusal (12.1)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import spec_files
from helpers import REPO

from chaosrunner.cli.main import main

STEADY = spec_files.STEADY.replace("127.0.0.1:1/", "127.0.0.1:${PORT}/")
EXPERIMENT = spec_files.EXPERIMENT.replace(
    "steady_state:", "environment: ${ENVIRONMENT:-staging}\nsteady_state:")

GAMEDAY = """\
apiVersion: chaosrunner/v1
kind: GameDay
name: day
schedule: "* * * * *"
experiments: [exp.yaml]
"""


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "steady.yaml").write_text(STEADY)
    (tmp_path / "exp.yaml").write_text(EXPERIMENT)
    (tmp_path / "day.yaml").write_text(GAMEDAY)
    return tmp_path


COMMANDS = {
    "validate": ["validate", "exp.yaml"],
    "validate steady state": ["validate", "steady.yaml"],
    "plan": ["plan", "exp.yaml"],
    "run": ["run", "exp.yaml"],
    "run --dry-run": ["run", "--dry-run", "exp.yaml"],
    "gameday": ["gameday", "day.yaml"],
    "schedule": ["schedule", "--once", "day.yaml"],
    "budget": ["budget", "steady.yaml"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_unset_variable_is_exit_4_naming_it_and_its_line(
        command: str, files: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(files)
    argv = [*COMMANDS[command], "--state-dir", str(files / "state")]
    assert main(argv) == 4
    err = capsys.readouterr().err
    assert "steady.yaml:6:" in err and "${PORT}" in err and "--var PORT=" in err
    assert not (files / "state" / "ledger.jsonl").exists()


def test_var_on_validate_and_budget_gives_the_value(files: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(files)
    assert main(["validate", "exp.yaml", "--var", "PORT=8080"]) == 0
    assert main(["budget", "steady.yaml", "--var", "PORT=8080", "--output", "json"]) == 0
    assert main(["validate", "exp.yaml", "--var", "PORT"]) == 4
    assert "expected K=V" in capsys.readouterr().err


def test_plan_refusal_exits_3_like_run_dry_run(files: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(files)
    common = ["exp.yaml", "--var", "PORT=1", "--var", "ENVIRONMENT=production",
              "--state-dir", str(files / "state")]
    assert main(["plan", *common]) == 3
    assert main(["run", "--dry-run", *common]) == 3
    assert "production" in capsys.readouterr().out


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_validate_accepts_chaos_toolkit_experiments_that_run_accepts(
        suffix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads((REPO / "tests/ctk/experiment.json").read_text())
    path = tmp_path / f"ctk{suffix}"
    path.write_text(json.dumps(data, indent=2))  # JSON is YAML too
    shutil.copy(REPO / "tests/ctk/ctk_probe_functions.py", tmp_path)
    assert main(["validate", str(path)]) == 0
    assert "Chaos Toolkit" in capsys.readouterr().out
    data["method"][0]["provider"]["type"] = "pythn"
    path.write_text(json.dumps(data))
    assert main(["validate", str(path)]) == 4
    err = capsys.readouterr().err
    assert f"{path}:1:" in err and "unknown kind" not in err


def test_names_a_chaos_toolkit_configuration_defines_are_not_unset(
        files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctk_probe = ("    sli:\n      ctk_probe:\n        probe: {type: probe, name: up, tolerance: 200,"
                 " provider: {type: http, url: '${service_url}/health'}}\n"
                 "        configuration: {service_url: 'http://127.0.0.1:1'}\n")
    (files / "steady.yaml").write_text(STEADY.replace(STEADY.splitlines()[5] + "\n", ctk_probe))
    assert main(["validate", str(files / "steady.yaml")]) == 0, capsys.readouterr().err
