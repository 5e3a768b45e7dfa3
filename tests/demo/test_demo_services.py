"""The services one at a time: a payments replica's life cycle, and checkout's
retry and breaker logic in-process against closed and open ports."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from demo_support import free_base_port
from helpers import wait_until

from chaosrunner.demo._server import Request
from chaosrunner.demo.checkout import Checkout, PaymentFailed, Replica


def _wait_for_file(path: Path, timeout: float = 60.0) -> None:
    # A Python process's start: seconds on a loaded 2-core machine; the wait ends at once.
    assert wait_until(path.exists, timeout=timeout), f"{path} never appeared"


def test_payments_writes_pid_file_and_removes_it_on_sigterm(tmp_path: Path) -> None:
    port = free_base_port(1)
    pid_file = tmp_path / "run" / "payments-7.pid"
    journal = tmp_path / "payments-7.journal"
    process = subprocess.Popen(
        [sys.executable, "-m", "chaosrunner.demo.payments", "--port", str(port),
         "--name", "payments-7", "--pid-file", str(pid_file), "--journal", str(journal)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_file(pid_file)
        assert pid_file.read_text().strip() == str(process.pid)
        with httpx.Client(timeout=5) as client:
            paid = client.post(f"http://127.0.0.1:{port}/pay", json={"order_id": "ord-1"}).json()
            by_query = client.get(f"http://127.0.0.1:{port}/pay?order_id=ord-2").json()
            bad = client.get(f"http://127.0.0.1:{port}/pay?order_id=../../x")
            summary = client.get(f"http://127.0.0.1:{port}/payments").json()
        assert paid == {"payment_id": "payments-7-1", "order_id": "ord-1", "replica": "payments-7"}
        assert by_query["order_id"] == "ord-2"
        assert bad.status_code == 400
        assert summary["confirmed"] == 2
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert b"SIGTERM, shutting down" in stderr
    assert not pid_file.exists()
    assert journal.read_text().split("\n")[:2] == ["ord-1 payments-7-1", "ord-2 payments-7-2"]


def test_payments_on_a_taken_port_says_so(tmp_path: Path) -> None:
    port = free_base_port(1)
    first = subprocess.Popen([sys.executable, "-m", "chaosrunner.demo.payments", "--port",
                              str(port), "--pid-file", str(tmp_path / "a.pid")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_file(tmp_path / "a.pid")
        second = subprocess.run([sys.executable, "-m", "chaosrunner.demo.payments", "--port",
                                 str(port)], capture_output=True, text=True, timeout=30)
    finally:
        first.terminate()
        first.wait(10)
    assert second.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in second.stderr
    assert "Traceback" not in second.stderr


def test_checkout_skips_a_replica_whose_breaker_is_open() -> None:
    dead = f"http://127.0.0.1:{free_base_port(1)}"
    checkout = Checkout([dead], timeout=0.5, attempts=3, fail_max=2, reset_timeout=60)
    try:
        answers = [checkout.checkout(Request("GET", "/checkout", {}, b"")) for _ in range(4)]
        attempts = {
            sample.labels["outcome"]: sample.value
            for metric in checkout.metrics.registry.collect()
            if metric.name == "checkout_payment_attempts"
            for sample in metric.samples if sample.name.endswith("_total")}
        open_gauge = checkout.metrics.registry.get_sample_value(
            "checkout_breaker_open", {"replica": dead})
    finally:
        checkout.close()
    assert [answer.status for answer in answers] == [503] * 4
    # Two refused calls open the breaker; the next two orders never call the replica.
    assert attempts == {"error": 2.0, "skipped": 2.0}
    assert open_gauge == 1.0
    assert checkout.replicas[0].is_open


def test_one_call_in_ten_failing_opens_no_breaker_but_the_failing_replicas() -> None:
    """payments-errors: 10% of calls fail on every replica, all of them on payments-1.
    Checkout's default breaker must open payments-1's only: with a breaker that opened
    after 3 failures in a row, the 10% alone opened another replica's now and then; with
    two of them and payments-1's open, every order had one replica left and no retry, and
    10% of them failed (the probe fell to 98.67%, under the experiment's 99%)."""
    urls = [f"http://127.0.0.1:{port}" for port in range(9001, 9005)]
    checkout = Checkout(urls, reset_timeout=3600)  # an open breaker stays open: worst case
    coin = random.Random(0)

    def call(replica: Replica, order_id: str) -> str:
        if replica.url == urls[0] or coin.random() < 0.1:
            raise PaymentFailed(f"{replica.url} answered 503")
        return f"pay-{order_id}"

    checkout._call = call  # type: ignore[method-assign]
    try:
        orders = 2000  # three runs of the experiment's probe (20/s for 30 s)
        failed = sum(checkout.pay(f"ord-{i}") is None for i in range(orders))
    finally:
        checkout.close()
    assert [replica.is_open for replica in checkout.replicas] == [True, False, False, False]
    assert failed <= orders * 0.002  # three calls on three replicas fail: 0.1%
