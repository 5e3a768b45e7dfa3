"""Notifications through apprise's json:// to a local webhook: the messages, their
isolation from the run, and secrets that are never printed."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from observe_run import Runner
from observe_servers import capture

from chaosrunner.errors import InvalidInput
from chaosrunner.observe.settings import load_config, settings_from_args
from chaosrunner.testing.fakes import World
from chaosrunner.testing.html import visible_text

SECRET = "s3cr3t-hook-password"


def notify_yaml(url: str, extra: str = "") -> str:
    return f"""
notify:
  - url: "{url}"{extra}
"""


def hook_url(base: str) -> str:
    # json://user:password@host:port/path; the password comes from the environment
    return base.replace("http://", "json://chaos:${env:HOOK_PASSWORD}@") + "/hook"


@pytest.fixture(autouse=True)
def hook_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_PASSWORD", SECRET)


def test_start_and_end_messages_reach_the_webhook(run_experiment: Runner) -> None:
    with capture() as hook:
        outcome = run_experiment(notify_yaml(hook_url(hook.url)))
    assert outcome.code == 0, outcome.err
    messages = [r.json() for r in hook.requests]
    assert [m["title"] for m in messages] == ["chaos experiment observed started",
                                              "chaos experiment observed: passed"]
    end = messages[-1]["message"]
    assert "verdict passed (exit 0)" in end and str(outcome.report_dir) in end
    assert all(r.headers["authorization"].startswith("Basic ") for r in hook.requests)
    announced = outcome.report["announced"]
    assert [(a["channel"], a["sent"], a["failed"]) for a in announced] == [("notify", 2, 0)]
    assert SECRET not in outcome.everything_written()
    text = visible_text((outcome.report_dir / "report.html").read_text())
    assert "Announced" in text and announced[0]["target"] in text


def test_a_failing_webhook_changes_nothing_but_is_counted(run_experiment: Runner) -> None:
    with capture() as hook:
        hook.status = 500
        outcome = run_experiment(notify_yaml(hook_url(hook.url)))
    assert outcome.code == 0 and outcome.report["verdict"] == "passed"
    assert len(hook.requests) == 2
    [announced] = outcome.report["announced"]
    assert (announced["sent"], announced["failed"]) == (0, 2)
    assert "notification (start)" in outcome.err and "failed" in outcome.err
    assert SECRET not in outcome.everything_written()


def test_abort_and_rollback_incomplete_are_announced(run_experiment: Runner,
                                                     world: World) -> None:
    world.fail_revert = 100  # every revert fails: rollback_incomplete
    world.down_value = 0.5  # burns 50x
    with capture() as hook:
        outcome = run_experiment(notify_yaml(hook_url(hook.url)) + """
abort:
  error_budget: {slo: availability, burn_rate: 10, windows: [250ms, 500ms]}
