"""Abort reaction: how fast a fault that takes the whole service down is rolled back.

A local HTTP service is probed every 250 ms; the fault pauses (SIGSTOP) it, so every
probe request fails. Measured from the journal of each run: the time from the first
bad fault-phase sample to the revert of the fault. Goal: within 1 s (median of 10).
Baseline in the same run: the probe timeout, the floor below which no probe-based
guard can notice a hung service.

    .venv/bin/python bench/abort_reaction.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import http_server

from chaosrunner.testing.experiments import probe_steady_state

EXPERIMENT = """
apiVersion: chaosrunner/v1
kind: Experiment
name: abort-bench
hypothesis: a hung service is noticed and rolled back at once
steady_state: {from: steady.yaml, before: 1s, after: 2s, interval: 250ms}
duration: 30s
faults:
  - name: hang
    action: process.pause
    target: {pid_file: ../target.pid}
abort:
  error_budget: {slo: probe, burn_rate: 14.4, windows: [1s, 5s]}
"""


def one_run(work: Path, url: str) -> dict[str, float]:
    (work / "steady.yaml").write_text(
        probe_steady_state(url, name="bench", rate="40/s", timeout="200ms"))
    (work / "exp.yaml").write_text(EXPERIMENT)
    report_dir = work / "report"
    done = subprocess.run([sys.executable, "-m", "chaosrunner", "run", str(work / "exp.yaml"),
                           "--report-dir", str(report_dir), "--state-dir", str(work / "state"),
                           "--output", "json"], check=False, capture_output=True, text=True,
                          timeout=120)
    if done.returncode != 2:
        raise SystemExit(f"expected an abort (exit 2), got {done.returncode}: {done.stdout}")
    events = [json.loads(line) for line in (report_dir / "journal.jsonl").read_text().splitlines()]
    inject = next(e["t"] for e in events if e["event"] == "inject")
    first_bad = next(e["t"] for e in events if e["event"] == "sample" and e["phase"] == "faults"
                     and e["slos"]["probe"][1] is False)
    revert = next(e["t"] for e in events if e["event"] == "revert")
    return {"inject_to_first_bad": first_bad - inject, "first_bad_to_revert": revert - first_bad,
            "inject_to_revert": revert - inject}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp, http_server(Path(tmp)) as (url, _, _):
        for i in range(args.runs):
            work = Path(tmp) / f"run{i}"
            work.mkdir()
            results.append(one_run(work, url))
            print(f"run {i + 1}: " + ", ".join(f"{k}={v:.3f}s" for k, v in results[-1].items()),
                  flush=True)
    print("\nmedians over", len(results), "runs (probe timeout 0.200 s, interval 0.250 s):")
    for key in results[0]:
        values = [r[key] for r in results]
        print(f"  {key:22} median {statistics.median(values):.3f}s  max {max(values):.3f}s")


if __name__ == "__main__":
    main()
