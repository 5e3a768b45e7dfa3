"""Chaos Toolkit experiments run by chaosrunner: unchanged files, real processes and HTTP."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import chaosrunner, http_server, wait_until

from chaosrunner.app.run import run_file
from chaosrunner.cli.main import main
from chaosrunner.engine.context import RunOptions

HERE = Path(__file__).parent


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """A local server whose /health says {"status": "ok"}; env as the experiment expects."""
    with http_server(tmp_path, "shop") as (url, _, _):
        root = tmp_path / "www-shop"
        (root / "health").write_text('{"status": "ok"}')
        markers = tmp_path / "markers"
        markers.mkdir()
        monkeypatch.setenv("SHOP_URL", url.rstrip("/"))
        monkeypatch.setenv("MARKER_DIR", str(markers))
        yield url.rstrip("/"), markers


def run(path: Path, tmp_path: Path, allow_exec: bool = True) -> Any:
    return run_file(path, RunOptions(state_dir=tmp_path / "state", report_dir=tmp_path / "rep",
                                     allow_exec=allow_exec), output="json")


def ctk(tmp_path: Path, name: str = "exp.json", **changes: Any) -> Path:
    """The shipped CTK experiment with some top-level sections replaced."""
    data = json.loads((HERE / "experiment.json").read_text())
    data.update(changes)
    path = tmp_path / name
    path.write_text(json.dumps(data) if name.endswith(".json") else yaml.safe_dump(data))
    return path


def test_existing_ctk_experiment_runs_unchanged(shop: tuple[str, Path], tmp_path: Path) -> None:
    _, markers = shop
    report = run(HERE / "experiment.json", tmp_path)
    assert report.verdict == "passed", report.reason
    assert (markers / "method-ran").exists() and (markers / "rollback-ran").exists()
    assert [c.text for c in report.criteria] == ["service_is_up >= 1", "health_says_ok >= 1"]
    assert {f.name for f in report.faults} == {"ctk-rollbacks", "touch-a-marker",
                                              "read-the-service"}
    assert all(f.reverted_at for f in report.faults)
    phases = [p.name for p in report.phases]
    assert phases == ["plan", "before", "faults", "rollback", "after"]
    files = {p.name for p in (tmp_path / "rep").iterdir()}
    assert {"report.json", "journal.jsonl", "report.md", "junit.xml"} <= files


def test_deviation_after_the_method_fails_and_rollbacks_still_run(
        shop: tuple[str, Path], tmp_path: Path) -> None:
    _, markers = shop
    health = tmp_path / "www-shop" / "health"
    method = [{"type": "action", "name": "break-health", "provider": {
        "type": "process", "path": "mv", "arguments": [str(health), f"{health}.bak"]},
        "pauses": {"after": 0.5}}]
    rollbacks = [{"type": "action", "name": "repair-health", "provider": {
        "type": "process", "path": "mv", "arguments": [f"{health}.bak", str(health)]}}]
    report = run(ctk(tmp_path, method=method, rollbacks=rollbacks), tmp_path)
    assert report.verdict == "failed"
    assert not all(c.passed for c in report.criteria)
    assert health.exists()  # the rollback put it back
    assert report.recovery_seconds is not None  # and the steady state came back after it


def test_activity_timeout_is_enforced_and_aborts_with_rollback(
        shop: tuple[str, Path], tmp_path: Path) -> None:
    _, markers = shop
    method = [{"type": "action", "name": "hang", "provider": {
        "type": "process", "path": "sleep", "arguments": "30", "timeout": 0.5}}]
    started = time.monotonic()
    report = run(ctk(tmp_path, method=method), tmp_path)
    assert time.monotonic() - started < 20
    assert report.verdict == "aborted"
    assert "0.5s" in (report.reason or "")
    assert (markers / "rollback-ran").exists()


def test_yaml_and_continuous_hypothesis(shop: tuple[str, Path], tmp_path: Path) -> None:
    method = [{"type": "action", "name": "wait", "provider": {
        "type": "process", "path": "true"}, "pauses": {"after": 2}}]
    path = ctk(tmp_path, "exp.yaml", method=method, runtime={
        "hypothesis": {"strategy": "continuously", "frequency": 0.5}})
    report = run(path, tmp_path)
    assert report.verdict == "passed", report.reason
    during = [s for s in report.samples if s.phase == "faults" and s.slo == "service_is_up"]
    assert len(during) >= 3  # sampled every 0.5 s through the method, not only at its end


def test_ctk_needs_allow_exec(shop: tuple[str, Path], tmp_path: Path) -> None:
    _, markers = shop
    report = run(HERE / "experiment.json", tmp_path, allow_exec=False)
    assert report.verdict == "not_started"
    assert "--allow-exec" in (report.reason or "")
    assert not (markers / "method-ran").exists()


def test_python_provider_gets_configuration_and_secrets(shop: tuple[str, Path], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", "s3cr3t-value")
    method = [{"type": "action", "name": "echo", "provider": {
        "type": "python", "module": "ctk_probe_functions", "func": "echo",
        "arguments": {"message": "${service_url}"}, "secrets": ["api"]}}]
    path = ctk(tmp_path, method=method,
               secrets={"api": {"token": {"type": "env", "key": "API_TOKEN"}}})
    report = run(path, tmp_path)
    assert report.verdict == "passed", report.reason
    text = (tmp_path / "rep" / "report.json").read_text() + \
        (tmp_path / "rep" / "journal.jsonl").read_text()
    assert "s3cr3t-value" not in text  # secrets from the environment never reach reports
    [echo] = [e for e in report.events if e.get("event") == "inject" and e["fault"] == "echo"]
    assert echo


def test_sigint_rolls_back(shop: tuple[str, Path], tmp_path: Path) -> None:
    _, markers = shop
    method = [{"type": "action", "name": "start", "provider": {"type": "process",
               "path": "true"}, "pauses": {"after": 60}}]
    path = ctk(tmp_path, method=method)
    proc = chaosrunner("run", str(path), "--allow-exec", "--state-dir", str(tmp_path / "s"),
                       "--report-dir", str(tmp_path / "rep"))
    try:
        assert wait_until(lambda: (tmp_path / "rep" / "journal.jsonl").exists() and
                          '"inject"' in (tmp_path / "rep" / "journal.jsonl").read_text(), 30)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert (markers / "rollback-ran").exists()


def test_convert_writes_native_files_that_validate(tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "converted" / "shop.yaml"
    assert main(["convert", str(HERE / "experiment.json"), "-o", str(out)]) == 0
    steady = out.parent / "shop.steady-state.yaml"
    assert out.exists() and steady.exists()
    assert main(["validate", str(out), str(steady)]) == 0
    experiment = yaml.safe_load(out.read_text())
    assert experiment["steady_state"]["from"] == "shop.steady-state.yaml"
    assert [f["at"] for f in experiment["faults"]] == ["0s", "0ms", "1s"]
    assert experiment["faults"][0]["with"]["revert"]["call"] == \
        "chaosrunner.ctk.activities.run_rollbacks"
    capsys.readouterr()
    assert main(["convert", str(HERE / "experiment.json")]) == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["kind"] for d in documents] == ["Experiment", "SteadyState"]


def test_convert_refuses_what_it_cannot_judge(tmp_path: Path, capsys: Any) -> None:
    data = json.loads((HERE / "experiment.json").read_text())
    del data["steady-state-hypothesis"]
    path = tmp_path / "nohyp.json"
    path.write_text(json.dumps(data))
    assert main(["convert", str(path)]) == 4
    assert "steady-state hypothesis" in capsys.readouterr().err
    data = json.loads((HERE / "experiment.json").read_text())
    data["method"].append({"ref": "no-such-activity"})
    path.write_text(json.dumps(data))
    assert main(["convert", str(path)]) == 4
    assert "unknown activity 'no-such-activity'" in capsys.readouterr().err


def test_refs_reuse_activities(tmp_path: Path) -> None:
    data = json.loads((HERE / "experiment.json").read_text())
    data["rollbacks"].append({"ref": "touch-a-marker"})
    path = tmp_path / "refs.json"
    path.write_text(json.dumps(data))
    out = tmp_path / "refs.yaml"
    assert main(["convert", str(path), "-o", str(out)]) == 0
    rollbacks = yaml.safe_load(out.read_text())["faults"][0]["with"]["revert"]["args"]
    assert [a["name"] for a in rollbacks["activities"]] == ["touch-a-rollback-marker",
                                                            "touch-a-marker"]
