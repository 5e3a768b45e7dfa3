"""write_reports: which files appear, report.json's fields, the journal, the --junit copy."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from report_builders import build_report

from chaosrunner.errors import InvalidInput
from chaosrunner.report.writer import write_reports

ALWAYS = ["report.json", "journal.jsonl", "report.md", "report.html", "junit.xml"]


@pytest.mark.parametrize(("verdict", "postmortem"), [
    ("passed", False), ("failed", True), ("aborted", True), ("not_started", False),
    ("rollback_incomplete", True), ("interrupted", False)])
def test_files_per_verdict(tmp_path: Path, verdict: str, postmortem: bool) -> None:
    paths = write_reports(build_report(verdict), tmp_path)
    names = [path.name for path in paths]
    assert names[:5] == ALWAYS
    assert ("postmortem.md" in names) is postmortem
    assert (tmp_path / "postmortem.md").exists() is postmortem
    assert all(path.stat().st_size > 0 for path in paths)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == [], "temporary files must be renamed into place"


def test_report_json_is_to_json_with_every_design_field(tmp_path: Path) -> None:
    report = build_report("aborted")
    write_reports(report, tmp_path)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data == json.loads(json.dumps(report.to_json()))
    for key in ("verdict", "exit_code", "experiment", "started_at", "ended_at", "phases",
                "faults", "samples", "criteria", "abort", "budget", "recovery_seconds"):
        assert key in data, key
    assert {"name", "start", "end"} <= set(data["phases"][0])
    assert {"name", "action", "targets", "injected_at", "reverted_at", "error"} <= set(
        data["faults"][0])
    assert {"time", "slo", "value", "good"} <= set(data["samples"][0])
    assert {"text", "observed", "passed"} <= set(data["criteria"][0])
    assert {"reason", "at", "budget_consumed", "burn_rates"} <= set(data["abort"])
    assert {"consumed", "remaining_before", "remaining_after"} <= set(
        data["budget"]["checkout_probe"])
    assert data["verdict"] == "aborted" and data["exit_code"] == 2
    assert "events" not in data


def test_passed_run_has_null_abort(tmp_path: Path) -> None:
    write_reports(build_report("passed"), tmp_path)
    assert json.loads((tmp_path / "report.json").read_text())["abort"] is None


def test_non_finite_numbers_become_null_so_the_json_is_strict(tmp_path: Path) -> None:
    report = build_report("aborted")
    assert report.abort is not None
    report.abort.burn_rates["1m"] = math.inf
    report.samples[0].value = math.nan
    write_reports(report, tmp_path)
    text = (tmp_path / "report.json").read_text()
    assert "Infinity" not in text and "NaN" not in text
    data = json.loads(text)
    assert data["abort"]["burn_rates"]["1m"] is None
    assert data["samples"][0]["value"] is None


def test_journal_written_from_events_one_object_per_line(tmp_path: Path) -> None:
    report = build_report("passed")
    write_reports(report, tmp_path)
    lines = (tmp_path / "journal.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == report.events


def test_journal_written_live_by_the_engine_is_left_alone(tmp_path: Path) -> None:
    live = '{"event": "phase", "phase": "before"}\n{"event": "half-written'
    (tmp_path / "journal.jsonl").write_text(live)
    paths = write_reports(build_report("passed"), tmp_path)
    assert (tmp_path / "journal.jsonl").read_text() == live
    assert tmp_path / "journal.jsonl" in paths


def test_junit_copied_to_the_junit_path_creating_its_directory(tmp_path: Path) -> None:
    target = tmp_path / "ci" / "deep" / "junit.xml"
    paths = write_reports(build_report("failed"), tmp_path / "reports", target)
    assert paths[-1] == target
    assert target.read_bytes() == (tmp_path / "reports" / "junit.xml").read_bytes()


def test_stale_postmortem_from_a_reused_directory_is_removed(tmp_path: Path) -> None:
    write_reports(build_report("aborted"), tmp_path)
    assert (tmp_path / "postmortem.md").exists()
    write_reports(build_report("passed"), tmp_path)
    assert not (tmp_path / "postmortem.md").exists()


def test_unwritable_report_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(InvalidInput, match="report directory"):
        write_reports(build_report("passed"), blocker / "reports")
