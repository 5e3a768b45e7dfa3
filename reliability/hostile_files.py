"""Generated hostile and broken files through validation: exit 0 or exit 4 with file:line,
never a traceback (issue 10.6).

Seeds are the shipped experiments, steady states and game day plus a Chaos Toolkit
experiment; hypothesis mutates them as text (random bytes, hostile snippets such as
`!!int abc`, `2024-13-45`, `.inf`, 500-deep nesting, alias bombs, control characters,
invalid UTF-8, cut-off files) and as data (a value anywhere replaced by a hostile one,
keys dropped, renamed or added). Each file goes through `chaosrunner validate` in-process;
a sample also through the real CLI in a subprocess.

    python reliability/hostile_files.py [N] [CLI_SAMPLE]    # prints one line of figures

Every campaign draws its files from one seed, printed with the figures and with each
problem (which also shows the start of the file); CHAOSRUNNER_HOSTILE_SEED=<seed> replays
the same files.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from chaosrunner.cli.main import main

REPO = Path(__file__).resolve().parents[1]
SEEDS = {
    "experiments/network-latency.yaml": "experiment",
    "experiments/instance-failure.yaml": "experiment",
    "experiments/k8s-pod-loss.yaml": "experiment",
    "steady-states/demo.yaml": "steady state",
    "steady-states/shop.yaml": "steady state",
    "gamedays/q4-checkout.yaml": "game day",
    "tests/ctk/experiment.json": "chaos toolkit",
}
# Every problem line of `validate` names a file and a line: "invalid  F:L: ...", or the
# continuation of a nested file's problems.
PLACED = re.compile(r"^(invalid  )?\S[^:\n]*:\d+: ")

HOSTILE_SNIPPETS = [
    "2024-13-45", "2024-02-30", "!!int abc", "!!float zz", "!!bool maybe", "!!timestamp x",
    "!!binary ???", "!!python/object:os.system", ".inf", "-.inf", ".nan", "1e999",
    "9" * 400, "-" + "9" * 40, "[" * 500 + "]" * 500, "{a: " * 300 + "1" + "}" * 300,
    "&a [*a]", "*undefined", "<<: {a: 1}", "\x00", "\x01", "\x1b[31m", "\ufeff", "\t",
    "${UNSET_VARIABLE}", "${env:NOPE}", "'", '"', "{", "}", "[", "]", ": :", "- -", "? x",
    "%YAML 1.1", "---", "...", "|", ">", "~", "null", "[Experiment]", "{kind: x}", "0x1F",
    "0o17", "1_000", "yes", "no", "on", "-5s", "99", "101%", "p99.9", "/dev/zero",
    "/proc/self/fd/0", "../" * 20 + "etc/passwd", "x" * 5000,
]
HOSTILE_VALUES: list[Any] = [
    None, True, 0, -1, 1.5, 10**30, -10**30, float("inf"), float("nan"), "", " ", "x" * 3000,
    [], {}, [[[[[]]]]], {"a": {"b": {"c": {}}}}, ["a", 1, None], "-5s", "0s", "1e999s", "99",
    "150%", ".inf", "abc", "2024-13-45", "${UNSET_VARIABLE}", "${env:X}", "/dev/zero",
    "/nonexistent", "..", "p99.9", "prod", "eu-production", "fake.down", "process.paus",
    {"random": 0}, {"percent": "200%"}, {"names": []}, {"cmdline_regex": "("},
    {"cmdline_regex": "."}, "5/s", "0/s", "100000000/s", [1, 2], "checkout_probe.p99.9 < 2s",
    "checkout_probe < 300", "nosuch >= 99%", "checkout_probe >= ", "\x07",
]


@dataclass
class Tally:
    """What the campaign saw; `problems` holds what breaks the promise."""

    outcomes: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    seed: int | None = None  # of the hypothesis run that drew the files

    def line(self, what: str) -> str:
        total = sum(self.outcomes.values())
        return (f"{what}: {total} files, {self.outcomes['exit 4 at file:line']} exit 4 at "
                f"file:line, {self.outcomes['exit 0']} valid, "
                f"{self.outcomes['traceback']} tracebacks, "
                f"{self.outcomes['exit 4 without file:line']} without file:line, "
                f"{self.outcomes['other exit']} other exit codes (seed {self.seed})")


# --- generation ------------------------------------------------------------------------------


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += _paths(value, (*prefix, i))
    return found


def _set(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        return {**data, head: _set(data[head], rest, value)}
    copy = list(data)
    copy[head] = _set(copy[head], rest, value)
    return copy


def _drop(data: Any, path: tuple[Any, ...]) -> Any:
    parent, last = _get(data, path[:-1]), path[-1]
    kept = ({k: v for k, v in parent.items() if k != last} if isinstance(parent, dict)
            else [v for i, v in enumerate(parent) if i != last])
    return _set(data, path[:-1], kept)


def _dump(data: Any) -> str:
    try:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    except (ValueError, yaml.YAMLError):
        return json.dumps(data, default=str)


@st.composite
def data_mutation(draw: st.DrawFn, text: str) -> str:
    data = yaml.safe_load(text)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        how = draw(st.sampled_from(["replace", "drop", "add", "rename", "rekey"]))
        if how == "replace":
            data = _set(data, path, draw(st.sampled_from(HOSTILE_VALUES)))
        elif how == "drop" and path:
            data = _drop(data, path)
        elif isinstance(_get(data, path), dict):
            target = _get(data, path)
            key = draw(st.sampled_from(sorted(map(str, target)) or ["x"]))
            new = key[:-1] if how == "rename" and len(key) > 1 else key + "x"
            if how == "rekey":  # a hostile key: brackets, control characters, 5,000 x's
                new, how = draw(st.sampled_from(HOSTILE_SNIPPETS)), "rename"
            moved = {(new if k == key and how == "rename" else k): v for k, v in target.items()}
            if how == "add":
                moved[new] = draw(st.sampled_from(HOSTILE_VALUES))
            data = _set(data, path, moved)
    return _dump(data)


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


@st.composite
def text_mutation(draw: st.DrawFn, text: str) -> bytes:
    raw = text.encode()
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(raw)))
        how = draw(st.sampled_from(["snippet", "bytes", "delete", "truncate", "line"]))
        if how == "snippet":
            raw = raw[:at] + draw(st.sampled_from(HOSTILE_SNIPPETS)).encode() + raw[at:]
        elif how == "bytes":
            raw = raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
        elif how == "delete":
            raw = raw[:at] + raw[at + draw(st.integers(1, 40)):]
        elif how == "truncate":
            raw = raw[:at]
        else:
            lines = raw.split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(draw(st.integers(0, len(lines))), lines[i])
            raw = b"\n".join(lines)
    return raw


@st.composite
def hostile_file(draw: st.DrawFn) -> tuple[str, bytes]:
    seed = draw(st.sampled_from(sorted(SEEDS)))
    text = (REPO / seed).read_text()
    if draw(st.booleans()):
        return seed, draw(text_mutation(text))
    return seed, draw(data_mutation(text)).encode()


# --- checking --------------------------------------------------------------------------------


def _sandbox() -> Path:
    root = Path(tempfile.mkdtemp(prefix="hostile-files-"))
    for seed in SEEDS:
        (root / seed).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / seed, root / seed)
    for extra in ("experiments/instance-failure-docker.yaml", "steady-states/docker-shop.yaml",
                  "steady-states/k8s-shop.yaml"):
        shutil.copy(REPO / extra, root / extra)
    return root


def validate_in_process(path: Path, tally: Tally) -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(["validate", str(path)])
    except BaseException:  # noqa: BLE001 - a traceback is exactly what is counted
        tally.outcomes["traceback"] += 1
        tally.problems.append(_problem(path, tally, traceback.format_exc(limit=-3)))
        return
    _judge(path, code, stderr.getvalue(), tally)


def _judge(path: Path, code: int, stderr: str, tally: Tally) -> None:
    if "Traceback" in stderr:
        tally.outcomes["traceback"] += 1
        tally.problems.append(_problem(path, tally, stderr[-600:]))
    elif code == 0:
        tally.outcomes["exit 0"] += 1
    elif code != 4:
        tally.outcomes["other exit"] += 1
        tally.problems.append(_problem(path, tally, f"exit {code}: {stderr[-300:]}"))
    elif all(PLACED.match(line) for line in stderr.splitlines() if line.strip()):
        tally.outcomes["exit 4 at file:line"] += 1
    else:
        tally.outcomes["exit 4 without file:line"] += 1
        tally.problems.append(_problem(path, tally, stderr[:400]))


def _problem(path: Path, tally: Tally, what: str) -> str:
    """What went wrong, with the seed that replays it and the start of the file."""
    try:
        head = path.read_bytes()[:300]
    except OSError:
        head = b"?"
    return f"{path.name} (seed {tally.seed}; file starts {head!r}): {what}"


def campaign_seed() -> int:
    """CHAOSRUNNER_HOSTILE_SEED when set (a replay), else a fresh one."""
    return int(os.environ.get("CHAOSRUNNER_HOSTILE_SEED") or random.randrange(1 << 32))


def run_campaign(count: int, cli_sample: int, seed: int | None = None) -> tuple[Tally, Tally]:
    """Validate `count` generated files in-process and `cli_sample` of them via the CLI;
    the same `seed` draws the same files (default: `campaign_seed()`)."""
    seed = campaign_seed() if seed is None else seed
    root = _sandbox()
    in_process, cli = Tally(seed=seed), Tally(seed=seed)
    kept: list[Path] = []

    @hypothesis_seed(seed)
    @settings(max_examples=count, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(hostile_file())
    def one(case: tuple[str, bytes]) -> None:
        seed_path, content = case
        n = sum(in_process.outcomes.values())
        path = (root / seed_path).with_name(f"generated-{n}{Path(seed_path).suffix}")
        path.write_bytes(content)
        validate_in_process(path, in_process)
        if len(kept) < cli_sample and n % max(1, count // max(cli_sample, 1)) == 0:
            kept.append(path)
        else:
            path.unlink()

    try:
        one()
        for path in kept:
            proc = subprocess.run([sys.executable, "-m", "chaosrunner", "validate", str(path)],
                                  capture_output=True, text=True, timeout=120, check=False)
            _judge(path, proc.returncode, proc.stderr, cli)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return in_process, cli


def report(count: int, cli_sample: int, out: Callable[[str], None] = print) -> bool:
    in_process, cli = run_campaign(count, cli_sample)
    out(in_process.line("generated files, in-process validate"))
    out(cli.line("generated files, CLI validate"))
    for problem in (in_process.problems + cli.problems)[:5]:
        out("  " + problem.replace("\n", "\n  "))
    return not in_process.problems and not cli.problems


if __name__ == "__main__":
    N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    SAMPLE = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    sys.exit(0 if report(N, SAMPLE) else 1)