""")
    world.fail_revert = 0
    assert outcome.code == 5, outcome.err
    titles = [r.json()["title"] for r in hook.requests]
    assert titles == ["chaos experiment observed started",
                      "chaos experiment observed: abort",
                      "chaos experiment observed: ROLLBACK INCOMPLETE",
                      "chaos experiment observed: rollback_incomplete"]
    assert "chaosrunner recover" in hook.requests[2].json()["message"]


def test_halt_is_its_own_message_and_targets_choose_their_events(
        run_experiment: Runner, world: World, tmp_path: Path) -> None:
    from chaosrunner.engine.ledger import Ledger

    class HaltingSet(set[str]):
        """The operator presses the red button the moment the fault lands."""

        def add(self, item: str) -> None:
            super().add(item)
            Ledger(tmp_path / "state").halt("red button")

    world.down = HaltingSet(world.down)
    with capture() as everything, capture() as only_halts:
        outcome = run_experiment(notify_yaml(hook_url(everything.url))
                                 + f'  - {{url: "{hook_url(only_halts.url)}", events: [halt]}}\n')
    assert outcome.code == 2, outcome.err
    assert [r.json()["title"] for r in only_halts.requests] == [
        "chaos experiment observed: halt"]
    assert "halt: red button" in only_halts.requests[0].json()["message"]
    assert len(everything.requests) == 3


def test_an_unset_secret_is_bad_input_and_nothing_runs(run_experiment: Runner, world: World,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOOK_PASSWORD")
    with capture() as hook:
        outcome = run_experiment(notify_yaml(hook_url(hook.url)))
    assert outcome.code == 4
    assert "experiment notify[0] refers to ${env:HOOK_PASSWORD}, which is not set" in outcome.err
    assert world.log == [] and hook.requests == []


def test_an_unknown_scheme_is_bad_input(run_experiment: Runner, world: World) -> None:
    outcome = run_experiment(notify_yaml("nosuchservice://x/y"))
    assert outcome.code == 4 and "apprise does not understand this URL" in outcome.err
    assert world.log == []


def test_a_misspelt_notify_key_is_placed(run_experiment: Runner) -> None:
    outcome = run_experiment(notify_yaml("json://127.0.0.1:1/", "\n    event: [end]"))
    assert outcome.code == 4
    assert "notify[0].event: unknown key" in outcome.err and "exp1.yaml:" in outcome.err


def test_config_file_targets_are_added(run_experiment: Runner, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    config = home / ".config" / "chaosrunner" / "config.yaml"
    config.parent.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    with capture() as hook:
        config.write_text(f'notify: ["{hook_url(hook.url)}"]\n')
        outcome = run_experiment()
    assert outcome.code == 0, outcome.err
    assert len(hook.requests) == 2
    assert outcome.report["announced"][0]["channel"] == "notify"


def test_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        settings_from_args(argparse.Namespace(config=str(tmp_path / "missing.yaml")))
    bad = tmp_path / "bad.yaml"
    bad.write_text("notify:\n  - {url: 'json://x', colour: red}\n")
    with pytest.raises(InvalidInput, match=r"bad.yaml:2.*notify\[0\].colour: unknown key"):
        load_config(str(bad))


def test_a_game_days_targets_hear_of_each_of_its_experiments(
        run_experiment: Runner, world: World, tmp_path: Path) -> None:
    from functools import partial

    from chaosrunner.app.load import load_gameday
    from chaosrunner.app.run import run_file
    from chaosrunner.engine.context import RunOptions
    from chaosrunner.gameday.run import run_gameday
    from chaosrunner.observe.settings import ObserveSettings
    from chaosrunner.testing.fakes import fake_backends, fake_drivers

    run_experiment()  # writes steady.yaml and exp1.yaml
    with capture() as hook:
        (tmp_path / "day.yaml").write_text(f"""
apiVersion: chaosrunner/v1
kind: GameDay
name: day
experiments: [exp1.yaml, exp1.yaml]
notify: ["{hook_url(hook.url)}"]
""")
        loaded = load_gameday(tmp_path / "day.yaml", drivers=fake_drivers(world))
        runner = partial(run_file, backends=fake_backends(world, value=lambda w: 1.0))
        report = run_gameday(loaded, RunOptions(state_dir=tmp_path / "state",
                                                observe=ObserveSettings()),
                             tmp_path / "gd", run_experiment=runner)
    assert report.exit_code == 0
    titles = [r.json()["title"] for r in hook.requests]
    assert titles == ["chaos experiment observed started", "chaos experiment observed: passed"] * 2


def test_a_dry_run_announces_nothing(run_experiment: Runner) -> None:
    with capture() as hook:
        outcome = run_experiment(notify_yaml(hook_url(hook.url)), "--dry-run")
    assert outcome.code == 0 and hook.requests == []


VALIDATE_STEADY = """\
apiVersion: chaosrunner/v1
kind: SteadyState
name: s
service_level_objectives:
  up: {sli: {http: {url: "http://127.0.0.1:9/", rate: 1/s}}, target: 99%}
