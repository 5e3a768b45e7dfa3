"""Game days end to end through the CLI: real processes, real probe traffic, real signals.

The target is `python -m http.server` probed by the http SLI source; faults pause either a
harmless sleeper process (the experiment passes) or the target itself (the burn-rate guard
aborts it). Phases are 1-2 s with 250 ms samples.
"""

from __future__ import annotations

import json
import signal
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers import chaosrunner, http_server, proc_state, sleeping_process, wait_until

from chaosrunner.engine.ledger import Ledger
from chaosrunner.history import query_gamedays, query_runs
from chaosrunner.testing.experiments import probe_steady_state

EXPERIMENT = """
apiVersion: chaosrunner/v1
kind: Experiment
name: {name}
hypothesis: pausing {pid_file} is {what}
environment: staging
steady_state: {{from: steady.yaml, before: 1s, after: 3s, interval: 250ms}}
duration: {duration}
faults:
  - name: freeze
    action: process.pause
    target: {{pid_file: {pid_file}}}
success_criteria:
  - probe >= 99%
abort:
  error_budget: {{slo: probe, burn_rate: 14.4, windows: [1s, 2s]}}
"""


@dataclass
class Site:
    dir: Path
    server: subprocess.Popen[bytes]
    sleeper: subprocess.Popen[bytes]

    @property
    def state(self) -> Path:
        return self.dir / "state"

    def gameday(self, name: str, experiments: list[str], stop_on: str = "failure",
                schedule: str | None = None) -> Path:
        path = self.dir / f"{name}.yaml"
        path.write_text(textwrap.dedent(f"""\
            apiVersion: chaosrunner/v1
            kind: GameDay
            name: {name}
            experiments: [{", ".join(f"{e}.yaml" for e in experiments)}]
            stop_on: {stop_on}
            """) + (f'schedule: "{schedule}"\n' if schedule else ""))
        return path

    def cli(self, *args: str) -> subprocess.Popen[str]:
        return chaosrunner(*args, "--state-dir", str(self.state), cwd=self.dir)

    def nothing_paused(self) -> bool:
        return (proc_state(self.server.pid) != "T" and proc_state(self.sleeper.pid) != "T"
                and Ledger(self.state).open_faults() == [])


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with (sleeping_process(tmp_path / "sleeper.pid") as sleeper,
          http_server(tmp_path) as (url, server, _)):
        (tmp_path / "steady.yaml").write_text(probe_steady_state(url))
        for name, pid_file, what, duration in (
                ("calm", "sleeper.pid", "harmless", "2s"),
                ("calm-again", "sleeper.pid", "harmless", "2s"),
                ("freeze-target", "target.pid", "noticed", "2s"),
                ("long-calm", "sleeper.pid", "harmless", "60s")):
            (tmp_path / f"{name}.yaml").write_text(EXPERIMENT.format(
                name=name, pid_file=pid_file, what=what, duration=duration))
        yield Site(tmp_path, server, sleeper)


def due_now() -> str:
    """A daily cron expression whose slot is this minute: due for --once for 5 minutes."""
    now = datetime.now(UTC)
    return f"{now.minute} {now.hour} * * *"


def finish(proc: subprocess.Popen[str], timeout: float = 90) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_gameday_cli_runs_both_experiments_and_history_lists_them(site: Site) -> None:
    path = site.gameday("day", ["calm", "freeze-target"])
    code, out, err = finish(site.cli("gameday", str(path), "--report-dir", "rep",
                                     "--output", "json"))
    assert code == 2, err
    summary = json.loads(out)  # stdout is the game day's one JSON document
    assert summary["verdict"] == "aborted" and summary["exit_code"] == 2
    assert [e["verdict"] for e in summary["experiments"]] == ["passed", "aborted"]
    for link in ("01-calm", "02-freeze-target"):
        assert (site.dir / "rep" / link / "report.html").exists()
    assert 'href="02-freeze-target/report.html"' in (site.dir / "rep" / "gameday.html"
                                                     ).read_text()
    assert site.nothing_paused()
    runs = site.cli("runs", "--output", "json")
    code, out, err = finish(runs)
    listed = json.loads(out)
    assert code == 0 and [r["experiment"] for r in listed] == ["freeze-target", "calm"]
    assert {r["gameday"] for r in listed} == {"day"}
    assert listed[0]["abort_reason"] and "burn rate" in listed[0]["abort_reason"]
    [day] = query_gamedays(site.state, name="day")
    assert (day.verdict, day.exit_code, day.trigger) == ("aborted", 2, "cli")


