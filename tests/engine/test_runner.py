"""Engine tests on fakes with a virtual clock: no real sleeps, real phase logic."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

from chaosrunner.engine.context import RunOptions
from chaosrunner.engine.ledger import Ledger
from chaosrunner.engine.runner import Run
from chaosrunner.report.model import RunReport
from chaosrunner.testing.fakes import FakeClock, World, fake_run


def run(world: World, path: Path, tmp_path: Path, clock: FakeClock | None = None,
        **options: object) -> tuple[Run, RunReport]:
    settings = RunOptions(state_dir=tmp_path / "state", seed=1, **options)  # type: ignore[arg-type]
    the_run = fake_run(path, world, settings, clock=clock)
    report = asyncio.run(the_run.execute())
    return the_run, report


def test_harmless_fault_passes_and_is_reverted(world: World, write_experiment, tmp_path: Path
                                               ) -> None:
    the_run, report = run(world, write_experiment(), tmp_path)
    assert report.verdict == "passed", report.reason
    assert report.exit_code == 0
    assert [p.name for p in report.phases] == ["plan", "before", "faults", "rollback", "after"]
    assert world.down == set()
    assert [kind for kind, _ in world.log] == ["inject", "revert"]
    fault = report.faults[0]
    assert fault.injected_at and fault.reverted_at and fault.targets[0].startswith("api-")
    assert report.criteria[0].passed and abs(report.criteria[0].observed - 0.75) < 1e-9
    assert report.recovery_seconds is not None and report.recovery_seconds >= 0
    # 5 s at 75 % against a 99 % SLO over 1 h: burn 25, so 25 x 5 / 3600 of the budget
    consumed = report.budget["availability"].consumed
    assert consumed is not None and abs(consumed - 25 * 5 / 3600) < 0.002
    assert Ledger(tmp_path / "state").open_faults() == []


def test_refuted_hypothesis_fails(world: World, write_experiment, tmp_path: Path) -> None:
    _, report = run(world, write_experiment(criterion="90%"), tmp_path)
    assert report.verdict == "failed" and report.exit_code == 1
    assert not report.criteria[0].passed
    assert world.down == set()


def test_burn_rate_aborts_on_first_bad_sample_and_rolls_back(world: World, write_experiment,
                                                              tmp_path: Path) -> None:
    clock = FakeClock()
    _, report = run(world, write_experiment(burn=5, duration="60s"), tmp_path, clock=clock)
    assert report.verdict == "aborted" and report.exit_code == 2
    assert report.abort is not None and "burn rate" in report.abort.reason
    fault_samples = [s for s in report.samples if s.phase == "faults" and s.slo == "availability"]
    assert len(fault_samples) == 1  # aborted right after the first bad sample
    assert world.down == set()
    after = [s.t for s in report.samples if s.phase == "after" and s.slo == "availability"]
    assert len(after) == 3 and all(abs(b - a - 0.25) < 1e-6 for a, b in itertools.pairwise(after))
    assert report.recovery_seconds == 0.25
    assert report.abort.burn_rates and all(v > 5 for v in report.abort.burn_rates.values())


def test_blast_radius_refuses_without_injecting(world: World, write_experiment, tmp_path: Path
                                                ) -> None:
    _, report = run(world, write_experiment(select="all"), tmp_path)
    assert report.verdict == "not_started" and report.exit_code == 3
    assert "max_percent" in (report.reason or "")
    assert world.log == []


def test_steady_state_must_hold_before(world: World, write_experiment, tmp_path: Path) -> None:
    world.down.add("api-4")
    world.names.append("other")
    _, report = run(world, write_experiment(), tmp_path)
    assert report.verdict == "not_started"
    assert "before" in (report.reason or "")
    assert world.log == []


def test_driver_error_aborts_and_reverts_the_rest(world: World, write_experiment, tmp_path: Path
                                                  ) -> None:
    extra = """  - name: second
    action: fake.down
    target: {prefix: api}
    select: {names: [api-2]}
    at: 1s"""
    clock = FakeClock()
    armed: list[bool] = []

    def fail_second_injection(t: float) -> None:
        if world.log and not armed:
            armed.append(True)
            world.fail_inject = 1

    clock.on_tick.append(fail_second_injection)
    _, report = run(world, write_experiment(extra_fault=extra, select="{names: [api-1]}",
                                     duration="10s"), tmp_path, clock=clock)
    assert report.verdict == "aborted" and report.exit_code == 2
    assert "driver error" in (report.abort.reason if report.abort else "")
    assert [f.name for f in report.faults] == ["down", "second"]
    assert report.faults[1].error and report.faults[0].reverted_at
    assert world.down == set()


def test_revert_failure_is_rollback_incomplete_and_left_for_recover(
        world: World, write_experiment, tmp_path: Path) -> None:
    world.fail_revert = 100
    _, report = run(world, write_experiment(), tmp_path)
    assert report.verdict == "rollback_incomplete" and report.exit_code == 5
    open_faults = Ledger(tmp_path / "state").open_faults()
    assert len(open_faults) == 1 and open_faults[0].confirmed
    world.fail_revert = 0
    assert world.down  # still down: recover must take it back


def test_timed_fault_reverted_on_timeline(world: World, write_experiment, tmp_path: Path) -> None:
    extra = """    at: 1s
    for: 2s"""
    _, report = run(world, write_experiment(extra_fault=extra, duration="5s"), tmp_path)
    assert report.verdict == "passed"
    assert report.phases[3].name == "after"  # nothing left for the rollback phase
    fault_values = [s.value for s in report.samples if s.phase == "faults"
                    and s.slo == "availability"]
    assert fault_values[0] == 1.0 and min(fault_values) == 0.75 and fault_values[-1] == 1.0


def test_sample_interval_is_honoured(world: World, write_experiment, tmp_path: Path) -> None:
    _, report = run(world, write_experiment(duration="5s"), tmp_path)
    faults = [s for s in report.samples if s.phase == "faults" and s.slo == "availability"]
    assert len(faults) == 20  # 5 s every 250 ms
    assert json.dumps(report.to_json())


def test_second_interrupt_does_not_skip_rollback(world: World, write_experiment, tmp_path: Path
                                                 ) -> None:
    clock = FakeClock()
    the_run = fake_run(write_experiment(duration="60s"), world,
                       RunOptions(state_dir=tmp_path / "state", seed=1), clock=clock)

    def press_ctrl_c_twice(t: float) -> None:
        if world.down and the_run.state.signal is None:
            the_run.interrupt("SIGINT")
            the_run.interrupt("SIGINT")

    clock.on_tick.append(press_ctrl_c_twice)
    report = asyncio.run(the_run.execute())
    assert report.verdict == "interrupted" and report.exit_code == 130
    assert world.down == set() and world.log[-1][0] == "revert"
    messages = [e.get("message", "") for e in report.events if e["event"] == "interrupt"]
    assert any("will not be skipped" in m for m in messages)
    assert "after" not in [p.name for p in report.phases]


def test_sigterm_exit_code_is_143(world: World, write_experiment, tmp_path: Path) -> None:
    clock = FakeClock()
    the_run = fake_run(write_experiment(duration="60s"), world,
                       RunOptions(state_dir=tmp_path / "state", seed=1), clock=clock)
    clock.on_tick.append(lambda t: the_run.interrupt("SIGTERM") if world.down else None)
    report = asyncio.run(the_run.execute())
    assert (report.verdict, report.exit_code) == ("interrupted", 143)
    assert world.down == set()


def test_abort_preempts_an_injection_in_flight_and_still_reverts_it(
        world: World, write_experiment, tmp_path: Path) -> None:
    world.inject_delay = 0.5  # a slow backend: the inject call runs in its thread
    the_run = fake_run(write_experiment(duration="60s"), world,
                       RunOptions(state_dir=tmp_path / "state", seed=1), clock=FakeClock())
    seen: dict[str, object] = {}

    async def scenario() -> RunReport:
        async def press_halt_while_injecting() -> None:
            while not the_run.injections:
                await asyncio.sleep(0.01)
            seen["task_running"] = the_run.injections[0].task is not None and \
                not the_run.injections[0].task.done()
            the_run.request_abort(None, "halt: test")

        helper = asyncio.ensure_future(press_halt_while_injecting())
        report = await the_run.execute()
        await helper
        return report

    report = asyncio.run(scenario())
    assert seen["task_running"] is True  # the abort came while inject was still running
    assert report.verdict == "aborted" and "halt: test" in (report.reason or "")
    assert world.log == [("inject", world.log[0][1]), ("revert", world.log[0][1])]
    assert world.down == set()
    assert report.faults[0].injected_at and report.faults[0].reverted_at


def test_budget_gate_refuses_with_the_figures(world: World, write_experiment, tmp_path: Path
                                              ) -> None:
    world.budget_remaining = 0.10
    path = write_experiment()
    path.write_text(path.read_text().replace("abort:\n", "abort:\n  min_budget_remaining: 25%\n"))
    _, report = run(world, path, tmp_path)
    assert (report.verdict, report.exit_code) == ("not_started", 3)
    assert "10.0%" in (report.reason or "") and "25.0%" in (report.reason or "")
    assert world.log == []
    world.budget_remaining = 0.30
    _, report = run(world, path, tmp_path)
    assert report.verdict == "passed"
    assert report.budget["availability"].remaining_before == 0.30


def test_gameday_gate_applies_on_top_of_the_experiments(world: World, write_experiment,
                                                        tmp_path: Path) -> None:
    world.budget_remaining = 0.40
    _, report = run(world, write_experiment(), tmp_path, min_budget_remaining=0.5)
    assert report.verdict == "not_started" and "50.0%" in (report.reason or "")


def test_recover_skips_a_malformed_record(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.ensure()
    ledger.path.write_text('{"type": "intent", "key": "k", "run": "r"}\n')
    assert ledger.open_faults() == []


def test_overlapping_faults_on_one_instance_are_refused(world: World, write_experiment,
                                                        tmp_path: Path) -> None:
    extra = """  - name: again
    action: fake.down
    target: {prefix: api}
    select: {names: [api-1]}
    at: 1s"""
    _, report = run(world, write_experiment(select="{names: [api-1]}", extra_fault=extra),
                        tmp_path)
    assert report.verdict == "not_started" and "both hit api-1" in (report.reason or "")
    assert world.log == []
    after = extra + "\n    for: 1s"
    first_window = "    for: 1s\n" + after.replace("at: 1s", "at: 2s")
    _, report = run(world, write_experiment(select="{names: [api-1]}", extra_fault=first_window),
                    tmp_path)
    assert report.verdict == "passed", report.reason  # one after the other is fine


def test_toxics_compose_but_down_does_not() -> None:
    from chaosrunner.drivers.toxiproxy import ToxiproxyDriver

    driver = ToxiproxyDriver()
    assert driver.composes("toxiproxy.latency", "toxiproxy.bandwidth")
    assert not driver.composes("toxiproxy.latency", "toxiproxy.down")


def test_max_targets_counts_the_instances_all_faults_touch(
        world: World, write_experiment, tmp_path: Path) -> None:
    extra = """  - name: another
    action: fake.down
    target: {prefix: api}
    select: {names: [api-2]}"""
    _, report = run(world, write_experiment(select="{names: [api-1]}", extra_fault=extra),
                        tmp_path)
    assert report.verdict != "not_started" and len(report.faults) == 2  # max_targets 2
    three = extra + "\n" + extra.replace("another", "third").replace("api-2", "api-3")
    _, report = run(world, write_experiment(select="{names: [api-1]}", extra_fault=three),
                    tmp_path)
    assert report.verdict == "not_started" and "hit 3 instances" in (report.reason or "")
    assert "api-1, api-2, api-3" in (report.reason or "")


def test_a_touched_halt_file_halts_too(tmp_path: Path) -> None:
    from chaosrunner.engine.halt import StateDirHalt

    source = StateDirHalt(tmp_path)
    assert source.check() is None
    (tmp_path / "HALT").write_text("")
    assert source.check() == "halt file present"
    (tmp_path / "HALT").write_text("maintenance window\n")
    assert source.check() == "maintenance window"
    # A halt stays until cleared, also for runs that start later (they refuse).
    source.clear()
    assert source.check() is None
