"""Real storage faults for tests: a small tmpfs (full on demand) and a read-only bind mount
over a directory that a running process already uses. Root and mount(8) are needed: a test
skips (with the reason) where mounting is not permitted, or fails under
CHAOSRUNNER_REQUIRE=mount (services.need)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from services import need


def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    need("mount", result.returncode == 0, f"cannot mount here (mount {' '.join(args)}): "
         f"{result.stderr.strip() or result.returncode}")


def mount_refused() -> str | None:
    """None when a tmpfs can be mounted here, else why not."""
    with tempfile.TemporaryDirectory(prefix="chaosrunner-mount-") as probe:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            return result.stderr.strip() or f"mount exited {result.returncode}"
        _umount(Path(probe))
    return None


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
