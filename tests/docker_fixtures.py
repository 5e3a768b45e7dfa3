"""Fixtures for tests against a real Docker engine.

    from docker_fixtures import docker_client, containers, shop_image  # noqa: F401

`docker_client` skips (or fails, under CHAOSRUNNER_REQUIRE=docker) when no engine
answers, and builds the local test images once per session (images/build.sh, cached
by content hash, so a session after the first costs a few `docker inspect`s).
`containers` starts throw-away containers of the busybox image on the host network and
removes every one of them afterwards, whatever the test did to them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers import free_port, machine_lock
from helpers import wait_until as poll_until
from services import need

ROOT = Path(__file__).resolve().parent.parent
BUSYBOX_IMAGE = "chaosrunner-busybox:test"
SHOP_IMAGE = "chaosrunner-shop:test"
TEST_LABEL = "org.chaosrunner.test"
SESSION = uuid.uuid4().hex[:8]


# This checkout's code over the image's (the image gives Python and the dependencies): the
# shop image's tag is shared by every checkout on the machine's Docker engine.
SOURCE = Path(os.environ.get("CHAOSRUNNER_CONTAINER_SOURCE", ROOT / "chaosrunner"))


def job_container(client: Any, image: str, data: Path, command: list[str], name: str,
                  labels: Mapping[str, str]) -> Any:
    """One job's container of the CronJob pattern (deploy/cronjob.yaml): `image` with this
    checkout's code, host network, the state volume `data` at /data, no init (`command`
    is PID 1, as in the CronJob)."""
    return client.containers.run(
        image, command=command, name=name, detach=True, network_mode="host", init=False,
        volumes={str(data): {"bind": "/data", "mode": "rw"},
                 str(SOURCE): {"bind": "/app/chaosrunner", "mode": "ro"}},
        labels=dict(labels))


@functools.cache
def engine_status() -> tuple[bool, str]:
    """(True, version) when a Docker engine answers, else (False, why not)."""
    try:
        import docker
    except ImportError:
        return False, "the Docker SDK is not installed (pip install docker)"
    from chaosrunner.drivers.docker import DockerDriver
    from chaosrunner.errors import DriverUnavailable

    # The driver's own check: it says why clearly and leaks no socket when none answers.
    try:
        DockerDriver().health()
    except DriverUnavailable as exc:
        return False, str(exc)
    client = docker.from_env(timeout=10)
    try:
        return True, str(client.version().get("Version"))
    finally:
        client.close()


def build_images(*names: str) -> None:
    """Build (or find up to date) the named images with images/build.sh."""
    result = subprocess.run([str(ROOT / "images" / "build.sh"), *names], capture_output=True,
                            text=True, timeout=900, check=False)
    if result.returncode != 0:
        pytest.fail(f"images/build.sh {' '.join(names)} failed:\n{result.stderr[-3000:]}")


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A docker-py client for an engine that answers, with the busybox image built."""
    ok, reason = engine_status()
    need("docker", ok, reason)
    import docker

    build_images("busybox")
    client = docker.from_env(timeout=30)
    try:
        yield client
    finally:
        _remove_labelled(client, {TEST_LABEL: SESSION})
        client.close()


@pytest.fixture(scope="session")
def shop_image(docker_client: Any) -> str:
    """The demo shop image (debootstrap Python base + chaosrunner), built once."""
    build_images("shop")
    return SHOP_IMAGE


