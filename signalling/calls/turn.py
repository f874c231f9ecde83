"""Time-limited TURN credentials by the TURN REST scheme (coturn's ``use-auth-secret``).

The username is ``<expiry unix time>:<peer>`` and the password is
base64(HMAC-SHA1(static-auth-secret, username)): coturn, holding the same secret, checks the
password and refuses the username once its expiry has passed, so a credential handed to one
caller or viewer works for that peer's call and nothing longer. Nothing is stored."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass

from signalling.config import IceServer, Settings

# coturn reads the expiry up to the first separator; the peer part must not add another.
_NOT_IN_PEER = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class TurnCredential:
    username: str
    credential: str
    expires_at: int  # unix time


def mint(secret: str, peer: str, ttl_s: int, now: float | None = None) -> TurnCredential:
    """A credential for ``peer`` (a session id, a viewer) valid for ``ttl_s`` seconds."""
    expires_at = int(now if now is not None else time.time()) + ttl_s
    username = f"{expires_at}:{_NOT_IN_PEER.sub('_', peer)}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredential(username, base64.b64encode(digest).decode("ascii"), expires_at)


def ice_servers_for(settings: Settings, peer: str, now: float | None = None) -> list[IceServer]:
    """The ICE servers one peer is given: the static ``ice_servers``, then the TURN servers
    with a credential minted for this peer (when TURN is configured)."""
    servers = list(settings.ice_servers)
    if settings.turn_urls and settings.turn_secret is not None:
        ttl_s = settings.turn_ttl_s or settings.session_max_s
        minted = mint(settings.turn_secret.get_secret_value(), peer, ttl_s, now)
        servers.append(
            IceServer(
                urls=list(settings.turn_urls),
                username=minted.username,
                credential=minted.credential,
            )
        )
    return servers