def test_stop_on_failure_skips_the_rest(site: Site) -> None:
    path = site.gameday("stopper", ["freeze-target", "calm"], stop_on="failure")
    code, out, err = finish(site.cli("gameday", str(path), "--report-dir", "rep"))
    assert code == 2, err
    data = json.loads((site.dir / "rep" / "gameday.json").read_text())
    assert [e["status"] for e in data["experiments"]] == ["ran", "skipped"]
    assert "stop_on: failure" in data["reason"]
    assert not (site.dir / "rep" / "02-calm").exists()
    assert [r.experiment for r in query_runs(site.state)] == ["freeze-target"]
    assert site.nothing_paused()


def test_schedule_once_runs_what_is_due_exactly_once(site: Site) -> None:
    path = site.gameday("scheduled", ["calm", "calm-again"], schedule=due_now())
    code, out, err = finish(site.cli("schedule", "--once", str(path), "--report-dir", "reps",
                                     "--output", "json"))
    assert code == 0, err
    [run] = json.loads(out)["runs"]
    assert (run["gameday"], run["status"], run["verdict"]) == ("scheduled", "ran", "passed")
    assert "scheduled: started" in err and "scheduled: passed (exit 0)" in err
    assert (site.dir / run["report_dir"] / "gameday.html").exists()
    assert sorted(r.experiment for r in query_runs(site.state, gameday="scheduled")) == \
        ["calm", "calm-again"]
    [day] = query_gamedays(site.state, name="scheduled")
    assert (day.verdict, day.trigger) == ("passed", "schedule")
    # Fired again for the same slot (a CronJob retried, a second scheduler): nothing new.
    code, out, err = finish(site.cli("schedule", "--once", str(path), "--output", "json"))
    assert code == 0 and json.loads(out)["runs"] == [], err
    assert "already started" in err
    assert len(query_runs(site.state)) == 2
    assert site.nothing_paused()


def test_lock_and_sigterm_to_the_scheduler(site: Site) -> None:
    long_day = site.gameday("long", ["long-calm", "calm"], schedule="* * * * * */2")
    other = site.gameday("other", ["calm"], schedule=due_now())
    scheduler = site.cli("schedule", str(long_day), "--report-dir", "reps")
    try:
        ledger = Ledger(site.state)
        assert wait_until(lambda: any(f.confirmed for f in ledger.open_faults())
                          or scheduler.poll() is not None, timeout=60)
        assert scheduler.poll() is None and proc_state(site.sleeper.pid) == "T"

        # A second scheduler, and an operator, find the lock held: nothing starts.
        code, out, err = finish(site.cli("schedule", "--once", str(other)))
        assert code == 3, err
        assert "another game day is running" in err and "game day long" in err
        code, out, err = finish(site.cli("gameday", str(other)))
        assert code == 3 and "another game day is running" in err
        assert query_runs(site.state, experiment="calm") == []

        scheduler.send_signal(signal.SIGTERM)
        code, out, err = finish(scheduler)
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
            scheduler.communicate()
    assert code == 143, err
    assert "SIGTERM: stopping" in err and "long: interrupted (exit 143)" in err
    assert site.nothing_paused()
    [day] = query_gamedays(site.state, name="long")
    assert (day.verdict, day.exit_code, day.trigger) == ("interrupted", 143, "schedule")
    assert day.report_dir is not None
    data = json.loads((site.dir / day.report_dir / "gameday.json").read_text())
    assert [e["status"] for e in data["experiments"]] == ["ran", "skipped"]
    assert data["experiments"][0]["verdict"] == "interrupted"
    # The lock went with the scheduler: the other game day can run now.
    code, out, err = finish(site.cli("schedule", "--once", str(other)))
    assert code == 0, err
    assert [r.experiment for r in query_runs(site.state, gameday="other")] == ["calm"]
