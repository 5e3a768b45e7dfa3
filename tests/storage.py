"""Real storage faults for tests: a small tmpfs (full on demand) and a read-only bind mount
over a directory that a running process already uses. Root and mount(8) are needed: a test
skips (with the reason) where mounting is not permitted."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount here (mount {' '.join(args)}): "
                    f"{result.stderr.strip() or result.returncode}")


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "256k", read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` (created), unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size}" + (",ro" if read_only else ""), "tmpfs",
           str(path))
    try:
        yield path
    finally:
        _umount(path)


def fill(directory: Path) -> None:
    """Write until the file system holding `directory` is full (ENOSPC)."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def read_only_from_now(path: Path) -> Iterator[None]:
    """Make `path` read-only for every new open, link and unlink from now on (a bind mount
    of itself, remounted read-only: files already open for writing keep working, as on a
    file system remounted read-only under a running process)."""
    _mount("--bind", str(path), str(path))
    try:
        _mount("-o", "remount,bind,ro", str(path))
        yield
    finally:
        _umount(path)
