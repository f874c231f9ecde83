"""TURN REST credentials: the username carries the expiry and the peer, the password is the
HMAC coturn computes from its static-auth-secret, and the harness's own coturn takes a fresh
credential and refuses an expired or forged one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aioice.stun
import aioice.turn
import pytest

from signalling.calls.turn import ice_servers_for, mint
from signalling.config import IceServer, load_settings
from tests.harness import TurnServer, turn_server

# Computed apart from Python's hmac, by
#   printf '%s' '1796643914:5f2b7c1d9e3a4b60' \
#     | openssl dgst -sha1 -hmac 'north-yorkshire-turn-secret' -binary | base64
SECRET = "north-yorkshire-turn-secret"
VECTOR = ("1796643914:5f2b7c1d9e3a4b60", "IVS7Wv8iDWDqRe/+EzJjSvOxinc=")


def test_a_credential_is_the_expiry_and_peer_signed_with_the_shared_secret() -> None:
    minted = mint(SECRET, "5f2b7c1d9e3a4b60", ttl_s=3600, now=1796643914 - 3600 + 0.7)
    assert (minted.username, minted.credential) == VECTOR
    assert minted.expires_at == 1796643914


def test_the_expiry_is_now_plus_the_ttl_and_the_peer_cannot_add_a_separator() -> None:
    before = int(time.time())
    minted = mint(SECRET, "abc:def/ghi", ttl_s=600)
    expiry, peer = minted.username.split(":")
    assert before + 600 <= int(expiry) <= int(time.time()) + 600
    assert peer == "abc_def_ghi"


def test_peers_get_turn_after_the_static_servers_with_their_own_fresh_credentials(
    tmp_path: Path,
) -> None:
    stun = {"urls": ["stun:stun.example:3478"]}
    urls = ["turn:turn.example:3478?transport=udp", "turns:turn.example:443?transport=tcp"]
    settings = load_settings(
        data_dir=tmp_path,
        ice_servers=[stun],
        turn_urls=urls,
        turn_secret=SECRET,
        turn_ttl_s=900,
    )
    now = 1_800_000_000.0
    static, turn = ice_servers_for(settings, "s1", now=now)
    assert static == IceServer(urls=stun["urls"])
    assert turn.urls == urls
    assert turn.username == f"{int(now) + 900}:s1"
    assert turn.credential == mint(SECRET, "s1", 900, now).credential
    viewer = ice_servers_for(settings, "s1.viewer", now=now)[1]
    assert viewer.username == f"{int(now) + 900}:s1.viewer"
    # Unset, a credential lives as long as a session can.
    longest = load_settings(data_dir=tmp_path, turn_urls=urls, turn_secret=SECRET)
    assert ice_servers_for(longest, "s1", now=now)[0].username == (
        f"{int(now) + longest.session_max_s}:s1"
    )
    # No TURN configured: the static list alone.
    assert ice_servers_for(load_settings(data_dir=tmp_path), "s1") == []


def test_turn_servers_without_a_secret_refuse_to_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="turn_secret"):
        load_settings(data_dir=tmp_path, turn_urls=["turn:turn.example:3478"])


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[TurnServer]:
    with turn_server(tmp_path) as server:
        yield server


async def allocate(coturn: TurnServer, username: str, password: str) -> tuple[str, int]:
    transport, _ = await aioice.turn.create_turn_endpoint(
        asyncio.DatagramProtocol,
        server_addr=("127.0.0.1", coturn.port),
        username=username,
        password=password,
        transport="udp",
    )
    try:
        relayed: tuple[str, int] = transport.get_extra_info("sockname")
        return relayed
    finally:
        transport.close()


async def test_coturn_relays_for_a_minted_credential_and_refuses_expired_or_forged_ones(
    coturn: TurnServer,
) -> None:
    fresh = mint(coturn.secret, "s1", ttl_s=60)
    address, _ = await allocate(coturn, fresh.username, fresh.credential)
    assert address == "127.0.0.1"

    expired = mint(coturn.secret, "s1", ttl_s=60, now=time.time() - 120)
    with pytest.raises(aioice.stun.TransactionFailed):
        await allocate(coturn, expired.username, expired.credential)
    forged = mint("not-the-secret", "s1", ttl_s=60)
    with pytest.raises(aioice.stun.TransactionFailed):
        await allocate(coturn, forged.username, forged.credential)
