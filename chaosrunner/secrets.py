"""Secret values resolved in this process, and their removal from all it prints or stores.

A secret is a value chaosrunner itself resolved from the environment for a credential:
`${env:NAME}` (Prometheus auth, http probe headers) and Chaos Toolkit `secrets` entries of
`{type: env}`. Each is remembered when resolved; `redact` replaces it (and its JSON-,
HTML- and repr-escaped spellings) with `***` in any text. The run report is redacted
once when it is built, the journal as each event is written, every report file again as
its bytes are written, and the CLI's stdout and stderr as they are printed, so a python
action that echoes its token in an error message leaks it nowhere.

    >>> remember("s3cr3t-token")
    >>> redact("401 for Bearer s3cr3t-token")
    '401 for Bearer ***'
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from typing import Any, TextIO, TypeVar, cast

from chaosrunner.errors import InvalidInput

MASK = "***"
# Shorter values would mask ordinary words; a secret that short is no secret.
MIN_LENGTH = 4
ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")

_secrets: set[str] = set()
_spellings: list[str] = []


def remember(value: Any) -> None:
    """Treat `value` (a string, or the strings inside a mapping or list) as a secret."""
    if isinstance(value, dict):
        for item in value.values():
            remember(item)
    elif isinstance(value, list | tuple):
        for item in value:
            remember(item)
    elif isinstance(value, str) and len(value) >= MIN_LENGTH and value not in _secrets:
        import html  # only a resolved secret needs it: kept off `validate`'s cold start

        _secrets.add(value)
        forms = {value, json.dumps(value)[1:-1], html.escape(value), html.escape(value, False),
                 repr(value)[1:-1]}
        _spellings.extend(forms)
        _spellings.sort(key=len, reverse=True)  # the longest spelling first


def redact(text: str) -> str:
    """`text` with every remembered secret replaced by ***."""
    if not _spellings:
        return text
    for spelling in _spellings:
        if spelling in text:
            text = text.replace(spelling, MASK)
    return text


def redact_bytes(data: bytes) -> bytes:
    if not _spellings:
        return data
    return redact(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


T = TypeVar("T")


def redact_data(value: T) -> T:
    """Strings inside mappings, lists and dataclasses redacted; dataclasses in place."""
    if not _spellings:
        return value
    return cast(T, _redacted(value))


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {_redacted(key): _redacted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_redacted(item) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            current = getattr(value, field.name)
            cleaned = _redacted(current)
            if cleaned is not current:
                object.__setattr__(value, field.name, cleaned)
    return value


def resolve_env_refs(text: str, where: str) -> str:
    """Replace `${env:NAME}` with the environment's value, remembered as a secret.

    InvalidInput names the variable and `where` it is used when it is unset."""
    def lookup(match: re.Match[str]) -> str:
        value = os.environ.get(match.group(1))
        if value is None:
            raise InvalidInput(f"{where} refers to ${{env:{match.group(1)}}}, which is not "
                               f"set; export {match.group(1)} before running")
        remember(value)
        return value

    return ENV_REF.sub(lookup, text)


class RedactingStream:
    """A text stream that redacts what is written to it (the CLI's stdout and stderr)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def redact_standard_streams() -> None:
    """Make sys.stdout and sys.stderr redact what is printed (idempotent)."""
    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = cast(TextIO, RedactingStream(sys.stdout))
    if not isinstance(sys.stderr, RedactingStream):
        sys.stderr = cast(TextIO, RedactingStream(sys.stderr))


def display_url(url: str) -> str:
    """The URL without user:password, for messages and reports.

    >>> display_url("https://admin:hunter22@grafana.example.com/x")
    'https://grafana.example.com/x'
    """
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))
