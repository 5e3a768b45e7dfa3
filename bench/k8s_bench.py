"""Kubernetes support: plan time over 10,000 pods, and what it costs `validate` at import.

    .venv/bin/python bench/k8s_bench.py [--pods 10000] [--repeat 5]

1. `plan` (make_plan: validate, resolve through the API, select, blast radius) for a
   selector matching N pods on the fake API server of tests/k8s_fixture.py (real HTTP on
   127.0.0.1), against a 100-pod baseline in the same run. The split shows how much is the
   API list itself (driver.resolve) and how much the rest of planning.
2. `python -X importtime -m chaosrunner validate FILE` on a file that uses no Kubernetes
   action: the modules of kubernetes / chaosk8s / the kubernetes driver it imports (should
   be none, 0 us), the validate wall time, and for scale what importing the client costs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

EXPERIMENT = """\
apiVersion: chaosrunner/v1
kind: Experiment
name: plan-bench
hypothesis: planning scales
steady_state: {{from: steady.yaml}}
duration: 10s
blast_radius: {{max_targets: 1, namespaces: [default]}}
faults:
  - name: lose-one
    action: kubernetes.delete_pod
    target: {{selector: "app={app}"}}
    select: {{random: 1}}
"""
STEADY = """\
apiVersion: chaosrunner/v1
kind: SteadyState
name: bench
service_level_objectives:
  up: {sli: {http: {url: "http://127.0.0.1:9/"}}, target: 99%}
"""


def plan_times(app: str, directory: Path, repeat: int) -> tuple[list[float], list[float]]:
    from chaosrunner.app.load import load_experiment
    from chaosrunner.drivers.base import DriverContext
    from chaosrunner.drivers.kubernetes import KubernetesDriver
    from chaosrunner.engine.plan import make_plan

    path = directory / f"{app}.yaml"
    path.write_text(EXPERIMENT.format(app=app))
    bundle = load_experiment(path)
    plans, lists = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        plan = make_plan(bundle, DriverContext(run_id="bench"), False, False, seed=1)
        plans.append(time.perf_counter() - started)
        assert len(plan.faults[0].instances) == 1
        started = time.perf_counter()
        KubernetesDriver().resolve("kubernetes.delete_pod", {"selector": f"app={app}"})
        lists.append(time.perf_counter() - started)
    return plans, lists


def bench_plan(pods: int, repeat: int) -> None:
    from k8s_fixture import FakeCluster

    with tempfile.TemporaryDirectory() as tmp, FakeCluster() as cluster:
        directory = Path(tmp)
        cluster.add_deployment("big", replicas=pods)
        cluster.add_deployment("small", replicas=100)
        cluster.controller_running = False  # pods are created Ready; keep the CPU for the bench
        os.environ["KUBECONFIG"] = str(cluster.write_kubeconfig(directory / "kubeconfig"))
        (directory / "steady.yaml").write_text(STEADY)
        print(f"plan over the fake API ({repeat} runs each, median):")
        for app, count in (("small", 100), ("big", pods)):
            plans, lists = plan_times(app, directory, repeat)
            print(f"  selector matching {count:>6} pods: plan {statistics.median(plans):7.3f} s"
                  f"   (of which the API list + parse: {statistics.median(lists):7.3f} s)")


def importtime(argv: list[str]) -> dict[str, int]:
    """Cumulative import microseconds per top-level module name, from -X importtime."""
    done = subprocess.run([sys.executable, "-X", "importtime", *argv], cwd=REPO,
                          capture_output=True, text=True, check=False)
    modules: dict[str, int] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = (part.strip() for part in line.split("|"))
        modules[name.strip()] = int(self_us.split(":")[-1])
    return modules


def wall(argv: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_import(repeat: int) -> None:
    plain = ["-m", "chaosrunner", "validate", "experiments/instance-failure.yaml"]
    k8s = ["-m", "chaosrunner", "validate", "experiments/k8s-pod-loss.yaml"]
    print("import cost of Kubernetes support for `chaosrunner validate`:")
    for label, argv in (("file without kubernetes actions", plain),
                        ("experiments/k8s-pod-loss.yaml", k8s)):
        modules = importtime(argv)
        k8s_modules = {m: us for m, us in modules.items()
                       if m.split(".")[0] in ("kubernetes", "chaosk8s", "chaoslib")
                       or m == "chaosrunner.drivers.kubernetes"}
        client = sum(us for m, us in k8s_modules.items() if not m.startswith("chaosrunner"))
        print(f"  {label}: {len(modules)} modules imported; kubernetes client/chaosk8s "
              f"modules among them: "
              f"{sum(1 for m in k8s_modules if not m.startswith('chaosrunner'))} "
              f"({client} us); validate wall median {wall(argv, repeat) * 1000:.0f} ms")
    driver = importtime(["-c", "import chaosrunner.drivers.kubernetes"])
    print(f"  the driver module itself (imported by validate only for files with kubernetes "
          f"actions): {driver.get('chaosrunner.drivers.kubernetes', 0)} us self")
    client = importtime(["-c", "import kubernetes.client, kubernetes.config"])
    total = sum(client.values())
    print(f"  for scale: importing the kubernetes client alone costs {total / 1000:.0f} ms "
          f"(sum of self times, {len(client)} modules) -- what lazy import saves")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    bench_plan(args.pods, args.repeat)
    bench_import(args.repeat)


if __name__ == "__main__":
    main()
