"""`chaosrunner recover` (take back what a dead runner left) and `chaosrunner halt`."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaosrunner.drivers.base import DriverContext, DriverRegistry
from chaosrunner.engine.faults import RevertPolicy
from chaosrunner.engine.faults import revert_with_retries as retrying
from chaosrunner.engine.halt import StateDirHalt, configured, parse_source
from chaosrunner.engine.ledger import Ledger, OpenFault
from chaosrunner.errors import ChaosRunnerError, RollbackIncomplete, Verdict
from chaosrunner.history import record_recovered
from chaosrunner.timestamps import iso


def command_recover(args: argparse.Namespace, drivers: DriverRegistry | None = None) -> int:
    """Revert every fault with an intent and no done record, newest first. Exit 5 if any
    could not be taken back (run again once the cause is fixed). `drivers`: the
    production ones unless a test hands in its fakes."""
    if args.kubernetes:
        return command_sweep(args)
    ledger = Ledger(args.state_dir)
    # Open faults first, live runners second: a runner registers before its first intent,
    # so any run in this snapshot that is still alive is seen as live below.
    open_faults = ledger.open_faults()
    live = set() if args.force else ledger.live_runs()
    results: list[dict[str, Any]] = []
    for item in reversed(open_faults):
        if item.run_id in live:
            results.append(_result(item, "skipped", "its runner is alive and will roll back "
                                   "itself; use --force to take it back anyway"))
            continue
        error = take_back(ledger, item, how="recovered", drivers=drivers)
        results.append(_result(item, "failed" if error else "reverted", error))
    for run_id in {item.run_id for item in open_faults} - live:
        ledger.forget_dead_runner(run_id)
        keep_in_history(ledger, run_id, open_faults, results)
    _print(results, args.output)
    failed = any(r["status"] == "failed" for r in results)
    return Verdict.ROLLBACK_INCOMPLETE.exit_code if failed else 0


def command_sweep(args: argparse.Namespace) -> int:
    """`recover --kubernetes`: revert what chaosrunner left in the cluster past its deadline
    (chaosrunner.drivers.kubernetes_sweep); the local ledger, if it knows a fault swept,
    records it done. Exit 5 when something could not be reverted."""
    # Imported here: the kubernetes client loads only for --kubernetes.
    from chaosrunner.drivers.kubernetes import KubernetesDriver
    from chaosrunner.drivers.kubernetes_sweep import sweep

    driver = KubernetesDriver(DriverContext(run_id="recover"))
    try:
        swept = sweep(driver, args.namespace, time.time())
    except ChaosRunnerError as exc:
        # Whether something is left in the cluster is unknown: say so, exit as for a revert
        # that did not happen, and the CronJob's next minute tries again. `main` says it
        # (on stdout too for --output json).
        raise RollbackIncomplete(f"cannot sweep the cluster: {exc}") from None
    ledger = Ledger(args.state_dir)
    done = {s.key for s in swept if s.status == "reverted" and s.key}
    if done and ledger.path.exists():
        for item in ledger.open_faults():
            if item.handle.key in done:
                ledger.record_done(item.run_id, item.handle.key, how="kubernetes-sweep")
    if args.output == "json":
        print(json.dumps({"swept": [s.to_json() for s in swept]}, indent=2))
    elif not swept:
        print("nothing to recover: no chaosrunner marks in the cluster")
    for s in swept if args.output != "json" else []:
        until = f" (deadline {s.deadline})" if s.status == "pending" else ""
        extra = f" ({s.detail})" if s.detail else ""
        print(f"{s.status:9} {s.action} on {s.kind} {s.namespace}/{s.name} "
              f"[{s.key or 'no key'}]{until}{extra}")
    failed = any(s.status == "failed" for s in swept)
    return Verdict.ROLLBACK_INCOMPLETE.exit_code if failed else 0


KILLED_EXIT = 137  # what a parent saw of a runner that died without a rollback (SIGKILL)


def keep_in_history(ledger: Ledger, run_id: str, open_faults: list[OpenFault],
                    results: list[dict[str, Any]]) -> None:
    """`chaosrunner runs` shows the dead run with an honest verdict and what was done."""
    done = [r for r in results if r["run"] == run_id and r["status"] != "skipped"]
    if not done:
        return
    reverted = [f"{r['action']} on {r['target']}" for r in done if r["status"] == "reverted"]
    failed = [f"{r['action']} on {r['target']}" for r in done if r["status"] == "failed"]
    summary = ("the runner died before finishing its rollback; `chaosrunner recover` took "
               f"back {len(reverted)} fault(s)" + (f": {', '.join(reverted)}" if reverted
                                                   else ""))
    if failed:
        summary += (f"; {len(failed)} could not be taken back ({', '.join(failed)}): run "
                    "`chaosrunner recover` again once the cause is fixed")
    since = [f.since for f in open_faults if f.run_id == run_id and f.since is not None]
    started = iso(datetime.fromtimestamp(min(since), UTC)) if since else iso(datetime.now(UTC))
    record_recovered(ledger.state_dir, run_id, experiment_of(run_id), started, summary,
                     bool(failed), KILLED_EXIT)


def experiment_of(run_id: str) -> str:
    """The experiment's name in a run id (`<name>-<UTC stamp>-<4 hex>`)."""
    parts = run_id.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else run_id