def answers(url: str, timeout: float = 1.0) -> bool:
    """True when an HTTP GET of `url` gets any answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def wait_until(condition: Any, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll `condition()` every 50 ms until it is true; fail the test after `timeout`."""
    if not poll_until(condition, timeout=timeout):
        pytest.fail(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Containers:
    """Starts labelled busybox containers for one test; `cleanup` removes them all."""

    client: Any
    test_id: str
    started: list[Any] = field(default_factory=list)

    def sleeper(self, suffix: str, labels: Mapping[str, str] | None = None,
                **options: Any) -> Any:
        """A container that just sleeps (PID 1 is docker's init)."""
        return self.run(suffix, ["sleep", "3600"], labels, **options)

    def web(self, suffix: str, labels: Mapping[str, str] | None = None,
            healthcheck: bool = False, **options: Any) -> tuple[Any, str]:
        """A busybox httpd on 127.0.0.1:<free port>; returns (container, url)."""
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        if healthcheck:
            options["healthcheck"] = {
                "test": ["CMD", "wget", "-q", "-O", "/dev/null", url],
                "interval": 300_000_000, "timeout": 2_000_000_000, "retries": 2}
        container = self.run(suffix, ["httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/www"],
                             labels, **options)
        wait_until(lambda: answers(url), what=f"busybox httpd at {url}")
        if healthcheck:
            wait_until(lambda: health_of(container) == "healthy", what="healthy container")
        return container, url

    def run(self, suffix: str, command: Sequence[str],
            labels: Mapping[str, str] | None = None, **options: Any) -> Any:
        name = f"crtest-{SESSION}-{self.test_id}-{suffix}"
        options.setdefault("image", BUSYBOX_IMAGE)
        container = self.client.containers.run(
            command=list(command), name=name, detach=True, network_mode="host", init=True,
            labels={TEST_LABEL: SESSION, f"{TEST_LABEL}.case": self.test_id, **(labels or {})},
            **options)
        self.started.append(container)
        wait_until(lambda: state_of(container).get("Running") is True,
                   what=f"container {name} running")
        return container

    def cleanup(self) -> None:
        _remove_labelled(self.client, {f"{TEST_LABEL}.case": self.test_id})


@pytest.fixture
def containers(docker_client: Any) -> Iterator[Containers]:
    factory = Containers(docker_client, uuid.uuid4().hex[:6])
    try:
        yield factory
    finally:
        factory.cleanup()


def state_of(container: Any) -> dict[str, Any]:
    """The container's current State (reloaded)."""
    container.reload()
    state: dict[str, Any] = container.attrs["State"]
    return state


def health_of(container: Any) -> str | None:
    return (state_of(container).get("Health") or {}).get("Status")


def _remove_labelled(client: Any, labels: Mapping[str, str]) -> None:
    import docker.errors

    filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
    for container in client.containers.list(all=True, filters=filters):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)


STACK_CHECKOUT = "http://127.0.0.1:18080"


@dataclass
class ComposeStack:
    """The docker test stack (docker-compose.test.yml) brought up by scripts/stack.sh."""

    env: dict[str, str]

    def script(self, command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ROOT / "scripts" / "stack.sh"), command], env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)


STACK_LOCK = Path("/tmp/chaosrunner-stack.lock")


@contextlib.contextmanager
def stack_ports_held(timeout: float = 1200) -> Iterator[None]:
    """The stack's fixed ports (18080, 19101-19104) for this session alone: another test
    session on the machine (a second checkout's `make test`) waits for them, bounded, instead
    of both bringing the stack up on the same ports."""
    with machine_lock(STACK_LOCK, timeout, "the compose stack's ports"):
        yield


@pytest.fixture
def compose_stack(docker_client: Any, shop_image: str, tmp_path: Path) -> Iterator[ComposeStack]:
    """The stack up, with its journals in a fresh directory; down afterwards."""
    with stack_ports_held():
        yield from _stack_up(tmp_path)


def _stack_up(tmp_path: Path) -> Iterator[ComposeStack]:
    env = {**os.environ, "CHAOSRUNNER_STACK_DIR": str(tmp_path / "stack")}
    stack = ComposeStack(env)
    started = stack.script("up")
    try:
        if started.returncode != 0:
            pytest.fail(f"scripts/stack.sh up failed:\n{started.stderr[-3000:]}")
        yield stack
    finally:
        stack.script("down", timeout=120)
