"""One builder for the experiment files tests run on the fakes (`testing.fakes`):
`fake.down` on `api-*` instances of a `World`, http SLIs read from it.

    path = write_fake_experiment(tmp_path, criterion="90%")            # fails
    path = write_fake_experiment(tmp_path, burn=5, duration="60s")     # aborts
    report = asyncio.run(fake_run(path, world, options).execute())

A steady state of real probe traffic to a local HTTP server:

    (tmp_path / "steady.yaml").write_text(probe_steady_state(url, p99="1s"))

And one for real targets: one fault, a steady state that always holds (a command SLI, so
the run needs --allow-exec).

    path = write_one_fault_experiment(tmp_path, "freeze", "process.pause",
                                      "{pid_file: sleeper.pid}", duration="1s")
"""

from __future__ import annotations

from pathlib import Path

AVAILABILITY = """\
  availability:
    sli: {http: {url: "http://127.0.0.1:1/", rate: 10/s}}
    target: 99%
"""

LATENCY = """\
  latency:
    sli: {http: {url: "http://127.0.0.1:1/"}, stat: p99}
    target: 500ms
    op: "<"
"""

EXPERIMENT = """\
apiVersion: chaosrunner/v1
kind: Experiment
name: {name}
hypothesis: losing api instances keeps availability above {criterion}
steady_state: {{from: {steady}, before: {before}, after: {after}, interval: {interval}}}
duration: {duration}
blast_radius: {blast_radius}
faults:
  - name: down
    action: fake.down
    target: {{prefix: api}}
    select: {select}
{extra_fault}
success_criteria:
  - availability >= {criterion}
abort:
  error_budget: {{slo: availability, burn_rate: {burn}, windows: [1s, 2s]}}
"""


def fake_steady_state(latency: bool = True, window: str | None = "1h") -> str:
    """The steady state of the fakes: availability (a ratio with a budget over `window`;
    None: the default 30-day window) and, unless `latency` is False, a p99 latency
    threshold."""
    return ("apiVersion: chaosrunner/v1\nkind: SteadyState\nname: fake\n"
            "service_level_objectives:\n" + AVAILABILITY
            + (f"    window: {window}\n" if window else "") + (LATENCY if latency else ""))


def write_fake_experiment(directory: Path, *, name: str = "lose-one", duration: str = "5s",
                          select: str = "{random: 1}", criterion: str = "70%",
                          burn: float = 1000, extra_fault: str = "", before: str = "2s",
                          after: str = "3s", interval: str = "250ms",
                          blast_radius: str = "{max_targets: 2, max_percent: 50%}",
                          steady: str | None = None, latency: bool = True) -> Path:
    """Write `steady.yaml` (`steady`, or the fakes' own) and `<name>.yaml` into
    `directory`; returns the experiment's path."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "steady.yaml").write_text(steady or fake_steady_state(latency))
    path = directory / f"{name}.yaml"
    path.write_text(EXPERIMENT.format(
        name=name, steady="steady.yaml", before=before, after=after, interval=interval,
        duration=duration, blast_radius=blast_radius, select=select, criterion=criterion,
        burn=burn, extra_fault=extra_fault))
    return path


LOCAL_STEADY = """\
apiVersion: chaosrunner/v1
kind: SteadyState
name: local
service_level_objectives:
  alive:
    sli: {command: "echo 1"}
    target: 99%
"""

ONE_FAULT = """\
apiVersion: chaosrunner/v1
kind: Experiment
name: {name}
hypothesis: {hypothesis}
steady_state: {{from: steady.yaml, before: {before}, after: {after}, interval: {interval}}}
duration: {duration}
faults:
  - name: {fault}
    action: {action}
    target: {target}
"""


def write_one_fault_experiment(directory: Path, name: str, action: str, target: str, *,
                               params: str = "", duration: str = "120s",
                               hypothesis: str = "the fault is taken back",
                               fault: str = "hit", before: str = "250ms",
                               after: str = "250ms", interval: str = "250ms") -> Path:
    """Write `steady.yaml` (LOCAL_STEADY) and `<name>.yaml` into `directory`: one fault of
    `action` on `target`, with `params` (both YAML flow mappings, e.g. "{latency: 10ms}").
    Returns the experiment's path."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "steady.yaml").write_text(LOCAL_STEADY)
    path = directory / f"{name}.yaml"
    path.write_text(ONE_FAULT.format(
        name=name, hypothesis=hypothesis, before=before, after=after, interval=interval,
        duration=duration, fault=fault, action=action, target=target)
        + (f"    with: {params}\n" if params else ""))
    return path


def probe_steady_state(url: str, *, name: str = "target", rate: str = "20/s",
                       timeout: str = "1s", p99: str | None = None) -> str:
    """A steady state of real HTTP probe traffic to `url`: `probe`, the share of good
    answers (99%), and with `p99` a `probe_p99` SLO too (99th percentile latency below
    `p99`)."""
    http = f'{{url: "{url}", rate: {rate}, timeout: {timeout}}}'
    text = (f"apiVersion: chaosrunner/v1\nkind: SteadyState\nname: {name}\n"
            f"service_level_objectives:\n  probe:\n    sli: {{http: {http}}}\n"
            "    target: 99%\n")
    if p99 is not None:
        text += (f"  probe_p99:\n    sli: {{http: {http}, stat: p99}}\n"
                 f'    target: {p99}\n    op: "<"\n')
    return text
