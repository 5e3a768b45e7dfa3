"""CLI cold start: `chaosrunner validate` on the shipped experiments, median wall time,
next to Chaos Toolkit's `chaos validate` on a comparable file, in the same run.

    .venv/bin/python bench/cli_cold_start.py [--runs 20] [--chaos /tmp/ctk-venv/bin/chaos]

The commands run interleaved, round by round (medians of --runs rounds), so a load spike
hits each alike. Goal: chaosrunner validate <= 0.5x Chaos Toolkit's `chaos validate`.
`chaos` comes from PyPI's chaostoolkit in its own venv
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


def run_once(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed: {done.stdout!r} {done.stderr!r}")
    return elapsed


def interleaved(commands: dict[str, list[str]], runs: int) -> dict[str, list[float]]:
    """Each command once per round, `runs` rounds: a load spike hits every command alike."""
    for argv in commands.values():
        run_once(argv)  # warm the page cache
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            times[name].append(run_once(argv))
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--chaos", default=shutil.which("chaos") or "/tmp/ctk-venv/bin/chaos")
    args = parser.parse_args()
    ours = [str(ROOT / ".venv/bin/chaosrunner"), "validate",
            *sorted(str(p) for p in (ROOT / "experiments").glob("*.yaml"))]
    one = [str(ROOT / ".venv/bin/chaosrunner"), "validate",
           str(ROOT / "experiments/instance-failure.yaml")]
    python = [str(ROOT / ".venv/bin/python"), "-c", "pass"]
    pydantic = [str(ROOT / ".venv/bin/python"), "-c", "import pydantic; pydantic.BaseModel"]
    commands = {"python -c pass (floor)": python, "import pydantic (floor)": pydantic,
                "chaosrunner validate (1 file)": one,
                f"chaosrunner validate ({len(ours) - 2} files)": ours}
    ctk_name = "chaos validate (Chaos Toolkit)"
    if Path(args.chaos).exists():
        commands[ctk_name] = [args.chaos, "--no-log-file", "validate",
                              str(ROOT / "bench/data/ctk-experiment.json")]
    else:
        print(f"(no Chaos Toolkit at {args.chaos}; skipping the reference)")
    rows = interleaved(commands, args.runs)
    print(f"median wall time over {args.runs} interleaved rounds:")
    for name, values in rows.items():
        print(f"  {name:34} {statistics.median(values) * 1000:7.0f} ms"
              f"   (min {min(values) * 1000:.0f} ms)")
    if ctk_name in rows:
        ratio = statistics.median(rows["chaosrunner validate (1 file)"]) / \
            statistics.median(rows[ctk_name])
        print(f"chaosrunner validate / chaos validate: {ratio:.2f}x (goal <= 0.5x)")


if __name__ == "__main__":
    main()
