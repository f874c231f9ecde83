"""The one hop a forwarded request may take: signed by the worker that forwards it.

A forwarded request carries who sent it, when, and an HMAC over its method, path and those
two (key: the cluster secret). The receiving worker serves it itself (never forwards it
again: no loops) and takes the caller's address from it, so audit records and the sign-in
throttle see the person, not the worker. A hop header that does not verify is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

FROM = "X-SceneLink-Hop"  # the forwarding worker's id
AT = "X-SceneLink-Hop-At"  # epoch seconds
FOR = "X-SceneLink-Hop-For"  # the client's address as the first worker saw it
SIGNATURE = "X-SceneLink-Hop-Signature"
HEADERS = (FROM, AT, FOR, SIGNATURE)
MAX_SKEW_S = 30.0  # clocks within a cluster agree closer than this (NTP)


class HopRefused(Exception):
    """A hop header that is unsigned, forged, stale or replayed from another request."""


@dataclass(frozen=True, slots=True)
class Hop:
    sender: str
    remote: str


def _mac(secret: bytes, method: str, path_qs: str, sender: str, at: str, remote: str) -> str:
    message = "\n".join((method.upper(), path_qs, sender, at, remote)).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign(secret: bytes, method: str, path_qs: str, sender: str, remote: str) -> dict[str, str]:
    """The headers to add to a request forwarded by ``sender``."""
    at = f"{time.time():.3f}"
    return {
        FROM: sender,
        AT: at,
        FOR: remote,
        SIGNATURE: _mac(secret, method, path_qs, sender, at, remote),
    }


def verify(
    secret: bytes, method: str, path_qs: str, headers: dict[str, str], now: float | None = None
) -> Hop | None:
    """The hop a request took (None: it came straight from a client); ``HopRefused`` if
    its hop headers do not verify."""
    if not any(name in headers for name in HEADERS):
        return None
    sender, at, remote = headers.get(FROM, ""), headers.get(AT, ""), headers.get(FOR, "")
    expected = _mac(secret, method, path_qs, sender, at, remote)
    if not hmac.compare_digest(expected, headers.get(SIGNATURE, "")):
        raise HopRefused("bad signature")
    try:
        age = abs((time.time() if now is None else now) - float(at))
    except ValueError:
        raise HopRefused("bad time") from None
    if age > MAX_SKEW_S:
        raise HopRefused("stale")
    return Hop(sender, remote)