SETTLE_MARGIN = 2.0  # seconds on top of a driver's settle time (the call's own latency)


def take_back(ledger: Ledger, item: OpenFault, how: str,
              drivers: DriverRegistry | None = None) -> str | None:
    """Revert one open fault and record it done; None when done, else the last error.

    An injection the ledger does not show as confirmed may still be in flight in its
    backend (a `docker.stop` waiting out its grace period when the runner was killed):
    its settle time is waited out first, so the revert sees, and undoes, its effect."""
    drivers = drivers or DriverRegistry()
    wait_until = settles_at(item, drivers)
    if wait_until is not None:
        time.sleep(max(0.0, wait_until - time.time()))
    error = revert_with_retries(item, drivers)
    if error is None:
        ledger.record_done(item.run_id, item.handle.key, how=how)
    return error


def settles_at(item: OpenFault, drivers: DriverRegistry) -> float | None:
    """Epoch seconds until which an unconfirmed injection may still take effect."""
    if item.confirmed:
        return None
    try:
        driver = drivers.get(item.handle.driver, DriverContext(run_id=item.run_id))
    except ChaosRunnerError:
        return None  # revert_with_retries reports the unknown driver
    seconds = driver.settle_seconds(item.handle)
    if seconds is None:
        return None
    since = item.since if item.since is not None else time.time()
    return since + float(seconds) + SETTLE_MARGIN


def revert_with_retries(item: OpenFault, drivers: DriverRegistry) -> str | None:
    """None when reverted, else the last error: the engine's own retry policy
    (`engine.faults.revert_with_retries`), so a rollback and a recover try as hard."""
    def revert() -> None:
        driver = drivers.get(item.handle.driver,
                             DriverContext(run_id=item.run_id, allow_exec=True))
        driver.revert(item.handle)

    return asyncio.run(retrying(revert, RevertPolicy()))


def _result(item: OpenFault, status: str, detail: str | None) -> dict[str, Any]:
    return {"run": item.run_id, "fault": item.fault, "action": item.handle.action,
            "target": item.handle.instance.name, "key": item.handle.key, "status": status,
            "detail": detail}


def _print(results: list[dict[str, Any]], output: str | None) -> None:
    if output == "json":
        print(json.dumps({"recovered": results}, indent=2))
        return
    if not results:
        print("nothing to recover: every injected fault was taken back")
    for r in results:
        extra = f" ({r['detail']})" if r["detail"] else ""
        print(f"{r['status']:9} {r['action']} on {r['target']} [{r['key']}]{extra}")


def command_halt(args: argparse.Namespace) -> int:
    """The big red button: every runner watching the source aborts and rolls back, and no
    run starts until `halt --clear` re-arms it."""
    spec = configured(args.source or args.halt_source)
    source = parse_source(spec, Path(args.state_dir)) if spec else StateDirHalt(
        Path(args.state_dir))
    if args.clear:
        source.clear()
    else:
        source.set(args.reason)
    live = sorted(Ledger(args.state_dir).live_runs())
    if args.output == "json":
        data = {"halt_source": source.description, "halted": not args.clear, "running": live}
        if isinstance(source, StateDirHalt):
            data["halt_file"] = str(source.path)
        print(json.dumps(data))
    elif args.clear:
        print(f"halt cleared ({source.description}): runs may start again")
    else:
        here = f"; {len(live)} running experiment(s) in {args.state_dir} will abort and roll back"
        print(f"halt requested ({source.description}){here}; every runner watching it "
              "aborts, and none starts until `chaosrunner halt --clear`")
    return 0
