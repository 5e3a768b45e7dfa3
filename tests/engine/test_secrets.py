"""Secrets never leave the process (issue 10.8): a python action that echoes a
`{type: env}` secret in its error leaks it into no report, journal, history or stream."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosrunner.cli.main import main
from chaosrunner.secrets import redact, remember
from chaosrunner.testing.experiments import fake_steady_state
from chaosrunner.testing.fakes import World, fake_backends

SECRET = "tok-9f8e7d6c5b4a"


EXPERIMENT = """\
apiVersion: chaosrunner/v1
kind: Experiment
name: leaky
hypothesis: the token stays secret
steady_state: {from: steady.yaml, before: 500ms, after: 500ms, interval: 250ms}
duration: 2s
faults:
  - name: leak
    action: python
    with:
      call: leaky_module.leak
      secrets: {api: {token: {type: env, key: LEAKY_TOKEN}}}
"""

MODULE = '''\
def leak(secrets=None):
    token = secrets["api"]["token"]
    raise RuntimeError(f"login failed with token {token} (json: \\"{token}\\")")
'''


def test_a_secret_echoed_by_an_action_is_nowhere(
        world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LEAKY_TOKEN", SECRET)
    (tmp_path / "leaky_module.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "steady.yaml").write_text(fake_steady_state(latency=False, window=None))
    (tmp_path / "exp.yaml").write_text(EXPERIMENT)
    reports, state = tmp_path / "reports", tmp_path / "state"
    junit = tmp_path / "ci" / "junit.xml"
    code = main(["run", str(tmp_path / "exp.yaml"), "--allow-exec", "--report-dir", str(reports),
                 "--state-dir", str(state), "--junit", str(junit)], backends=fake_backends(world))
    out = capsys.readouterr()
    assert code == 2, out  # the failed injection aborts the run
    files = [*reports.rglob("*"), *state.rglob("*"), junit]
    names = {f.name for f in files}
    assert {"report.json", "report.html", "report.md", "junit.xml", "postmortem.md",
            "journal.jsonl"} <= names, names
    assert any("history" in n or n.endswith(".db") or n.endswith(".sqlite") for n in names)
    assert "login failed with token ***" in (reports / "report.json").read_text()
    for path in files:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in out.out + out.err
    code = main(["runs", "--state-dir", str(state), "--output", "json"])
    assert SECRET not in capsys.readouterr().out


def test_redact_covers_escaped_spellings() -> None:
    remember('p&ss"word<1>')
    text = 'raw p&ss"word<1> json p&ss\\"word<1> html p&amp;ss&quot;word&lt;1&gt;'
    assert redact(text) == "raw *** json *** html ***"
    remember("abc")  # too short to be told from ordinary words
    assert redact("abc") == "abc"


@pytest.fixture
def world() -> World:
    return World(["api-1"])


def test_env_reference_resolves_in_http_probe_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from chaosrunner.slo.sources.base import SourceContext
    from chaosrunner.slo.sources.http_probe import HttpProbeSource
    from chaosrunner.spec.models import SLO

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            self.send_response(200 if seen[-1] == f"Bearer {SECRET}" else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    monkeypatch.setenv("PROBE_TOKEN", SECRET)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    slo = SLO.model_validate({"sli": {"http": {
        "url": url, "rate": "20/s", "headers": {"Authorization": "Bearer ${env:PROBE_TOKEN}"}}},
        "target": "99%"})

    async def observe() -> float | None:
        source = HttpProbeSource("p", slo, None, SourceContext())
        await source.start()
        try:
            for _ in range(200):  # bounded: until a few requests were answered
                await asyncio.sleep(0.05)
                if len(seen) >= 3:
                    break
            return (await source.read(1.0)).value
        finally:
            await source.close()

    try:
        value = asyncio.run(observe())
    finally:
        server.shutdown()
        server.server_close()
    assert seen and set(seen) == {f"Bearer {SECRET}"}
    assert value == 1.0
    assert redact(f"Bearer {SECRET}") == "Bearer ***"


def test_history_rows_written_by_any_process_are_redacted(tmp_path: Path) -> None:
    from chaosrunner.errors import Verdict
    from chaosrunner.history import connect, record_lost_run

    remember("watchdog-secret-42")
    record_lost_run(tmp_path, "run-1", "exp", "2026-11-29T20:00:00Z", Verdict.ABORTED, 2,
                    "revert failed: token watchdog-secret-42 refused")
    with connect(tmp_path) as db:
        rows = [tuple(row) for row in db.execute("SELECT reason FROM runs").fetchall()]
    assert rows == [("revert failed: token *** refused",)]


def test_the_watchdogs_log_is_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    from chaosrunner.cli.watchdog import _log

    remember("watchdog-log-secret-7")
    _log("python-1: revert FAILED: token watchdog-log-secret-7 refused")
    err = capsys.readouterr().err
    assert "token *** refused" in err and "watchdog-log-secret-7" not in err
