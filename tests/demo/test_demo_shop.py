"""The demo shop as real processes: checkout pays through payments, survives a
killed replica by retrying elsewhere, opens that replica's breaker, loses no
order, exposes the standard metrics, and leaves nothing behind."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from demo_support import free_base_port, processes_tagged, shop_tag, start_shop
from prometheus_client.parser import text_string_to_metric_families

from chaosrunner.demo._server import digest
from chaosrunner.demo.shop import Shop, ShopError


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_checkout_is_paid_by_a_payments_replica(shop: Shop) -> None:
    with httpx.Client(timeout=5) as client:
        answers = [client.get(shop.checkout_endpoint) for _ in range(8)]
        assert [a.status_code for a in answers] == [200] * 8
        bodies = [a.json() for a in answers]
        # Round-robin: eight orders spread over all four replicas.
        assert {body["replica"] for body in bodies} == set(shop.payments_urls)
        assert all(body["payment_id"] and body["order_id"].startswith("ord-") for body in bodies)
        posted = client.post(shop.checkout_endpoint)
        assert posted.status_code == 200

        orders = client.get(f"{shop.checkout_url}/orders", params={"ids": "1"}).json()
        assert orders["accepted"] == 9 and orders["failed"] == 0
        assert orders["ids_digest"] == digest(orders["ids"])
        confirmed = sum(client.get(f"{url}/payments").json()["confirmed"]
                        for url in shop.payments_urls)
    assert confirmed >= orders["accepted"]
    audit = shop.audit()
    assert (audit.accepted, audit.lost) == (9, False)


def test_killed_replica_is_retried_elsewhere_and_its_breaker_opens(shop: Shop) -> None:
    victim = shop.payments[0]
    os.kill(victim.pid, signal.SIGKILL)
    with httpx.Client(timeout=5) as client:
        bodies = []
        for _ in range(24):
            answer = client.get(shop.checkout_endpoint)
            assert answer.status_code == 200, answer.text
            bodies.append(answer.json())
        breakers = {b["url"]: b["state"]
                    for b in client.get(f"{shop.checkout_url}/breakers").json()["replicas"]}
    assert all(body["replica"] != victim.url for body in bodies)
    # Orders that went to the dead replica first were paid on a second call.
    assert any(body["attempts"] == 2 for body in bodies)
    assert breakers[victim.url] == "open"
    assert [state for url, state in breakers.items() if url != victim.url] == ["closed"] * 3
    assert eventually(lambda: not victim.pid_file.exists()), "stale pid file of a dead replica"
    assert [s.name for s in shop.alive_payments()] == ["payments-2", "payments-3", "payments-4"]
    audit = shop.audit()
    assert audit.accepted == 24 and not audit.lost


def test_checkout_answers_503_when_every_replica_is_gone(shop: Shop) -> None:
    for service in shop.payments:
        os.kill(service.pid, signal.SIGKILL)
    with httpx.Client(timeout=5) as client:
        answer = client.get(shop.checkout_endpoint)
        orders = client.get(f"{shop.checkout_url}/orders").json()
    assert answer.status_code == 503
    assert "no payments replica" in answer.json()["error"]
    assert (orders["accepted"], orders["failed"]) == (0, 1)


def _families(text: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    found: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        found[family.name] = [(s.name, s.labels, s.value) for s in family.samples]
    return found


def test_metrics_have_the_standard_names_and_labels(shop: Shop) -> None:
    with httpx.Client(timeout=5) as client:
        for _ in range(3):
            client.get(shop.checkout_endpoint)
        client.get(f"{shop.checkout_url}/nope")
        checkout = _families(client.get(f"{shop.checkout_url}/metrics").text)
        payments = [_families(client.get(f"{url}/metrics").text) for url in shop.payments_urls]

    requests = {(labels["handler"], labels["code"]): value
                for name, labels, value in checkout["http_requests"] if name.endswith("_total")}
    assert requests[("/checkout", "200")] == 3
    assert requests[("other", "404")] == 1
    assert not any(handler in ("/metrics", "/healthz") for handler, _ in requests)
    buckets = [(labels, value) for name, labels, value in checkout["http_request_duration_seconds"]
               if name == "http_request_duration_seconds_bucket"
               and labels["handler"] == "/checkout"]
    assert buckets and buckets[-1][0]["le"] == "+Inf" and buckets[-1][1] == 3
    assert "checkout_breaker_open" in checkout
    paid = sum(value for family in payments for name, labels, value in family["http_requests"]
               if name.endswith("_total") and labels == {"handler": "/pay", "code": "200"})
    assert paid == 3
    assert all("http_request_duration_seconds" in family for family in payments)


def test_stop_leaves_no_process_and_no_pid_file(tmp_path: Path) -> None:
    tag = shop_tag()
    shop = start_shop(tmp_path / "shop", shop_name=tag)
    pids = [service.pid for service in shop.services]
    assert sorted(processes_tagged(tag)) == sorted(pids)
    assert all(path.exists() for path in shop.payments_pid_files)
    shop.stop()
    shop.stop()  # idempotent
    assert processes_tagged(tag) == []
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not any(path.exists() for path in shop.payments_pid_files)
    assert all(service.process.returncode == 0 for service in shop.services), \
        "SIGTERM should end every service cleanly (exit 0)"


def test_taken_port_is_a_clear_error_and_nothing_starts(tmp_path: Path) -> None:
    tag = shop_tag()
    base = free_base_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", base + 2))
        squatter.listen()
        with pytest.raises(ShopError, match=rf"port {base + 2} .*payments-2.* not free"):
            Shop.start(base_port=base, replicas=4, state_dir=tmp_path, shop_name=tag)
    assert processes_tagged(tag) == []


def test_a_service_dying_during_start_stops_the_others(tmp_path: Path) -> None:
    tag = shop_tag()
    # Checkout starts last and refuses this flag: the four replicas are already up.
    with pytest.raises(ShopError, match=r"(?s)checkout exited with code 2.*--attempts"):
        start_shop(tmp_path, shop_name=tag, checkout_args=["--attempts", "many"])
    assert processes_tagged(tag) == []
    assert not any(tmp_path.glob("*.pid"))
