"""A 1 GiB download through an HTTP toxic that does not match it, byte-exact (once, on the
default loop: the other test modules run the data path on every loop)."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from httphelp import stream_digest


def add(api: httpx.Client, kind: str, **attributes: object) -> None:
    response = api.post("/proxies/web/toxics", json={"type": kind, "attributes": attributes})
    assert response.status_code == 200, response.text


@pytest.mark.slow
def test_large_download_through_a_non_matching_toxic_is_byte_exact(api: httpx.Client,
                                                                  base: str) -> None:
    size = 1024 * 1024 * 1024  # 1 GiB: ~12 s here, every byte framed by the response stage
    add(api, "http_error", status=500, path="^/never")
    digest = hashlib.sha256()
    received = 0
    with httpx.Client(base_url=base, timeout=120) as client, \
            client.stream("GET", f"/bytes?n={size}") as answer:
        assert answer.status_code == 200
        for part in answer.iter_raw(1024 * 1024):
            digest.update(part)
            received += len(part)
        # and the connection is still good for the next request
    assert received == size
    assert digest.hexdigest() == stream_digest(size)
