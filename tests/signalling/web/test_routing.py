"""Two nodes (two apps, one redis-server): every request for a session is served by the node
that owns it, whichever node it reaches."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpClient

from signalling.cluster import hop
from signalling.config import load_settings
from signalling.web.app import RUNNER_OPTIONS, make_app
from signalling.web.appkeys import CLUSTER, NODE, STATE
from signalling.web.routing import cluster_secret
from tests.client import Client, client_of
from tests.harness import free_port

HEADERS = {"X-Requested-With": "scenelink"}
OPERATORS = [
    {"username": "alice", "password": "pw-alice", "roles": ["call_handler"]},
    {"username": "sam", "password": "pw-sam", "roles": ["supervisor"]},
]
LEASE_S = 0.6


@dataclass
class Node:
    app: web.Application
    client: Client
    data_dir: Path

    def recorded(self, session_id: str) -> bool:
        """This node opened an evidence bundle for the session."""
        return (self.data_dir / "evidence" / session_id).exists()


async def start(aiohttp_client: AiohttpClient, tmp_path: Path, name: str, redis: str) -> Node:
    port = free_port()
    app = make_app(
        load_settings(
            data_dir=tmp_path / name,
            operators=OPERATORS,
            force_name="Test Force",
            redis_url=redis,
            token_secret="one secret for the whole cluster",
            node_id=name,
            internal_url=f"http://127.0.0.1:{port}",
            cluster_lease_s=LEASE_S,
        )
    )
    server = TestServer(app, port=port)
    await server.start_server(**RUNNER_OPTIONS)
    return Node(app, await client_of(aiohttp_client, server), tmp_path / name)


@pytest.fixture
async def nodes(
    aiohttp_client: AiohttpClient, tmp_path: Path, cluster_redis: str
) -> tuple[Node, Node]:
    a = await start(aiohttp_client, tmp_path, "a", cluster_redis)
    b = await start(aiohttp_client, tmp_path, "b", cluster_redis)
    for node in (a, b):
        signed_in = await node.client.post(
            "/api/login", json={"username": "alice", "password": "pw-alice"}, headers=HEADERS
        )
        assert signed_in.status == 200
    return a, b


async def created_through(node: Node) -> Any:
    body = {"phone": "07700 900123", "incident_ref": "CAD-15"}
    response = await node.client.post("/api/sessions", json=body, headers=HEADERS)
    assert response.status == 201, await response.text()
    return await response.json()


async def test_a_session_lives_on_its_owner_whichever_node_is_asked(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    await a.app[CLUSTER].claim("busy-elsewhere")  # b is now the least loaded...
    await a.app[CLUSTER].heartbeat()
    await b.app[CLUSTER].claim("busy-here")
    await b.app[CLUSTER].claim("busier-here")  # ...no: a is
    await b.app[CLUSTER].heartbeat()
    session = await created_through(b)  # placed on a, the creating request forwarded there
    assert await b.app[CLUSTER].owner(session["id"]) == "a"
    assert a.recorded(session["id"]) and not b.recorded(session["id"])
    shown = await b.client.get(f"/api/sessions/{session['id']}")
    assert shown.status == 200 and (await shown.json())["id"] == session["id"]
    ended = await b.client.post(f"/api/sessions/{session['id']}/end", headers=HEADERS)
    assert ended.status == 200, await ended.text()
    assert (await a.app[STATE].get(session["id"])).state == "ended"
    assert not b.recorded(session["id"])  # b never opened a bundle of its own
    events = (a.data_dir / "evidence" / session["id"] / "events.jsonl").read_text()
    assert [json.loads(line)["event"] for line in events.splitlines()][-1] == "ended"
    assert await a.app[CLUSTER].owner(session["id"]) is None  # released when it ended


async def test_a_forged_hop_is_refused(nodes: tuple[Node, Node]) -> None:
    _, b = nodes
    forged = hop.sign(b"not the cluster's secret", "GET", "/api/sessions", "a", "203.0.113.9")
    response = await b.client.get("/api/sessions", headers=forged)
    assert response.status == 403
    assert (await response.json())["error"] == "forwarded request not authenticated"


async def test_a_forwarded_request_is_never_forwarded_again(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    session = await created_through(a)
    owner = await a.app[CLUSTER].owner(session["id"])
    other = b if owner == "a" else a
    path = f"/api/sessions/{session['id']}"
    signed = hop.sign(cluster_secret(other.app), "GET", path, "x", "203.0.113.9")
    response = await other.client.get(path, headers=signed)
    assert response.status == 503  # not passed on: no loop, and no second owner
    assert not other.recorded(session["id"])


async def test_a_dead_nodes_live_session_is_taken_over(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    await b.app[CLUSTER].claim("busy-here")
    await b.app[CLUSTER].heartbeat()
    session = await created_through(b)
    assert await a.app[CLUSTER].owner(session["id"]) == "a"
    await a.app[STATE].update(session["id"], state="live")
    await a.app[NODE].close()  # a stops beating, as if it died
    await b.app[CLUSTER].release("busy-here")
    await asyncio.sleep(LEASE_S * 2)  # b's own heartbeat takes it over
    assert await b.app[CLUSTER].owner(session["id"]) == "b"
    assert (await b.app[STATE].get(session["id"])).state == "reconnecting"
    events = (b.data_dir / "evidence" / session["id"] / "events.jsonl").read_text()
    recorded = [json.loads(line) for line in events.splitlines()]
    moved = recorded[0]  # b continues a's bundle: no second session_created
    assert (moved["event"], moved["from_node"], moved["reason"]) == (
        "recording_moved",
        "a",
        "failover",
    )
    assert "reconnecting" in [e["event"] for e in recorded]


async def test_an_audit_search_reads_every_nodes_trail(nodes: tuple[Node, Node]) -> None:
    a, b = nodes  # alice signed in on each: a sign_in record in each node's own trail
    signed_in = await b.client.post(
        "/api/login", json={"username": "sam", "password": "pw-sam"}, headers=HEADERS
    )
    assert signed_in.status == 200
    found = await (await b.client.get("/api/audit?action=sign_in&actor=alice")).json()
    assert sorted(r["node"] for r in found["records"]) == ["a", "b"]
    assert found["chain_intact"] is True
    assert [(n["node"], n["answered"], n["chain_intact"]) for n in found["nodes"]] == [
        ("b", True, True),
        ("a", True, True),
    ]
    searches = await (await b.client.get("/api/audit?action=consultation.audit_search")).json()
    assert [r["node"] for r in searches["records"]] == ["b"]  # recorded once, where asked
