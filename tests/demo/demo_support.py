"""Fixtures for the demo shop tests: a real shop on free loopback ports."""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosrunner.demo.shop import Shop, ShopError

REPLICAS = 4


def _run_is_free(base: int, count: int) -> bool:
    for port in range(base, base + count):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_base_port(count: int = REPLICAS + 1) -> int:
    """A base port with `count` free ports after it (far from the demo's 8080)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 40000)
        if _run_is_free(base, count):
            return base
    raise RuntimeError("no run of free ports found on 127.0.0.1")


def shop_tag() -> str:
    """A tag unique to this test process, so no other shop's processes are ever touched."""
    return f"test{os.getpid()}x{random.randrange(1 << 30):x}"


def processes_tagged(tag: str) -> list[int]:
    """Pids of live (non-zombie) processes whose command line carries `--shop <tag>`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--shop" in argv and tag.encode() in argv:
            found.append(int(entry.name))
    return found


def start_shop(state_dir: Path, **kwargs: object) -> Shop:
    """Shop.start on free ports, retrying if another process grabs a port meanwhile."""
    for _ in range(5):
        try:
            return Shop.start(base_port=free_base_port(), replicas=REPLICAS,
                              state_dir=state_dir, **kwargs)  # type: ignore[arg-type]
        except ShopError as exc:
            if "not free" not in str(exc):
                raise
    raise RuntimeError("could not find free ports for the shop")


@pytest.fixture
def tag() -> str:
    return shop_tag()


@pytest.fixture
def shop(tmp_path: Path, tag: str) -> Iterator[Shop]:
    running = start_shop(tmp_path / "shop", shop_name=tag)
    try:
        yield running
    finally:
        running.stop()
    assert processes_tagged(tag) == [], "the shop left processes behind"
