"""Proxies and their toxics: the state behind the API, with Toxiproxy's semantics.

Everything here runs on the server's event loop thread; the API handlers call these
methods directly, so no locks are needed.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from typing import Any, TypeVar

from chaosrunner.proxy.link import Link, ReadBuffer
from chaosrunner.proxy.toxics import (
    EXPIRES_AT,
    PROXY_EXISTS,
    PROXY_NOT_FOUND,
    STREAMS,
    TOXIC_EXISTS,
    TOXIC_NOT_FOUND,
    ApiError,
    End,
    HttpRule,
    Toxic,
    api_error,
    bad_request,
    merge_attributes,
    missing_field,
    parse_toxicity,
)

T = TypeVar("T")
log = logging.getLogger("chaosrunner.proxy")

DEFAULT_LISTEN = "127.0.0.1:0"
BACKLOG = 4096


def split_address(address: str) -> tuple[str, int]:
    """('127.0.0.1', 8080) from '127.0.0.1:8080'; '[::1]:80' and ':80' (loopback) work too."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"address {address!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "127.0.0.1", int(port_text)


def join_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Proxy:
    """One listener and its upstream, its toxics, and its open links."""

    def __init__(self, name: str, listen: str, upstream: str, buffer: ReadBuffer) -> None:
        self.name = name
        self.listen = listen or DEFAULT_LISTEN
        self.upstream = upstream
        self.enabled = False
        self.buffer = buffer
        self.toxics: dict[str, list[Toxic]] = {stream: [] for stream in STREAMS}
        self.links: set[Link] = set()
        self.server: asyncio.Server | None = None
        self.counters: dict[str, list[int]] = {stream: [0, 0] for stream in STREAMS}
        # The TCP toxics per stream, and the HTTP toxics of both streams with their rules.
        self.chains: dict[str, list[Toxic]] = {stream: [] for stream in STREAMS}
        self.http_rules: list[tuple[Toxic, HttpRule]] = []
        self.expiry: dict[str, asyncio.TimerHandle] = {}  # toxic name -> its removal
        self._upstream_address: tuple[str, int] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream,
                "enabled": self.enabled, "toxics": self.toxic_list()}

    def toxic_list(self) -> list[dict[str, Any]]:
        return [toxic.to_json() for stream in STREAMS for toxic in self.toxics[stream]]

    def chain(self, stream: str) -> list[Toxic]:
        return self.chains[stream]

    def upstream_address(self) -> tuple[str, int]:
        if self._upstream_address is None:
            self._upstream_address = split_address(self.upstream)
        return self._upstream_address

    def validate(self) -> None:
        for field, value in (("listen", self.listen), ("upstream", self.upstream)):
            try:
                split_address(value)
            except ValueError as exc:
                raise ApiError(f"invalid {field} address: {exc}", 400) from None

    # --- lifecycle ---

    async def start(self) -> None:
        """Listen; `listen` becomes the bound address (port 0 gets a real port)."""
        if self.enabled:
            return
        host, port = split_address(self.listen)
        self._upstream_address = None
        loop = asyncio.get_running_loop()
        try:
            self.server = await loop.create_server(self._accept, host, port, backlog=BACKLOG,
                                                   reuse_address=True)
        except OSError as exc:
            raise ApiError(_listen_error(self.listen, exc), 500) from None
        bound = self.server.sockets[0].getsockname()
        self.listen = join_address(host, bound[1])
        self.enabled = True

    def stop(self) -> None:
        """Close the listener and every open connection; toxics stay."""
        if not self.enabled:
            return
        self.enabled = False
        if self.server is not None:
            self.server.close()
            self.server = None
        for link in list(self.links):
            link.finish(End.CLOSE)

    def _accept(self) -> Any:
        link = Link(self, asyncio.get_running_loop(), self.buffer, self.links.discard)
        self.links.add(link)
        return link.client

    # --- toxics ---

    def find_toxic(self, name: str) -> Toxic | None:
        for stream in STREAMS:
            for toxic in self.toxics[stream]:
                if toxic.name == name:
                    return toxic
        return None

    def add_toxic(self, body: Any) -> Toxic:
        toxic = Toxic.from_request(body)
        if self.find_toxic(toxic.name) is not None:
            raise api_error(TOXIC_EXISTS)
        toxic.attributes = merge_attributes(toxic.type, toxic.attributes,
                                            body.get("attributes"))
        self.toxics[toxic.stream].append(toxic)
        self._apply(toxic.stream)
        return toxic

    def update_toxic(self, name: str, body: Any) -> Toxic:
        toxic = self.find_toxic(name)
        if toxic is None:
            raise api_error(TOXIC_NOT_FOUND)
        if not isinstance(body, dict):
            raise bad_request("json: cannot unmarshal into Go value")
        attributes = merge_attributes(toxic.type, toxic.attributes, body.get("attributes"))
        toxicity = parse_toxicity(body["toxicity"]) if "toxicity" in body else toxic.toxicity
        toxic.attributes, toxic.toxicity = attributes, toxicity
        given = body.get("attributes")
        if "toxicity" not in body and isinstance(given, dict) and set(given) == {EXPIRES_AT}:
            # A lease renewal: nothing a connection reads changed, so none re-flips its coin.
            self._schedule_expiry()
            return toxic
        toxic.revision += 1
        self._apply(toxic.stream)
        return toxic

    def remove_toxic(self, name: str) -> None:
        toxic = self.find_toxic(name)
        if toxic is None:
            raise api_error(TOXIC_NOT_FOUND)
        self.toxics[toxic.stream].remove(toxic)
        self._apply(toxic.stream)

    def reset_toxics(self) -> None:
        for stream in STREAMS:
            if self.toxics[stream]:
                self.toxics[stream] = []
                self._apply(stream)

    def forget(self) -> None:
        """Stop, and cancel the expiry timers: the proxy is being deleted or replaced."""
        self.stop()
        for timer in self.expiry.values():
            timer.cancel()
        self.expiry.clear()

    def _schedule_expiry(self) -> None:
        """One timer per toxic with `expires_at` (an extension; see docs/design.md)."""
        for timer in self.expiry.values():
            timer.cancel()
        self.expiry.clear()
        loop = asyncio.get_running_loop()
        for stream in STREAMS:
            for toxic in self.toxics[stream]:
                when = toxic.expires_at
                if when is not None:
                    delay = max(0.0, when - time.time())
                    self.expiry[toxic.name] = loop.call_later(delay, self._expire, toxic)

    def _expire(self, toxic: Toxic) -> None:
        when = toxic.expires_at
        if when is None or self.find_toxic(toxic.name) is not toxic:
            return
        if when > time.time():  # the wall clock moved back: wait the rest
            self._schedule_expiry()
            return
        log.warning("proxy %s: toxic %s (%s, %s) expired at %s and was removed", self.name,
                    toxic.name, toxic.type, toxic.stream,
                    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)))
        self.remove_toxic(toxic.name)

    def _apply(self, stream: str) -> None:
        self._schedule_expiry()
        self.chains[stream] = [toxic for toxic in self.toxics[stream] if not toxic.is_http]
        self.http_rules = [(toxic, toxic.rule()) for name in STREAMS
                           for toxic in self.toxics[name] if toxic.is_http]
        chain = self.chains[stream]
        for link in list(self.links):
            link.apply(stream, chain)


