"""`toxiproxy.*` actions: network faults through a Toxiproxy API (real, or `chaosrunner proxy`).

    action                 with (durations in units)                          Toxiproxy toxic
    toxiproxy.latency      latency, jitter                                    latency (ms)
    toxiproxy.bandwidth    rate (KB/s: 500, "500KB/s", "2MB/s")               bandwidth
    toxiproxy.timeout      timeout (0 = hold forever)                         timeout (ms)
    toxiproxy.reset_peer   timeout (0 = at once)                              reset_peer (ms)
    toxiproxy.slow_close   delay                                              slow_close (ms)
    toxiproxy.slicer       average_size, size_variation (bytes), delay        slicer (delay in us)
    toxiproxy.limit_data   bytes                                              limit_data
    toxiproxy.down         -                                                  proxy disabled

HTTP toxics, which only `chaosrunner proxy` has (a real Toxiproxy refuses them; the driver
says so before anything is injected):

    toxiproxy.http_error   status (400-599, default 503), body, response_headers   http_error
    toxiproxy.http_latency latency, jitter                                    http_latency (ms)
    toxiproxy.http_reset   -                                                  http_reset

They match requests by `method` (regex), `path` (regex on path and query) and `headers`
({name: regex}), all optional; their `toxicity` is the probability per matching request.

Every TCP toxic action also takes `stream` (upstream | downstream, default downstream), and
every toxic action `toxicity` (0..1 or "50%", default 1). Target: `{proxy: NAME, api: URL}`,
api defaulting to http://127.0.0.1:8474.

Expiry. On `chaosrunner proxy` every toxic this driver adds carries `expires_at`, so that
it heals even when the runner's whole machine dies: the engine passes the fault's deadline
(its planned end plus a margin) under `DEADLINE_PARAM`; a fault without one gets a lease of
`LEASE` seconds that a background thread renews while this process lives (`renew`).
A real Toxiproxy ignores the attribute.

Rollback. The toxic's name is derived from the injection key alone, so `revert` can
delete exactly the toxic this run added — even from a provisional handle written before
inject ran, and from a new process after a crash. Deleting a toxic that is not there
(404) means it is already gone: success. `down` is taken back by enabling the proxy.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from chaosrunner.drivers.base import (
    DEADLINE_PARAM,
    JSON,
    BaseDriver,
    DriverContext,
    Handle,
    Instance,
    ParamError,
)
from chaosrunner.errors import DriverError, DriverUnavailable, TargetNotFound
from chaosrunner.spec.units import parse_duration, parse_ratio

if TYPE_CHECKING:  # httpx is imported when the API is called, not by `validate`
    import httpx

DEFAULT_API = "http://127.0.0.1:8474"
LEASE = 30.0  # expiry of a toxic without a planned end, renewed every LEASE / 3
USER_AGENT = "chaosrunner-toxiproxy-driver"
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0)

Convert = Callable[[Any], Any]


def _ms(value: Any) -> int:
    return round(parse_duration(value) * 1000)


def _us(value: Any) -> int:
    return round(parse_duration(value) * 1_000_000)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a whole number of bytes (0 or more), got {value!r}")
    return value


_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(KB|MB|GB)/s\s*$", re.IGNORECASE)


def _kb_per_s(value: Any) -> int:
    """Toxiproxy's rate unit is KB/s of 1000 bytes; accepts 500, '500KB/s', '2MB/s'."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        match = _RATE.match(value)
        if match:
            factor = {"KB": 1, "MB": 1000, "GB": 1_000_000}[match.group(2).upper()]
            return round(float(match.group(1)) * factor)
    raise ValueError(f"expected a rate in KB/s such as 500, '500KB/s' or '2MB/s', got {value!r}")


