"""Fixtures for the proxy tests: the embedded server, an API client, a real TCP upstream."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from httphelp import PlainServer
from proxy.upstreams import echo, web  # noqa: F401  (fixtures)
from proxyhelp import make_proxy, port_of

from chaosrunner.proxy.server import ProxyServerHandle, start_background


@pytest.fixture
def loop_kind() -> str:
    """How the proxy relays: "asyncio" (os.splice for links with no toxic), "asyncio-copy"
    (no splice) or "uvloop". The data-path modules run on all three."""
    return "asyncio"


@pytest.fixture
def server(loop_kind: str) -> Iterator[ProxyServerHandle]:
    handle = start_background(loop=loop_kind.removesuffix("-copy"),
                              zero_copy=not loop_kind.endswith("-copy"))
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def api(server: ProxyServerHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture
def base(api: httpx.Client, web: PlainServer) -> str:  # noqa: F811  (the imported fixture)
    """The URL of a proxy `web` in front of `web`."""
    proxy = make_proxy(api, "web", web.address)
    return f"http://127.0.0.1:{port_of(proxy)}"