def _listen_error(listen: str, exc: OSError) -> str:
    # Go's wording, which clients and people recognise: "listen tcp ADDR: bind: ..."
    reason = {errno.EADDRINUSE: "address already in use",
              errno.EADDRNOTAVAIL: "cannot assign requested address",
              errno.EACCES: "permission denied"}.get(exc.errno or 0, exc.strerror or str(exc))
    return f"listen tcp {listen}: bind: {reason}"


class ProxyCollection:
    """All proxies by name, with Toxiproxy's create / populate / reset semantics."""

    def __init__(self, zero_copy: bool = True) -> None:
        self.proxies: dict[str, Proxy] = {}
        self.buffer = ReadBuffer(zero_copy=zero_copy)

    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise api_error(PROXY_NOT_FOUND)
        return proxy

    async def create(self, body: Any) -> Proxy:
        fields = _proxy_fields(body, "")
        if fields["name"] in self.proxies:
            raise api_error(PROXY_EXISTS)
        proxy = Proxy(fields["name"], fields["listen"], fields["upstream"], self.buffer)
        proxy.validate()
        if fields["enabled"]:
            await proxy.start()
        self.proxies[proxy.name] = proxy
        return proxy

    async def update(self, name: str, body: Any) -> Proxy:
        proxy = self.get(name)
        if not isinstance(body, dict):
            raise bad_request("json: cannot unmarshal into Go value of type toxiproxy.Proxy")
        listen = _string(body, "listen", proxy.listen)
        upstream = _string(body, "upstream", proxy.upstream)
        enabled = _bool(body, "enabled", proxy.enabled)
        if listen != proxy.listen or upstream != proxy.upstream:
            proxy.stop()  # a new address means a restart, as Toxiproxy does
            proxy.listen, proxy.upstream = listen, upstream
            proxy.validate()
        if enabled and not proxy.enabled:
            await proxy.start()
        elif not enabled:
            proxy.stop()
        return proxy

    def delete(self, name: str) -> None:
        proxy = self.get(name)
        proxy.forget()
        del self.proxies[name]

    async def populate(self, body: Any) -> list[Proxy]:
        """Create or replace proxies; all entries are checked before any is touched."""
        if not isinstance(body, list):
            raise bad_request("json: cannot unmarshal object into Go value of type "
                              "[]toxiproxy.Proxy")
        entries = [_proxy_fields(item, f" at proxy {i + 1}") for i, item in enumerate(body)]
        seen: set[str] = set()
        for entry in entries:
            if entry["name"] in seen:
                raise ApiError(f"duplicate proxy name {entry['name']!r}".replace("'", '"'), 500)
            seen.add(entry["name"])
            if entry["enabled"]:
                Proxy(entry["name"], entry["listen"], entry["upstream"], self.buffer).validate()
        return [await self._add_or_replace(entry) for entry in entries]

    async def _add_or_replace(self, entry: dict[str, Any]) -> Proxy:
        existing = self.proxies.get(entry["name"])
        if existing is not None:
            if _same_address(existing.listen, entry["listen"]) \
                    and existing.upstream == entry["upstream"]:
                return existing  # identical: left alone, toxics and connections included
            existing.forget()
            del self.proxies[entry["name"]]
        proxy = Proxy(entry["name"], entry["listen"], entry["upstream"], self.buffer)
        if entry["enabled"]:
            await proxy.start()
        self.proxies[proxy.name] = proxy
        return proxy

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        for proxy in self.proxies.values():
            await proxy.start()
            proxy.reset_toxics()

    def close(self) -> None:
        for proxy in self.proxies.values():
            proxy.forget()