"""
VALIDATE_EXPERIMENT = """\
apiVersion: chaosrunner/v1
kind: Experiment
name: e
hypothesis: h
steady_state: {from: s.yaml}
duration: 5s
faults:
  - {name: slow, action: toxiproxy.latency, target: {proxy: p}, with: {latency: 1s}}
notify:
  - "json://127.0.0.1:9/hook"
  - "nosuchservice://x/y"
"""


@pytest.mark.parametrize(("name", "text", "line"), [
    ("x.yaml", VALIDATE_EXPERIMENT, 11),
    ("c.yaml", "kind: Config\nnotify: [\"nosuchservice://x/y\"]\n", 2),
    ("g.yaml", "apiVersion: chaosrunner/v1\nkind: GameDay\nname: g\nexperiments: [ok.yaml]\n"
               "notify:\n  - url: \"nosuchservice://x/y\"\n", 6),
])
def test_validate_refuses_what_run_refuses_an_unknown_scheme_at_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str,
        line: int) -> None:
    from chaosrunner.cli.main import main

    (tmp_path / "s.yaml").write_text(VALIDATE_STEADY)
    (tmp_path / "ok.yaml").write_text(VALIDATE_EXPERIMENT.split("notify:")[0])
    (tmp_path / name).write_text(text)
    assert main(["validate", str(tmp_path / "ok.yaml")]) == 0
    assert main(["validate", str(tmp_path / name)]) == 4
    said = capsys.readouterr()
    out = said.out + said.err
    assert f"{name}:{line}: notify[" in out and "apprise does not understand this URL" in out


def test_an_unset_secret_names_the_file_and_line(run_experiment: Runner,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOOK_PASSWORD")
    outcome = run_experiment(notify_yaml("json://chaos:${env:HOOK_PASSWORD}@127.0.0.1:1/"))
    assert outcome.code == 4
    assert re.search(r"exp1\.yaml:\d+: experiment notify\[0\] refers to", outcome.err), \
        outcome.err


def test_an_unset_secret_in_the_config_file_names_its_file_and_line(
        run_experiment: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOOK_PASSWORD", raising=False)
    config = tmp_path / "c.yaml"
    config.write_text('kind: Config\nnotify:\n  - "json://x.invalid/"\n'
                      '  - "json://chaos:${env:HOOK_PASSWORD}@127.0.0.1:1/"\n')
    outcome = run_experiment("", "--config", str(config))
    assert outcome.code == 4
    assert "c.yaml:4: notify[1].url refers to ${env:HOOK_PASSWORD}, which is not set" \
        in outcome.err, outcome.err


def test_an_unset_secret_in_a_game_day_names_its_file_and_line(
        run_experiment: Runner, world: World, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from functools import partial

    from chaosrunner.app.load import load_gameday
    from chaosrunner.app.run import run_file
    from chaosrunner.engine.context import RunOptions
    from chaosrunner.gameday.run import run_gameday
    from chaosrunner.observe.settings import ObserveSettings
    from chaosrunner.testing.fakes import fake_backends, fake_drivers

    monkeypatch.delenv("HOOK_PASSWORD", raising=False)
    run_experiment()  # writes steady.yaml and exp1.yaml
    (tmp_path / "day.yaml").write_text("apiVersion: chaosrunner/v1\nkind: GameDay\nname: day\n"
                                       "experiments: [exp1.yaml]\nnotify:\n"
                                       '  - "json://chaos:${env:HOOK_PASSWORD}@127.0.0.1:1/"\n')
    loaded = load_gameday(tmp_path / "day.yaml", drivers=fake_drivers(world))
    runner = partial(run_file, backends=fake_backends(world, value=lambda w: 1.0))
    report = run_gameday(loaded, RunOptions(state_dir=tmp_path / "state",
                                            observe=ObserveSettings()),
                         tmp_path / "gd", run_experiment=runner)
    [outcome] = report.experiments
    assert (report.exit_code, outcome.exit_code) == (4, 4)
    assert outcome.reason is not None and "day.yaml:6: notify[0].url refers to " \
        "${env:HOOK_PASSWORD}, which is not set" in outcome.reason, outcome.reason
