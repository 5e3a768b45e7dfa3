"""CLI cold start: `chaosrunner validate` on the shipped experiments, median wall time,
next to Chaos Toolkit's `chaos validate` on a comparable file, in the same run.

    .venv/bin/python bench/cli_cold_start.py [--runs 20] [--chaos /tmp/ctk-venv/bin/chaos]

Goal: median <= 0.25 s. `chaos` comes from PyPI's chaostoolkit in its own venv
(python3 -m venv /tmp/ctk-venv && /tmp/ctk-venv/bin/pip install chaostoolkit).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(argv: list[str], runs: int) -> list[float]:
    subprocess.run(argv, capture_output=True, check=False)  # warm the page cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{argv} failed: {done.stdout!r} {done.stderr!r}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--chaos", default=shutil.which("chaos") or "/tmp/ctk-venv/bin/chaos")
    args = parser.parse_args()
    ours = [str(ROOT / ".venv/bin/chaosrunner"), "validate",
            *sorted(str(p) for p in (ROOT / "experiments").glob("*.yaml"))]
    one = [str(ROOT / ".venv/bin/chaosrunner"), "validate",
           str(ROOT / "experiments/instance-failure.yaml")]
    python = [str(ROOT / ".venv/bin/python"), "-c", "pass"]
    rows = {"python -c pass (floor)": timed(python, args.runs),
            "chaosrunner validate (1 file)": timed(one, args.runs),
            f"chaosrunner validate ({len(ours) - 2} files)": timed(ours, args.runs)}
    if Path(args.chaos).exists():
        ctk = [args.chaos, "--no-log-file", "validate", str(ROOT / "bench/data/ctk-experiment.json")]
        rows["chaos validate (Chaos Toolkit)"] = timed(ctk, args.runs)
    else:
        print(f"(no Chaos Toolkit at {args.chaos}; skipping the reference)")
    print(f"median wall time over {args.runs} runs:")
    for name, values in rows.items():
        print(f"  {name:34} {statistics.median(values) * 1000:7.0f} ms"
              f"   (min {min(values) * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