def _same_address(current: str, wanted: str) -> bool:
    # A proxy asked for on port 0 matches whatever port it was given.
    if current == wanted:
        return True
    try:
        (host_a, _port_a), (host_b, port_b) = split_address(current), split_address(wanted)
    except ValueError:
        return False
    return host_a == host_b and port_b == 0


def _proxy_fields(body: Any, where: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("json: cannot unmarshal into Go value of type toxiproxy.Proxy")
    fields = {"name": _string(body, "name", ""), "listen": _string(body, "listen", ""),
              "upstream": _string(body, "upstream", ""),
              "enabled": _bool(body, "enabled", True)}
    if not fields["name"]:
        raise missing_field(f"name{where}")
    if not fields["upstream"]:
        raise missing_field(f"upstream{where}")
    return fields


def _typed(body: dict[str, Any], key: str, default: T, kind: type[T], go_type: str) -> T:
    """body[key] if it has the right JSON type (null: the default); else Toxiproxy's 400."""
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise bad_request(f"json: cannot unmarshal {type(value).__name__} into Go struct field "
                          f"Proxy.{key} of type {go_type}")
    return value


def _string(body: dict[str, Any], key: str, default: str) -> str:
    return _typed(body, key, default, str, "string")


def _bool(body: dict[str, Any], key: str, default: bool) -> bool:
    return _typed(body, key, default, bool, "bool")

