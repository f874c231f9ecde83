"""The signed hop header of a forwarded request."""

from __future__ import annotations

import time

import pytest

from signalling.cluster import hop

SECRET = b"cluster secret"


def test_a_signed_hop_verifies_and_names_the_client() -> None:
    headers = hop.sign(SECRET, "POST", "/api/sessions/abc/end?x=1", "node-a", "203.0.113.9")
    came = hop.verify(SECRET, "post", "/api/sessions/abc/end?x=1", headers)
    assert came == hop.Hop("node-a", "203.0.113.9")


def test_a_request_without_hop_headers_came_from_a_client() -> None:
    assert hop.verify(SECRET, "GET", "/api/sessions", {"Host": "x"}) is None


@pytest.mark.parametrize(
    ("secret", "method", "path", "change"),
    [
        (b"another secret", "GET", "/api/sessions/abc", {}),  # forged
        (SECRET, "GET", "/api/sessions/xyz", {}),  # replayed on another path
        (SECRET, "POST", "/api/sessions/abc", {}),  # or method
        (SECRET, "GET", "/api/sessions/abc", {hop.FOR: "198.51.100.1"}),  # client changed
        (SECRET, "GET", "/api/sessions/abc", {hop.SIGNATURE: ""}),  # unsigned
    ],
)
def test_a_hop_that_does_not_verify_is_refused(
    secret: bytes, method: str, path: str, change: dict[str, str]
) -> None:
    headers = hop.sign(secret, "GET", "/api/sessions/abc", "node-a", "203.0.113.9") | change
    with pytest.raises(hop.HopRefused):
        hop.verify(SECRET, method, path, headers)


def test_a_stale_hop_is_refused() -> None:
    headers = hop.sign(SECRET, "GET", "/api/sessions/abc", "node-a", "203.0.113.9")
    later = time.time() + hop.MAX_SKEW_S + 1
    with pytest.raises(hop.HopRefused, match="stale"):
        hop.verify(SECRET, "GET", "/api/sessions/abc", headers, now=later)
