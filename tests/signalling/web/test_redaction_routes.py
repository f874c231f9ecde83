"""Redaction and clip routes against a real server: who may use them, precise refusals that
change nothing, the jobs' progress and files, a package that carries them, and the audit."""

from __future__ import annotations

import asyncio
import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpClient

from bench.synthetic import clip_of_frames
from recorder.export import verify_package
from recorder.manifest import KEY_FILE, Signer
from signalling.config import load_settings
from signalling.web.app import RUNNER_OPTIONS, make_app
from signalling.web.appkeys import AUDIT, DERIVATIVES, EVIDENCE
from tests.client import Client, client_of
from tests.recorder.facecam import FPS, HEIGHT, SECONDS, WIDTH, face_at, face_frame
from tests.recorder.feed import record_session

HEADERS = {"X-Requested-With": "scenelink"}
ROLES = {
    "ivan": "investigator",
    "iris": "investigator",
    "sam": "supervisor",
    "adam": "admin",
    "handler": "call_handler",
}
OPERATORS = [{"username": u, "password": f"{u}-pass", "roles": [r]} for u, r in ROLES.items()]
BASE = "/api/recordings/face-1"
BOX = {"t": 1.0, "x": 0.3, "y": 0.1, "w": 0.3, "h": 0.4}


@pytest.fixture
async def app_client(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> tuple[web.Application, Client]:
    """A server whose store holds a recorded session with a face in it."""
    signer = Signer.load_or_create(tmp_path / KEY_FILE)
    clip = clip_of_frames("H264", face_frame, WIDTH, HEIGHT, FPS, SECONDS)
    await record_session(tmp_path / "evidence" / "face-1", clip, signer, None)
    app = make_app(load_settings(data_dir=tmp_path, operators=OPERATORS))
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    assert await asyncio.to_thread(app[EVIDENCE].spool.wait_idle, 30)
    return app, await client_of(aiohttp_client, server)


async def sign_in(client: Client, user: str) -> None:
    client.session.cookie_jar.clear()
    response = await client.post(
        "/api/login", json={"username": user, "password": f"{user}-pass"}, headers=HEADERS
    )
    assert response.status == 200


async def post(client: Client, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = await client.post(path, json=body, headers=HEADERS)
    return response.status, await response.json()


async def finished(client: Client, job: dict[str, Any]) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while job["state"] in ("queued", "running"):
            await asyncio.sleep(0.1)
            job = await (await client.get(f"/api/derivatives/{job['derivative_id']}")).json()
    return job


def actions(app: web.Application) -> list[tuple[str, str]]:
    return [(r["actor"], r["action"]) for r in app[AUDIT].read()]


async def test_only_investigators_and_supervisors_redact(
    app_client: tuple[web.Application, Client],
) -> None:
    app, client = app_client
    plan = {"tracks": [{"keyframes": [BOX]}], "reason": "disclosure to CPS"}
    for user in ("handler", "adam"):
        await sign_in(client, user)
        for path, body in (("faces", {}), ("redactions", plan), ("clips", {"reason": "x"})):
            status, _ = await post(client, f"{BASE}/{path}", body)
            assert status == 403, (user, path)
    await sign_in(client, "sam")
    status, job = await post(client, f"{BASE}/redactions", plan)
    assert status == 202 and job["requested_by"] == "sam"
    await sign_in(client, "ivan")  # a job is its maker's
    assert (await client.get(f"/api/derivatives/{job['derivative_id']}")).status == 403
    assert (await client.get("/api/derivatives/nope")).status == 404


# Each refused with 400 naming the field (reason checked last, the plan first).
BAD_PLANS: list[tuple[dict[str, Any], str]] = [
    ({"tracks": [{"keyframes": [BOX]}]}, "reason"),
    ({"tracks": [{"keyframes": [BOX]}], "reason": "   "}, "reason"),
    ({"reason": "r"}, "tracks"),
    ({"tracks": [{"keyframes": []}], "reason": "r"}, "tracks.0.keyframes"),
    ({"tracks": [{"keyframes": [BOX | {"x": 0.9}]}], "reason": "r"}, "tracks.0.keyframes.0"),
    ({"tracks": [{"keyframes": [BOX | {"h": -1}]}], "reason": "r"}, "tracks.0.keyframes.0"),
    (
        {"tracks": [{"keyframes": [BOX | {"t": 2.5}]}], "end_s": 2, "reason": "r"},
        "tracks.0.keyframes.0.t",
    ),
    ({"mutes": [{"start_s": 2, "end_s": 1}], "reason": "r"}, "mutes.0"),
    ({"mutes": [{"start_s": 0, "end_s": 1}], "start_s": 60, "reason": "r"}, "start_s"),
]


async def test_bad_requests_are_refused_precisely_and_change_nothing(
    app_client: tuple[web.Application, Client],
) -> None:
    app, client = app_client
    await sign_in(client, "ivan")
    for body, field in BAD_PLANS:
        status, answer = await post(client, f"{BASE}/redactions", body)
        assert status == 400 and field in answer["fields"], (body, answer)
    status, answer = await post(client, f"{BASE}/clips", {"start_s": 1})
    assert status == 400 and "reason" in answer["fields"]
    status, _ = await post(client, f"{BASE}/redactions", {"tracks": "all", "reason": "r"})
    assert status == 422
    status, _ = await post(client, "/api/recordings/nope/faces", {})
    assert status == 404
    status, answer = await post(client, f"{BASE}/faces", {"start_s": 2, "end_s": 1})
    assert status == 400 and "start_s" in answer["fields"]
    assert app[DERIVATIVES]._jobs == {}
    assert not [a for a in actions(app) if a[1].startswith("disclosure.")]


async def test_faces_redaction_clip_and_the_package_that_carries_them(
    app_client: tuple[web.Application, Client], tmp_path: Path
) -> None:
    app, client = app_client
    await sign_in(client, "ivan")
    status, found = await post(client, f"{BASE}/faces", {"start_s": 0, "end_s": 3})
    assert status == 200 and len(found["tracks"]) == 1
    [track] = found["tracks"]
    first = track["keyframes"][0]
    x0, y0, _, _ = face_at(first["t"])
    assert first["x"] * WIDTH <= x0 and first["y"] * HEIGHT <= y0

    plan = {
        "start_s": 0,
        "end_s": 3,
        "tracks": [track],
        "mutes": [{"start_s": 1, "end_s": 2}],
        "reason": "witness identity, disclosure to CPS",
    }
    status, job = await post(client, f"{BASE}/redactions", plan)
    assert status == 202 and job["kind"] == "redaction"
    job = await finished(client, job)
    assert job["state"] == "done" and job["progress"] == 1.0, job
    [output] = job["files"]
    url = f"/api/derivatives/{job['derivative_id']}/files/{output['name']}"
    copy = await client.get(url)
    assert copy.status == 200 and copy.content_type == "video/mp4"
    assert hashlib.sha256(await copy.read()).hexdigest() == output["sha256"]
    ranged = await client.get(url, headers={"Range": "bytes=100-199"})
    assert ranged.status == 206 and len(await ranged.read()) == 100
    log = await (await client.get(job["log_url"])).json()
    assert log["reason"] == plan["reason"] and log["made_by"] == "ivan"
    assert log["hidden"]["audio_muted"] == [{"start_s": 1.0, "end_s": 2.0}]

    status, clip = await post(client, f"{BASE}/clips", {"start_s": 1.2, "reason": "court"})
    assert status == 202
    clip = await finished(client, clip)
    assert clip["state"] == "done" and len(clip["files"]) == 2

    export = {
        "session_ids": ["face-1"],
        "recipient": "CPS",
        "purpose": "disclosure",
        "derivative_ids": [job["derivative_id"], clip["derivative_id"]],
    }
    started = await client.post("/api/exports", json=export, headers=HEADERS)
    assert started.status == 202, await started.text()
    package = await started.json()
    async with asyncio.timeout(30):
        while package["state"] == "running":
            await asyncio.sleep(0.1)
            package = await (await client.get(f"/api/exports/{package['export_id']}")).json()
    data = await (await client.get(package["download_url"])).read()
    zipfile.ZipFile(io.BytesIO(data)).extractall(tmp_path / "package")
    [report] = verify_package(tmp_path / "package")
    assert len([n for n in report.notes if "match its log" in n]) == 2

    await sign_in(client, "iris")  # another investigator's derivatives are not hers to export
    status, answer = await post(client, "/api/exports", export)
    assert status == 403

    done = [a for u, a in actions(app) if u == "ivan"]
    for action in (
        "consultation.faces",
        "disclosure.redaction",
        "disclosure.clip",
        "disclosure.derivative_downloaded",
        "disclosure.export",
    ):
        assert action in done, action
    assert done.count("disclosure.derivative_downloaded") == 2  # the copy and the log
    exported = [r for r in app[AUDIT].read() if r["action"] == "disclosure.export"]
    assert exported[0]["detail"]["derivative_ids"] == export["derivative_ids"]


async def test_a_queued_job_is_cancelled_and_leaves_nothing(
    app_client: tuple[web.Application, Client],
) -> None:
    app, client = app_client
    await sign_in(client, "ivan")
    plan = {"tracks": [{"keyframes": [BOX]}], "reason": "r"}
    _, running = await post(client, f"{BASE}/redactions", plan)
    _, queued = await post(client, f"{BASE}/redactions", plan)  # one worker: this one waits
    assert queued["state"] == "queued"
    cancelled = await client.post(
        f"/api/derivatives/{queued['derivative_id']}/cancel", headers=HEADERS
    )
    assert (await cancelled.json())["state"] == "cancelled"
    assert (await finished(client, running))["state"] == "done"
    assert (await finished(client, queued))["state"] == "cancelled"
    assert not app[DERIVATIVES].get(queued["derivative_id"]).folder.exists()
    again = await client.post(f"/api/derivatives/{queued['derivative_id']}/cancel", headers=HEADERS)
    assert again.status == 409
    assert ("ivan", "disclosure.redaction_cancelled") in actions(app)


async def test_the_routes_are_in_the_openapi_document(
    app_client: tuple[web.Application, Client],
) -> None:
    _, client = app_client
    document = await (await client.get("/api/openapi.json")).json()
    paths = document["paths"]
    redaction = paths["/api/recordings/{session_id}/redactions"]["post"]
    assert redaction["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/RedactionRequest"
    )
    assert "DerivativeJson" in document["components"]["schemas"]
    for path in (
        "/api/recordings/{session_id}/faces",
        "/api/derivatives/{derivative_id}/files/{name}",
    ):
        assert path in paths