def _status(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 400 <= value <= 599:
        raise ValueError(f"expected an HTTP error status 400-599, got {value!r}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _regex(value: Any) -> str:
    try:
        re.compile(_text(value))
    except re.error as exc:
        raise ValueError(f"bad regex {value!r}: {exc}") from None
    return str(value)


def _string_map(check: Callable[[Any], str]) -> Convert:
    def convert(value: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise ValueError(f"expected a map of header name to string, got {value!r}")
        return {_text(name): check(item) for name, item in value.items()}
    return convert


MATCH: dict[str, tuple[Convert, Any]] = {
    "method": (_regex, ""), "path": (_regex, ""), "headers": (_string_map(_regex), {})}

# verb -> (toxic type, {param: (converter, default or None if required)})
TOXICS: dict[str, tuple[str, dict[str, tuple[Convert, Any]]]] = {
    "latency": ("latency", {"latency": (_ms, None), "jitter": (_ms, 0)}),
    "bandwidth": ("bandwidth", {"rate": (_kb_per_s, None)}),
    "timeout": ("timeout", {"timeout": (_ms, 0)}),
    "reset_peer": ("reset_peer", {"timeout": (_ms, 0)}),
    "slow_close": ("slow_close", {"delay": (_ms, None)}),
    "slicer": ("slicer", {"average_size": (_count, None), "size_variation": (_count, 0),
                          "delay": (_us, 0)}),
    "limit_data": ("limit_data", {"bytes": (_count, None)}),
    "http_error": ("http_error", {"status": (_status, 503), "body": (_text, ""),
                                  "response_headers": (_string_map(_text), {}), **MATCH}),
    "http_latency": ("http_latency", {"latency": (_ms, None), "jitter": (_ms, 0), **MATCH}),
    "http_reset": ("http_reset", {**MATCH}),
}
HTTP_VERBS = frozenset(verb for verb in TOXICS if verb.startswith("http_"))
TARGET_KEYS = frozenset({"proxy", "proxy_regex", "api"})


class ToxiproxyDriver(BaseDriver):
    """Faults through the Toxiproxy HTTP API. See the module docstring."""

    name: ClassVar[str] = "toxiproxy"
    actions: ClassVar[frozenset[str]] = frozenset({*TOXICS, "down"})
    accepts_deadline: ClassVar[bool] = True  # toxics carry it as `expires_at`

    def composes(self, first: str, second: str) -> bool:
        """Toxics stack on one proxy (each has its own name); `down` composes with nothing."""
        return not (first.endswith(".down") or second.endswith(".down"))

    def __init__(self, context: DriverContext | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(context)
        self._transport = transport
        self._apis: set[str] = set()

    # --- validate ------------------------------------------------------------------------------

    def validate(self, action: str, target: Mapping[str, JSON],
                 params: Mapping[str, JSON]) -> dict[str, JSON]:
        """Check target and parameters; returns the toxic in Toxiproxy's units.

        >>> ToxiproxyDriver().validate("toxiproxy.latency", {"proxy": "db"},
        ...                            {"latency": "500ms"})["attributes"]
        {'latency': 500, 'jitter': 0}
        """
        verb = self.check_action(action)
        self._check_target(target)
        if _is_normalised(params):
            return dict(params)
        if verb == "down":
            if params:
                key = next(iter(params))
                raise ParamError(("with", key), "toxiproxy.down takes no parameters")
            return {}
        kind, spec = TOXICS[verb]
        allowed = {*spec, "toxicity"} if verb in HTTP_VERBS else {*spec, "stream", "toxicity"}
        for key in params:
            if key not in allowed:
                raise ParamError(("with", key), f"unknown parameter {key!r} for {action}; "
                                 f"known: {', '.join(sorted(allowed))}")
        attributes: dict[str, Any] = {}
        for key, (convert, default) in spec.items():
            if key not in params and default is None:
                raise ParamError(("with", key), f"{action} needs {key!r}")
            try:
                attributes[key] = convert(params.get(key, default))
            except ValueError as exc:
                raise ParamError(("with", key), str(exc)) from None
        if kind == "slicer" and attributes["average_size"] < 1:
            raise ParamError(("with", "average_size"), "average_size must be at least 1 byte")
        stream = params.get("stream", "downstream")
        if stream not in ("upstream", "downstream"):
            raise ParamError(("with", "stream"),
                             f"stream must be upstream or downstream, got {stream!r}")
        try:
            toxicity = parse_ratio(params.get("toxicity", 1.0))
        except ValueError as exc:
            raise ParamError(("with", "toxicity"), str(exc)) from None
        return {"type": kind, "stream": stream, "toxicity": toxicity, "attributes": attributes}

    @staticmethod
    def _check_target(target: Mapping[str, JSON]) -> None:
        for key in target:
            if key not in TARGET_KEYS:
                raise ParamError(("target", key), f"unknown target key {key!r}; a toxiproxy "
                                 "target is {proxy: NAME | proxy_regex: RE, api: URL}")
        if "proxy" in target and "proxy_regex" in target:
            raise ParamError(("target",), "a toxiproxy target has proxy: NAME or "
                             "proxy_regex: RE, not both")
        if "proxy_regex" in target:
            try:
                re.compile(str(target["proxy_regex"]))
            except re.error as exc:
                raise ParamError(("target", "proxy_regex"), f"bad regex: {exc}") from None
        proxy = target.get("proxy", target.get("proxy_regex"))
        if not isinstance(proxy, str) or not proxy:
            raise ParamError(("target", "proxy"), "a toxiproxy target needs proxy: NAME "
                             "(or proxy_regex: RE)")
        api = target.get("api", DEFAULT_API)
        if not isinstance(api, str) or not re.match(r"^https?://[^/\s]+", api):
            raise ParamError(("target", "api"),
                             f"api must be an http(s) URL such as {DEFAULT_API}, got {api!r}")

    # --- resolve / inject / revert -----------------------------------------------------------

    def resolve(self, action: str, target: Mapping[str, JSON]) -> list[Instance]:
        """The named proxy, as it is now; TargetNotFound naming the proxies that exist."""
        self.check_action(action)
        self._check_target(target)
        api = _api(target)
        if action.split(".", 1)[1] in HTTP_VERBS:
            self._check_http_toxics(api, action)
        if "proxy_regex" in target:
            return self._resolve_regex(api, str(target["proxy_regex"]))
        name = str(target["proxy"])
        response = self._call("GET", api, f"/proxies/{quote(name, safe='')}")
        if response.status_code == 404:
            listing = self._call("GET", api, "/proxies")
            known = ", ".join(sorted(listing.json())) if listing.status_code == 200 else "?"
            raise TargetNotFound(f"Toxiproxy at {api} has no proxy named {name!r} "
                                 f"(it has: {known or 'none'}); create it or fix target.proxy")
        return [self._instance(api, name, _expect(response, 200, f"read proxy {name!r}", api))]

    def _resolve_regex(self, api: str, pattern: str) -> list[Instance]:
        """Every proxy whose name matches (re.search): latency to all replicas of a service
        that each sit behind their own proxy."""
        listing = _expect(self._call("GET", api, "/proxies"), 200, "list proxies", api)
        return [self._instance(api, name, proxy) for name, proxy in sorted(listing.items())
                if re.search(pattern, name)]

    def _check_http_toxics(self, api: str, action: str) -> None:
        """HTTP toxics exist on `chaosrunner proxy` only: say so before injecting anything."""
        version = _expect(self._call("GET", api, "/version"), 200, "read the version", api)
        if "chaosrunner" not in version:
            raise DriverUnavailable(_needs_our_proxy(api, action, version.get("version")))

    def _instance(self, api: str, name: str, proxy: Mapping[str, JSON]) -> Instance:
        attrs = {"api": api, "listen": proxy.get("listen"), "upstream": proxy.get("upstream"),
                 "enabled": proxy.get("enabled")}
        return Instance(driver=self.name, id=f"{api}/proxies/{name}", name=name, attrs=attrs)

    def inject(self, instance: Instance, action: str, params: Mapping[str, JSON],
               key: str) -> Handle:
        """Add this run's toxic (or disable the proxy); the handle says how to take it back."""
        verb = self.check_action(action)
        api = str(instance.attrs.get("api") or DEFAULT_API)
        handle = Handle(action, instance, key, dict(params))
        if verb == "down":
            self._set_enabled(api, instance.name, False)
            return handle.with_data(api=api, proxy=instance.name)
        toxic = params if _is_normalised(params) else self.validate(
            action, {"proxy": instance.name, "api": api}, params)
        name = toxic_name(key)
        deadline = params.get(DEADLINE_PARAM)
        leased = not isinstance(deadline, int | float)
        expires_at = time.time() + LEASE if leased else float(deadline)  # type: ignore[arg-type]
        attributes = {**toxic["attributes"], "expires_at": expires_at}
        body = {"name": name, "type": toxic["type"], "stream": toxic["stream"],
                "toxicity": toxic["toxicity"], "attributes": attributes}
        path = f"/proxies/{quote(instance.name, safe='')}/toxics"
        response = self._call("POST", api, path, body)
        if response.status_code == 409 and self._is_ours(api, path, name, body):
            pass  # an earlier attempt got through before its answer was lost
        elif response.status_code == 404:
            raise TargetNotFound(f"proxy {instance.name!r} vanished from {api} before "
                                 "the toxic could be added")
        elif response.status_code == 400 and "invalid toxic type" in response.text:
            raise DriverUnavailable(_needs_our_proxy(api, action, None))
        else:
            _expect(response, 200, f"add {toxic['type']} toxic to proxy {instance.name!r}", api)
        done = handle.with_data(api=api, proxy=instance.name, toxic=name)
        if leased:
            _renewer.add(self, done)
        return done

    def renew(self, handle: Handle, expires_at: float) -> bool:
        """Move this run's toxic's expiry to `expires_at`; False when the toxic is gone."""
        api, proxy, name = _placed(handle)
        path = _toxic_path(proxy, name)
        response = self._call("PATCH", api, path, {"attributes": {"expires_at": expires_at}})
        if response.status_code == 404:
            return False
        _expect(response, 200, f"renew toxic {name!r} on proxy {proxy!r}", api)
        return True

    def revert(self, handle: Handle) -> None:
        """Delete this run's toxic / re-enable the proxy; already gone is fine."""
        _renewer.discard(handle.key)
        api, proxy, name = _placed(handle)
        if handle.verb == "down":
            self._set_enabled(api, proxy, True, missing_ok=True)
            return
        response = self._call("DELETE", api, _toxic_path(proxy, name))
        if response.status_code in (204, 200, 404):
            return
        _expect(response, 204, f"delete toxic {name!r} from proxy {proxy!r}", api)

    def health(self) -> None:
        """Every API this driver has used (or the default one) answers /version."""
        for api in sorted(self._apis) or [DEFAULT_API]:
            _expect(self._call("GET", api, "/version"), 200, "read the version", api)

    # --- API calls -----------------------------------------------------------------------------

    def _set_enabled(self, api: str, proxy: str, enabled: bool, missing_ok: bool = False) -> None:
        path = f"/proxies/{quote(proxy, safe='')}"
        response = self._call("PATCH", api, path, {"enabled": enabled})
        if response.status_code == 405:  # Toxiproxy before 2.6 only knew POST
            response = self._call("POST", api, path, {"enabled": enabled})
        if response.status_code == 404 and missing_ok:
            return
        if response.status_code == 404:
            raise TargetNotFound(f"proxy {proxy!r} vanished from {api}")
        verb = "enable" if enabled else "disable"
        _expect(response, 200, f"{verb} proxy {proxy!r}", api)

    def _is_ours(self, api: str, path: str, name: str, body: Mapping[str, Any]) -> bool:
        response = self._call("GET", api, f"{path}/{quote(name, safe='')}")
        if response.status_code != 200:
            return False
        existing = response.json()
        return bool(existing.get("type") == body["type"]
                    and existing.get("stream") == body["stream"])

    def _call(self, method: str, api: str, path: str,
              body: Mapping[str, Any] | None = None) -> httpx.Response:
        """One API call with a timeout, retried on network errors and 5xx answers."""
        import httpx

        self._apis.add(api)
        attempts = max(1, self.context.retries + 1)
        last: Exception | None = None
        for attempt in range(attempts):
            if attempt:
                time.sleep(RETRY_DELAYS[min(attempt - 1, len(RETRY_DELAYS) - 1)])
            try:
                with httpx.Client(base_url=api, timeout=self.context.api_timeout,
                                  transport=self._transport,
                                  headers={"User-Agent": USER_AGENT}) as client:
                    response = client.request(method, path, json=body)
            except httpx.TransportError as exc:
                last = exc
                continue
            if response.status_code >= 500 and attempt + 1 < attempts \
                    and not _is_listen_error(response):
                last = None
                continue
            return response
        raise DriverUnavailable(
            f"cannot reach the Toxiproxy API at {api} ({method} {path}: "
            f"{last or 'server error'}) after {attempts} attempts; start it "
            "(`chaosrunner proxy` or toxiproxy-server) or point target.api at it"
        )


class _Renewer:
    """One daemon thread per process renewing the leases of toxics without a planned end.

    While this process lives, each leased toxic's expiry is pushed LEASE seconds ahead every
    LEASE / 3; when the process dies the renewals stop and the proxy removes the toxic by
    itself within LEASE seconds. `revert` stops a toxic's renewal first.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.leases: dict[str, tuple[ToxiproxyDriver, Handle]] = {}
        self.thread: threading.Thread | None = None
        self.added = threading.Event()  # a new lease: start a fresh period

    def add(self, driver: ToxiproxyDriver, handle: Handle) -> None:
        with self.lock:
            self.leases[handle.key] = (driver, handle)
            self.added.set()
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="toxic-lease",
                                               daemon=True)
                self.thread.start()

    def discard(self, key: str) -> None:
        with self.lock:
            self.leases.pop(key, None)

    def _run(self) -> None:
        due = time.monotonic() + LEASE / 3
        while True:
            # A new lease (perhaps a shorter LEASE) can only bring the next round closer.
            if self.added.wait(max(0.0, due - time.monotonic())):
                self.added.clear()
                due = min(due, time.monotonic() + LEASE / 3)
                continue
            due = time.monotonic() + LEASE / 3
            with self.lock:
                leases = list(self.leases.items())
            for key, (driver, handle) in leases:
                try:
                    alive = driver.renew(handle, time.time() + LEASE)
                except DriverError:
                    continue  # the next round tries again; the lease still has 2/3 left
                if not alive:
                    self.discard(key)


_renewer = _Renewer()


def _needs_our_proxy(api: str, action: str, version: Any) -> str:
    seen = f"Toxiproxy {version}" if version else "a Toxiproxy"
    return (f"{action} is an HTTP toxic, which only `chaosrunner proxy` has; {seen} at {api} "
            "does not know it (it refuses unknown toxic types). Run `chaosrunner proxy` "
            "(the same API: point target.api at it, or stop toxiproxy-server and start it "
            "on the same port), or use a TCP toxic such as toxiproxy.latency")


def _placed(handle: Handle) -> tuple[str, str, str]:
    """(api, proxy, toxic name) of a handle's fault: from its data, or else derived (a
    provisional handle written before the API answered has no data yet)."""
    api = str(handle.data.get("api") or handle.instance.attrs.get("api") or DEFAULT_API)
    proxy = str(handle.data.get("proxy") or handle.instance.name)
    name = str(handle.data.get("toxic") or toxic_name(handle.key))
    return api, proxy, name


def _toxic_path(proxy: str, name: str) -> str:
    return f"/proxies/{quote(proxy, safe='')}/toxics/{quote(name, safe='')}"


def toxic_name(key: str) -> str:
    """The toxic name for an injection key: stable, URL-safe, one name per key.

    The readable part is the key with unsafe characters replaced; the digest of the exact
    key keeps two keys that clean to the same text apart.

    >>> toxic_name("run-1/slow-payments/payments")
    'chaosrunner_run-1_slow-payments_payments_f8ead611'
    """
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("_")[:80]
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"chaosrunner_{safe}_{digest}"


def _api(target: Mapping[str, JSON]) -> str:
    return str(target.get("api") or DEFAULT_API).rstrip("/")


def _is_normalised(params: Mapping[str, JSON]) -> bool:
    return "type" in params and isinstance(params.get("attributes"), dict)


def _is_listen_error(response: httpx.Response) -> bool:
    return "listen" in response.text


def _expect(response: httpx.Response, status: int, what: str, api: str) -> dict[str, Any]:
    """The JSON body of an expected answer, or DriverError with Toxiproxy's own message."""
    if response.status_code == status:
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = {}
        return body if isinstance(body, dict) else {"items": body}
    try:
        message = response.json().get("error") or response.text
    except ValueError:
        message = response.text.strip()
    raise DriverError(f"Toxiproxy at {api} refused to {what}: HTTP {response.status_code} "
                      f"{message}".rstrip())
