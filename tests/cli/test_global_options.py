"""Global options (--state-dir, --output, --var, --config, --halt-source) work before or
after the subcommand (DESIGN.md 10), for every command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from chaosrunner.cli.main import COMMAND_MODULES, build_parser, main, parse_command_line
from chaosrunner.engine.ledger import Ledger

GOOD = """\
apiVersion: chaosrunner/v1
kind: SteadyState
name: ok
service_level_objectives:
  up:
    sli: {http: {url: "http://127.0.0.1:${PORT}/", rate: 1/s}}
    target: 99%
"""

# The positional arguments each command needs to parse.
POSITIONALS = {"validate": ["f.yaml"], "plan": ["f.yaml"], "run": ["f.yaml"],
               "budget": ["f.yaml"], "gameday": ["f.yaml"], "schedule": ["f.yaml"],
               "convert": ["f.json"], "capacity": ["s.yaml", "--usage", "q"],
               "load-worker": ["--master", "127.0.0.1:5557"]}
GLOBALS = ["--state-dir", "/tmp/s", "--output", "json", "--var", "A=1",
           "--config", "c.yaml", "--halt-source", "http://127.0.0.1:9/halt"]
EXPECTED = {"state_dir": "/tmp/s", "output": "json", "var": ["A=1"], "config": "c.yaml",
            "halt_source": "http://127.0.0.1:9/halt"}


def parse(argv: list[str]) -> argparse.Namespace:
    return parse_command_line(build_parser(), argv)


@pytest.mark.parametrize("command", sorted(set(COMMAND_MODULES) - {"proxy"}))
def test_every_global_option_parses_before_and_after_every_command(command: str) -> None:
    rest = POSITIONALS.get(command, [])
    before = vars(parse([*GLOBALS, command, *rest]))
    after = vars(parse([command, *rest, *GLOBALS]))
    for key, value in EXPECTED.items():
        assert before[key] == value, (command, key, "before")
        assert after[key] == value, (command, key, "after")


def test_defaults_when_not_given() -> None:
    args = vars(parse(["runs"]))
    assert args["state_dir"] == ".chaosrunner" and args["output"] is None
    assert args["var"] == [] and args["config"] is None and args["halt_source"] is None


def test_vars_before_and_after_add_up_and_after_wins() -> None:
    args = parse(["--var", "A=1", "--var", "B=2", "run", "f.yaml", "--var", "A=3",
                  "--state-dir", "x"])
    assert args.var == ["A=1", "B=2", "A=3"] and args.state_dir == "x"


def test_an_option_after_the_command_wins_over_the_same_before() -> None:
    assert parse(["--state-dir", "a", "recover", "--state-dir", "b"]).state_dir == "b"


def test_proxy_keeps_its_own_config_file() -> None:
    assert parse(["proxy", "--config", "proxies.json"]).config == "proxies.json"
    assert parse(["--config", "proxies.json", "proxy"]).config == "proxies.json"
    assert parse(["--state-dir", "d", "proxy"]).state_dir == "d"


def test_output_before_the_command_reaches_validate(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(GOOD)
    assert main(["--output", "json", "--var", "PORT=9", "validate", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)


def test_halt_before_the_command_uses_that_state_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["--state-dir", "state", "halt", "--reason", "stop"]) == 0
    assert Ledger(tmp_path / "state").halt_reason() == "stop"
    assert not (tmp_path / ".chaosrunner").exists()


def test_the_cronjob_passes_state_dir_to_recover_and_run() -> None:
    text = (Path(__file__).resolve().parents[2] / "deploy" / "cronjob.yaml").read_text()
    assert "chaosrunner --state-dir /data/state recover" in text
    assert "chaosrunner --state-dir /data/state run" in text


@pytest.mark.parametrize("command", [["plan"], ["run", "--dry-run"], ["run"], ["budget"],
                                     ["capacity", "--usage", "q"]])
def test_json_output_says_an_invalid_file_on_stdout_too(
        command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("apiVersion: chaosrunner/v1\nkind: Experiment\nname: [\n")
    argv = [command[0], str(path), *command[1:]]
    assert main(["--output", "json", *argv]) == 4
    said = capsys.readouterr()
    error = json.loads(said.out)
    assert error["exit_code"] == 4 and error["verdict"] == "invalid"
    assert "bad.yaml:" in error["error"] and "bad.yaml:" in said.err


def test_json_output_says_an_unreachable_halt_source_on_stdout(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["--output", "json", "--state-dir", str(tmp_path / "s"), "halt", "--source",
            "http://127.0.0.1:9/halt"]
    assert main(argv) == 4
    assert json.loads(capsys.readouterr().out)["exit_code"] == 4


@pytest.mark.parametrize(("config", "message"), [
    (None, "no such file"),
    ("notify: 5\n", "c.yaml:1: notify: expected a list"),
])
def test_validate_checks_the_config_file_it_is_given_as_run_does(
        config: str | None, message: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(GOOD)
    if config is not None:
        (tmp_path / "c.yaml").write_text(config)
    argv = ["--config", str(tmp_path / "c.yaml"), "--var", "PORT=9", "validate", str(path)]
    assert main(argv) == 4
    said = capsys.readouterr()
    assert message in said.err
    assert main([*argv, "--output", "json"]) == 4
    assert json.loads(capsys.readouterr().out)["valid"] is False
    (tmp_path / "c.yaml").write_text("notify: []\n")
    assert main(argv) == 0


def test_json_output_says_a_failed_sweep_and_an_unreachable_prometheus_on_stdout(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["--output", "json", "--state-dir", str(tmp_path / "s"), "recover",
                 "--kubernetes"]) == 5
    error = json.loads(capsys.readouterr().out)
    assert error["exit_code"] == 5 and "cannot sweep the cluster" in error["error"]
    steady = tmp_path / "p.yaml"
    steady.write_text("apiVersion: chaosrunner/v1\nkind: SteadyState\nname: p\n"
                      "prometheus: http://127.0.0.1:9\nservice_level_objectives:\n"
                      "  up: {sli: 'sum(rate(a[5m])) / sum(rate(b[5m]))', target: 99%}\n")
    assert main(["--output", "json", "capacity", str(steady), "--usage", "q",
                 "--growth", "10%/month"]) == 1
    assert "cannot be reached" in json.loads(capsys.readouterr().out)["error"]


@pytest.mark.parametrize("argv", [
    ["--output", "json", "run"],  # a missing positional, json before the command
    ["run", "f.yaml", "--output", "json", "--bogus"],  # an unknown option, json after
    ["--output=json", "validate"],
    ["--output", "json", "capacity", "s.yaml"],  # --usage is required
])
def test_a_usage_error_under_json_output_is_a_json_error_on_stdout(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 4
    captured = capsys.readouterr()
    error = json.loads(captured.out)
    assert error["exit_code"] == 4 and error["verdict"] == "invalid", error
    assert "--help" in error["error"] and "usage:" in captured.err


def test_a_usage_error_without_json_output_leaves_stdout_empty(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "f.yaml", "--bogus"]) == 4
    captured = capsys.readouterr()
    assert captured.out == "" and "unrecognized arguments: --bogus" in captured.err


@pytest.mark.parametrize("growth", ["-10%/month", "-.5%/month", "-3%/year"])
def test_a_negative_growth_is_a_value_not_an_option(growth: str) -> None:
    argv = ["capacity", "s.yaml", "--usage", "q", "--growth", growth, "--months", "3"]
    args = parse_command_line(build_parser(), argv)
    assert (args.growth, args.months) == (growth, 3)


def test_an_option_after_growth_is_still_an_option(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["capacity", "s.yaml", "--usage", "q", "--growth", "--months", "3"]) == 4
    assert "--growth: expected one argument" in capsys.readouterr().err
