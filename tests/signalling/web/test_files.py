"""Photos, videos and stills over the API: a resumable upload kept byte for byte with its
thumbnail and EXIF, refusals that keep nothing, a snapshot of the live picture, the stills
fallback, and every file served audited."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from pathlib import Path
from typing import Any

from PIL import Image
from pytest_aiohttp import AiohttpClient

from bench.synthetic import Clip, SyntheticCaller
from recorder.verify import verify_bundle
from signalling.web.appkeys import AUDIT, EVIDENCE, SETTINGS
from tests.client import Client
from tests.signalling.web.test_caller_state import events
from tests.signalling.web.test_evidence_record import HEADERS, create, offer, serve, wait_for

CHUNK = 16 * 1024


def photo() -> bytes:
    """A JPEG with EXIF: when and where it was taken."""
    exif = Image.Exif()
    exif[0x010F] = "Apple"
    exif.get_ifd(0x8769)[0x9003] = "2026:12:07 13:00:00"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (51.0, 30.0, 0.0)
    gps[3], gps[4] = "W", (0.0, 7.0, 30.0)
    out = io.BytesIO()
    Image.effect_noise((400, 300), 80).convert("RGB").save(out, "JPEG", exif=exif)
    return out.getvalue()


async def told_stills(caller: SyntheticCaller) -> dict[str, Any]:
    """What the page heard on its data channel, once it was told to send stills."""
    for _ in range(100):
        seen = [json.loads(m) for m in caller.received]
        stills = [m for m in seen if m.get("type") == "stills"]
        if stills:
            return {"seen": seen, "stills": stills[0]}
        await asyncio.sleep(0.1)
    raise AssertionError(f"never told to send stills: {caller.received}")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def start(client: Client, token: str, data: bytes, **body: Any) -> dict[str, Any]:
    answer = await client.post(
        "/api/caller/uploads",
        json={"filename": "IMG_0001.JPG", "size": len(data)} | body,
        headers=bearer(token),
    )
    assert answer.status == 201, await answer.text()
    started: dict[str, Any] = await answer.json()
    return started


async def piece(client: Client, token: str, upload_id: str, data: bytes, first: int) -> Any:
    chunk = data[first : first + CHUNK]
    return await client.put(
        f"/api/caller/uploads/{upload_id}",
        data=chunk,
        headers=bearer(token)
        | {"Content-Range": f"bytes {first}-{first + len(chunk) - 1}/{len(data)}"},
    )


async def send(client: Client, token: str, data: bytes, **body: Any) -> dict[str, Any]:
    upload_id = (await start(client, token, data, **body))["upload_id"]
    first = 0
    while True:
        answer = await piece(client, token, upload_id, data, first)
        status: dict[str, Any] = await answer.json()
        if answer.status == 201:
            return status
        assert answer.status == 200, status
        first = status["received"]


async def test_an_upload_resumes_and_is_kept_byte_for_byte(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    client = await serve(aiohttp_client, tmp_path, upload_chunk_max_kb=CHUNK // 1024)
    session_id, token = await create(client)  # opened, never connected: no WebRTC needed
    data = photo()
    assert len(data) > 3 * CHUNK
    upload_id = (await start(client, token, data, origin="camera"))["upload_id"]
    assert (await piece(client, token, upload_id, data, 0)).status == 200
    # The answer was lost on a weak signal: the page asks, and goes on from there.
    again = await piece(client, token, upload_id, data, 0)
    assert again.status == 409 and (await again.json())["received"] == CHUNK
    status = await (
        await client.get(f"/api/caller/uploads/{upload_id}", headers=bearer(token))
    ).json()
    assert status["received"] == CHUNK and status["size"] == len(data)
    first = CHUNK
    while first < len(data):
        answer = await piece(client, token, upload_id, data, first)
        first += CHUNK
    assert answer.status == 201
    file = (await answer.json())["file"]
    # The last answer never reached the phone: asking, or sending the piece again, gives it.
    status_url = f"/api/caller/uploads/{upload_id}"
    asked = await client.get(status_url, headers=bearer(token))
    assert asked.status == 201 and (await asked.json())["file"] == file
    resent = await piece(client, token, upload_id, data, first - CHUNK)
    assert resent.status == 201 and (await resent.json())["received"] == len(data)
    assert file["sha256"] == hashlib.sha256(data).hexdigest() and file["size"] == len(data)
    assert file["kind"] == "photo" and file["origin"] == "camera" and file["thumbnail"]

    listing = await (await client.get(f"/api/sessions/{session_id}/files")).json()
    assert listing["files"] == [file]
    served = await client.get(f"/api/sessions/{session_id}/files/{file['name']}")
    assert served.status == 200 and await served.read() == data
    thumb = await client.get(f"/api/sessions/{session_id}/files/{file['thumbnail']}")
    with Image.open(io.BytesIO(await thumb.read())) as image:
        assert image.format == "JPEG" and max(image.size) <= 480
    assert (await client.get(f"/api/sessions/{session_id}/files/chain.jsonl")).status == 404

    [event] = [e for e in await events(client, session_id) if e["event"] == "caller_file"]
    assert event["name"] == file["name"] and event["content_type"] == "image/jpeg"
    assert event["exif"] == {
        "date_time_original": "2026:12:07 13:00:00",
        "make": "Apple",
        "gps_lat": 51.5,
        "gps_lon": -0.125,
    }
    assert client.app is not None
    trail = client.app[AUDIT].path.read_text()
    assert '"consultation.file"' in trail and file["name"] in trail

    assert (await client.post(f"/api/sessions/{session_id}/end", headers=HEADERS)).status == 200
    folder = client.app[SETTINGS].evidence_dir / session_id
    assert (folder / file["name"]).read_bytes() == data
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [o["name"] for o in manifest["originals"]] == [file["name"]]
    assert manifest["derivatives"][0]["of_sha256"] == file["sha256"]
    verify_bundle(folder)
    # From the evidence store, as an investigator (or this handler, who took part) replays it.
    evidence = client.app[EVIDENCE]
    assert await asyncio.to_thread(evidence.spool.wait_idle, 30)
    await asyncio.to_thread(evidence.catalogue.refresh)
    stored = await (await client.get(f"/api/recordings/{session_id}/files")).json()
    assert stored["files"] == [file]
    kept = await client.get(f"/api/recordings/{session_id}/files/{file['name']}")
    assert kept.status == 200 and await kept.read() == data
    assert kept.headers["ETag"] == f'"{file["sha256"]}"'
    thumb = await client.get(f"/api/recordings/{session_id}/files/{file['thumbnail']}")
    assert thumb.status == 200 and thumb.content_type == "image/jpeg"
    missing = await client.get(f"/api/recordings/{session_id}/files/manifest.json")
    assert missing.status == 404
    # Once ended, nothing more is taken.
    late = await client.post("/api/caller/uploads", json={"size": 10}, headers=bearer(token))
    assert late.status == 410


async def test_an_iphone_heic_photo_gets_a_thumbnail(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    client = await serve(aiohttp_client, tmp_path)
    _, token = await create(client)
    out = io.BytesIO()
    Image.effect_noise((320, 240), 60).convert("RGB").save(out, "HEIF")
    data = out.getvalue()
    kept = (await send(client, token, data, filename="IMG_0001.HEIC"))["file"]
    assert kept["content_type"] == "image/heic" and kept["thumbnail"]


async def test_refused_uploads_keep_nothing(aiohttp_client: AiohttpClient, tmp_path: Path) -> None:
    client = await serve(aiohttp_client, tmp_path, upload_max_mb=1)
    session_id, token = await create(client)
    exe = b"MZ\x90\x00" + bytes(40_000)
    upload_id = (await start(client, token, exe, filename="holiday.jpg"))["upload_id"]
    refused = await piece(client, token, upload_id, exe, 0)
    body = await refused.json()
    assert refused.status == 415 and "not a photo or video" in body["error"]
    too_big = await client.post(
        "/api/caller/uploads", json={"size": 2 * 1024 * 1024}, headers=bearer(token)
    )
    assert too_big.status == 413 and "at most 1 MB" in (await too_big.json())["error"]
    no_range = await client.put(
        f"/api/caller/uploads/{upload_id}", data=b"x", headers=bearer(token)
    )
    assert no_range.status in (400, 404)
    data = photo()
    half = (await start(client, token, data))["upload_id"]
    assert (await piece(client, token, half, data, 0)).status == 200  # then the phone gives up
    short = await client.put(
        f"/api/caller/uploads/{half}",
        data=data[CHUNK : CHUNK + 100],
        headers=bearer(token) | {"Content-Range": f"bytes {CHUNK}-{CHUNK + 199}/{len(data)}"},
    )
    assert short.status == 400 and "Content-Range" in (await short.json())["error"]
    status = await client.get(f"/api/caller/uploads/{half}", headers=bearer(token))
    assert (await status.json())["received"] == CHUNK  # the cut piece changed nothing
    assert (await client.get("/api/caller/uploads/nope", headers=bearer(token))).status == 404
    assert (await client.get(f"/api/sessions/{session_id}/files")).status == 200
    assert client.app is not None
    folder = client.app[SETTINGS].evidence_dir / session_id
    assert [e for e in await events(client, session_id) if e["event"] == "caller_file"] == []
    assert not list(folder.glob("original-*"))
    staged = client.app[SETTINGS].layout.upload_staging
    assert len(list(staged.iterdir())) == 1  # the half upload, until it expires or the end
    assert (await client.post(f"/api/sessions/{session_id}/end", headers=HEADERS)).status == 200
    assert list(staged.iterdir()) == []
    forged = await client.post("/api/caller/uploads", json={"size": 10}, headers=bearer("x" * 22))
    assert forged.status == 410


async def test_a_snapshot_and_the_stills_fallback(
    aiohttp_client: AiohttpClient, tmp_path: Path, clips: dict[str, Clip]
) -> None:
    # Any real video is "too thin" here: the page is told to send stills at the first sample.
    client = await serve(
        aiohttp_client, tmp_path, stills_bitrate_floor_kbps=1e9, stills_floor_s=0.1
    )
    session_id, token = await create(client)
    none_yet = await client.post(f"/api/sessions/{session_id}/snapshot", headers=HEADERS)
    assert none_yet.status == 409 and "no live video" in (await none_yet.json())["error"]
    caller = SyntheticCaller(clips["H264"])
    try:
        await offer(client, token, caller)
        await wait_for(client, session_id, lambda s: s["state"] == "live")
        await asyncio.sleep(0.5)
        taken = await client.post(f"/api/sessions/{session_id}/snapshot", headers=HEADERS)
        assert taken.status == 201, await taken.text()
        snap = await taken.json()
        assert snap["kind"] == "snapshot" and snap["by"] == "alice"
        asked = await client.post(f"/api/sessions/{session_id}/photo-request", headers=HEADERS)
        assert asked.status == 202
        told = await told_stills(caller)
        assert {"type": "photo_request"} in told["seen"]
        assert told["stills"]["on"] is True and "kbit/s" in told["stills"]["reason"]
        stills = await client.post(
            "/api/caller/stills", json={"on": True, "reason": "no WebRTC"}, headers=bearer(token)
        )
        assert stills.status == 200 and (await stills.json())["interval_s"] == 5.0
        still = await send(client, token, photo(), origin="low_bandwidth")
        assert still["file"]["kind"] == "still"
    finally:
        await caller.close()
    got = await client.get(f"/api/sessions/{session_id}/files/{snap['name']}")
    with Image.open(io.BytesIO(await got.read())) as image:
        assert image.format == "JPEG" and image.size[0] >= 320
    recorded = await events(client, session_id)
    [event] = [e for e in recorded if e["event"] == "snapshot"]
    assert event["name"] == snap["name"] and event["part"].startswith("media-")
    assert len(event["frame_sha256"]) == 64 and isinstance(event["frame_pts"], int)
    assert [e["on"] for e in recorded if e["event"] == "stills_fallback"] == [True]
    listing = await (await client.get(f"/api/sessions/{session_id}/files")).json()
    assert [f["kind"] for f in listing["files"]] == ["snapshot", "still"]
    assert listing["stills"]["on"] is True and listing["stills"]["reason"] == "no WebRTC"
    assert (await client.post(f"/api/sessions/{session_id}/end", headers=HEADERS)).status == 200
    assert client.app is not None
    verify_bundle(client.app[SETTINGS].evidence_dir / session_id)
