"""The `load.http` fault's parameters, checked and turned into the JSON the child reads.

    with:
      urls:                                  # default: the target url
        - {url: /checkout, weight: 3, method: POST, body: {item: 1}}
        - /healthz                           # a bare url: weight 1, the defaults below
      method: GET                            # defaults for every url
      headers: {X-Load: chaosrunner}
      body: null                             # a string, or a mapping sent as JSON
      rate: 300/s                            # or users: 50 (exactly one)
      per_user: 5/s                          # with rate: each user's pace (users = rate / per_user)
      ramp: 10s                              # to full load (default: at once)
      timeout: 5s                            # per request
      workers: 2                             # Locust master + N local worker processes
      master: 0.0.0.0:5557                   # or: a master there, for workers run elsewhere
      expect_workers: 2                      # with master: wait for this many (default 1)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from urllib.parse import urljoin, urlsplit

from chaosrunner.drivers.base import JSON, ParamError
from chaosrunner.secrets import ENV_REF
from chaosrunner.spec.units import parse_duration, parse_rate

ALLOWED = frozenset({"urls", "method", "headers", "body", "rate", "users", "per_user", "ramp",
                     "timeout", "workers", "master", "expect_workers", "steps",
                     "start_timeout"})
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
DEFAULT_PER_USER = 5.0
MAX_WORKERS = 64
MAX_USERS = 20_000  # greenlets per load; far past what one fault should ever need


def check_target(target: Mapping[str, JSON]) -> str:
    """The base URL of `{url: http://host:port}`."""
    if set(target) != {"url"} or not isinstance(target["url"], str):
        raise ParamError(("target",), "load.http targets are {url: http://HOST:PORT} (the "
                         "service the traffic goes to)")
    return _http_url(target["url"], ("target", "url"))


def _http_url(url: str, key: tuple[str | int, ...]) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ParamError(key, f"{url!r} is not an http(s) URL such as http://127.0.0.1:8080")
    return url


def load_settings(target: Mapping[str, JSON], params: Mapping[str, JSON]) -> dict[str, JSON]:
    """Normalised, JSON-only parameters of a load.http fault; raises ParamError."""
    base = check_target(target)
    unknown = sorted(set(params) - ALLOWED)
    if unknown:
        raise ParamError(("with", unknown[0]), f"unknown parameter for load.http; allowed: "
                         f"{', '.join(sorted(ALLOWED - {'steps'}))}")
    result: dict[str, JSON] = {"urls": _urls(base, params)}
    result.update(_amount(params))
    result["ramp"] = _duration(params, "ramp", 0.0)
    result["timeout"] = _duration(params, "timeout", 5.0)
    result["start_timeout"] = _duration(params, "start_timeout", 60.0)
    result.update(_distribution(params))
    if "steps" in params:
        result["steps"] = _steps(params["steps"])
    _check_users(result)
    return result


def _check_users(settings: Mapping[str, JSON]) -> None:
    rates: list[float | None] = [float(b) for _, b in settings.get("steps") or []] or [None]
    users = max(users_for(settings, rate) for rate in rates) \
        if settings.get("users") is None else int(settings["users"])
    if users > MAX_USERS:
        key = "users" if settings.get("users") is not None else "rate"
        raise ParamError(("with", key), f"{users} concurrent users is more than {MAX_USERS}; "
                         "ask for less, or raise per_user so each user sends more")


def _urls(base: str, params: Mapping[str, JSON]) -> list[dict[str, JSON]]:
    defaults = {"method": params.get("method", "GET"), "headers": params.get("headers", {}),
                "body": params.get("body")}
    raw = params.get("urls", [base])
    if not isinstance(raw, list) or not raw:
        raise ParamError(("with", "urls"), "urls is a list of urls or {url, weight, method, "
                         "headers, body} entries")
    return [_one_url(base, entry, defaults, ("with", "urls", i)) for i, entry in enumerate(raw)]


def _one_url(base: str, entry: JSON, defaults: Mapping[str, JSON],
             key: tuple[str | int, ...]) -> dict[str, JSON]:
    item = {"url": entry} if isinstance(entry, str) else entry
    if not isinstance(item, dict) or not isinstance(item.get("url"), str):
        raise ParamError(key, "each url is a string or a mapping with url:")
    extra = set(item) - {"url", "weight", "method", "headers", "body", "name"}
    if extra:
        raise ParamError((*key, sorted(extra)[0]), "a url entry has url, weight, method, "
                         "headers, body, name")
    url = _http_url(urljoin(base.rstrip("/") + "/", item["url"].lstrip("/"))
                    if not item["url"].startswith(("http://", "https://")) else item["url"],
                    (*key, "url"))
    method = str(item.get("method", defaults["method"])).upper()
    if method not in METHODS:
        raise ParamError((*key, "method"), f"unknown method {method!r}; use one of "
                         f"{', '.join(sorted(METHODS))}")
    weight = item.get("weight", 1)
    if not isinstance(weight, int | float) or isinstance(weight, bool) or weight <= 0:
        raise ParamError((*key, "weight"), f"weight must be a positive number, got {weight!r}")
    headers = item.get("headers", defaults["headers"])
    if not isinstance(headers, dict) or not all(isinstance(v, str | int | float)
                                                 for v in headers.values()):
        raise ParamError((*key, "headers"), "headers is a mapping of names to strings")
    raw_body = item.get("body", defaults["body"])
    headers = {str(k): str(v) for k, v in headers.items()}
    if isinstance(raw_body, dict | list) and not any(k.lower() == "content-type"
                                                     for k in headers):
        headers["Content-Type"] = "application/json"
    return {"url": url, "weight": float(weight), "method": method, "headers": headers,
            "body": _body(raw_body, (*key, "body")),
            "name": str(item.get("name") or f"{method} {urlsplit(url).path or '/'}")}


def _body(value: JSON, key: tuple[str | int, ...]) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value)
    raise ParamError(key, "body is a string, or a mapping/list sent as JSON")


def _amount(params: Mapping[str, JSON]) -> dict[str, JSON]:
    if ("rate" in params) == ("users" in params) and "steps" not in params:
        raise ParamError(("with",), "give exactly one of rate: (requests per second, e.g. "
                         "300/s) or users: (concurrent users)")
    per_user = _rate(params.get("per_user", DEFAULT_PER_USER), ("with", "per_user"))
    if "users" in params:
        users = params["users"]
        if not isinstance(users, int) or isinstance(users, bool) or users < 1:
            raise ParamError(("with", "users"), f"users must be a whole number >= 1, got "
                             f"{users!r}")
        return {"users": users, "per_user": None}
    rate = _rate(params["rate"], ("with", "rate")) if "rate" in params else None
    return {"rate": rate, "per_user": per_user}


def _rate(value: JSON, key: tuple[str | int, ...]) -> float:
    try:
        return parse_rate(value)
    except ValueError as exc:
        raise ParamError(key, str(exc)) from None


def _duration(params: Mapping[str, JSON], name: str, default: float) -> float:
    try:
        return parse_duration(params[name]) if name in params else default
    except ValueError as exc:
        raise ParamError(("with", name), str(exc)) from None


def _distribution(params: Mapping[str, JSON]) -> dict[str, JSON]:
    if "workers" in params and "master" in params:
        raise ParamError(("with", "master"), "give workers: N (local worker processes) or "
                         "master: HOST:PORT (workers run elsewhere), not both")
    if "workers" in params:
        workers = params["workers"]
        if not isinstance(workers, int) or isinstance(workers, bool) \
                or not 1 <= workers <= MAX_WORKERS:
            raise ParamError(("with", "workers"), f"workers must be a whole number from 1 to "
                             f"{MAX_WORKERS}, got {workers!r}")
        return {"workers": workers, "master": None, "expect_workers": workers}
    if "master" in params:
        host, port = parse_master(params["master"])
        expect = params.get("expect_workers", 1)
        if not isinstance(expect, int) or isinstance(expect, bool) or expect < 1:
            raise ParamError(("with", "expect_workers"), "expect_workers is a whole number >= 1")
        return {"workers": 0, "master": f"{host}:{port}", "expect_workers": expect}
    if "expect_workers" in params:
        raise ParamError(("with", "expect_workers"), "expect_workers goes with master: HOST:PORT")
    return {"workers": 0, "master": None, "expect_workers": 0}


def parse_master(value: JSON) -> tuple[str, int]:
    """HOST:PORT of a Locust master; raises ParamError."""
    host, _, port = str(value).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ParamError(("with", "master"), f"master is HOST:PORT (where Locust workers "
                         f"connect), got {value!r}")
    return host, int(port)


def _steps(value: JSON) -> list[list[float]]:
    """[[offset_seconds, rate], ...], ascending offsets (written by the search)."""
    if not isinstance(value, list) or not value or not all(
            isinstance(s, list) and len(s) == 2 and all(isinstance(x, int | float) for x in s)
            for s in value):
        raise ParamError(("with", "steps"), "steps is a list of [offset_seconds, rate]")
    return [[float(a), float(b)] for a, b in value]


def env_refs(settings: Mapping[str, JSON]) -> list[str]:
    """Names of the `${env:NAME}` secrets in the urls' headers and bodies."""
    texts = [str(v) for u in settings["urls"] for v in (*u["headers"].values(), u["body"] or "")]
    return sorted({name for text in texts for name in ENV_REF.findall(text)})


def resolve_env(text: str, environ: Mapping[str, str]) -> str:
    """`${env:NAME}` replaced by its value (only in the Locust process: never in a ledger,
    a report or the config file)."""
    return ENV_REF.sub(lambda m: environ.get(m.group(1), ""), text)


def users_for(settings: Mapping[str, JSON], rate: float | None = None) -> int:
    """Concurrent users for a rate: each user keeps `per_user` requests per second."""
    if settings.get("users") is not None and rate is None:
        return int(settings["users"])
    wanted = float(rate if rate is not None else settings["rate"])
    return max(1, math.ceil(wanted / float(settings["per_user"] or DEFAULT_PER_USER) - 1e-9))
