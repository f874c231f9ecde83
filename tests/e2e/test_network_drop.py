"""A caller whose network drops everything for 15 s (issue 11, continuity): Chromium streams,
relay only, through the harness's coturn; freezing coturn (SIGSTOP) cuts every packet between
the phone and the server. The call handler sees "reconnecting" within 3 s of the drop, the same
session is live again within 5 s of the network coming back (SIGCONT), frames flow again, and
the signed bundle holds the gap: media_gap_started and media_gap_ended events and a gap in the
manifest."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from bench.load import Api, viewer_answerer
from recorder.library import video_packets
from recorder.verify import verify_bundle
from streamserver import patches
from tests.e2e.conftest import RunningServer, recording_closed, relay_only
from tests.harness import TurnServer
from tests.viewer import Viewer

pytestmark = pytest.mark.e2e

DROP_S = 15.0

# Runs before the caller page's own script: every peer connection's state changes, timed on the
# page's clock (performance.now() / 1000), to tell where the time to resume goes.
RECORD_CONNECTION = """
(() => {
  const Native = window.RTCPeerConnection;
  window.__pcs = [];
  window.__conns = [];
  function Recorded(config) {
    const pc = new Native(config);
    const entry = { made: performance.now() / 1000, states: [] };
    window.__pcs.push(entry);
    window.__conns.push(pc);
    const note = (what) => () => entry.states.push(
      [performance.now() / 1000, what, what === 'ice' ? pc.iceConnectionState : pc.connectionState]
    );
    pc.addEventListener('connectionstatechange', note('pc'));
    pc.addEventListener('iceconnectionstatechange', note('ice'));
    return pc;
  }
  // How the newest connection reaches the server: the local candidate of its selected pair.
  window.__via = async () => {
    const stats = await window.__conns[window.__conns.length - 1].getStats();
    let via = null;
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const local = stats.get(stats.get(s.selectedCandidatePairId).localCandidateId);
        via = `${local.candidateType} over ${local.relayProtocol || local.protocol}`;
      }
    });
    return via;
  };
  Recorded.prototype = Native.prototype;
  window.RTCPeerConnection = Recorded;
})();
"""


@pytest.fixture
def server(tmp_path: Path, coturn: TurnServer) -> Iterator[RunningServer]:
    yield from relay_only(tmp_path, coturn)


async def until_state(api: Api, session_id: str, state: str, within_s: float) -> dict[str, Any]:
    """The session as GET /api/sessions/{id} shows it once it reads `state` (polled every
    0.1 s)."""
    deadline = time.monotonic() + within_s
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        view = await api.call("GET", f"/api/sessions/{session_id}")
        if view["state"] == state:
            return view
        await asyncio.sleep(0.1)
    raise AssertionError(f"session {session_id} not {state!r} within {within_s} s: {view}")


def events_of(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]


async def test_a_15_s_network_drop_shows_reconnecting_and_resumes_the_same_session(
    browser: Browser, server: RunningServer, coturn: TurnServer, handler: Api
) -> None:
    session_id, token = await handler.create_session("07700 900123", "CAD-2026-1115")
    caller_context = await browser.new_context(
        permissions=["geolocation", "camera", "microphone"],
        geolocation={"latitude": 51.501, "longitude": -0.1262, "accuracy": 8},
    )
    await caller_context.add_init_script(RECORD_CONNECTION)
    caller = await caller_context.new_page()
    await caller.goto(f"{server.url}/c/{token}")
    await caller.click("#agree")
    await expect(caller.locator("#status")).to_have_attribute("data-state", "live", timeout=30_000)
    await until_state(handler, session_id, "live", within_s=10)
    await asyncio.sleep(2.0)  # some video recorded before the drop

    # The network drops: coturn, the only way between the phone and the server, freezes.
    page_dropped = float(await caller.evaluate("performance.now() / 1000"))
    os.kill(coturn.pid, signal.SIGSTOP)
    dropped = time.monotonic()
    try:
        await until_state(handler, session_id, "reconnecting", within_s=10)
        shown = time.monotonic() - dropped
        await asyncio.sleep(max(0.0, dropped + DROP_S - time.monotonic()))
    finally:
        os.kill(coturn.pid, signal.SIGCONT)
    back = time.monotonic()
    page_back = page_dropped + (back - dropped)
    timeline: list[dict[str, Any]] = []
    try:
        view = await until_state(handler, session_id, "live", within_s=30)
        resumed = time.monotonic() - back
        await expect(caller.locator("#status")).to_have_attribute(
            "data-state", "live", timeout=5_000
        )
    finally:
        timeline = await caller.evaluate("window.__pcs")
        via = await caller.evaluate("window.__via()")
        print(
            "peer connections, seconds from the drop: "
            + "; ".join(
                f"made {pc['made'] - page_dropped:+.2f}: "
                + ", ".join(f"{w}={s}@{t - page_dropped:+.2f}" for t, w, s in pc["states"])
                for pc in timeline
            )
            + f" (network back at {page_back - page_dropped:+.2f}; now {via})"
        )
    print(
        f"{DROP_S:.0f} s network drop: 'reconnecting' shown {shown:.2f} s after the drop, "
        f"live again {resumed:.2f} s after the network came back"
    )
    assert view["id"] == session_id
    assert shown < 3.0, f"'reconnecting' shown {shown:.2f} s after the drop"
    assert resumed < 5.0, f"live again {resumed:.2f} s after the network came back"

    # Frames flow again: a viewer joining now receives the caller's video.
    patches.install()
    probe = Viewer()
    try:
        await probe.join(viewer_answerer(handler, session_id))
        async with asyncio.timeout(15):
            while len(probe.frames["video"]) < 30:
                await asyncio.sleep(0.1)
    finally:
        await probe.close()
    await handler.call("POST", f"/api/sessions/{session_id}/end")
    await expect(caller.locator("#status")).to_have_attribute("data-state", "ended", timeout=10_000)
    await caller_context.close()

    # The signed bundle verifies and holds the gap, in its events and in its manifest.
    folder = server.data_dir / "evidence" / session_id
    await recording_closed(folder)
    jwks = await handler.call("GET", "/.well-known/jwks.json")
    verify_bundle(folder, jwks, decode=True)
    events = events_of(folder)
    names = [e["event"] for e in events if e["event"].startswith("media_gap_")]
    assert names == ["media_gap_started", "media_gap_ended"], names
    gap = next(e for e in events if e["event"] == "media_gap_ended")
    assert gap["resumed"] is True, gap
    assert DROP_S - 1.0 < gap["seconds"] < DROP_S + 5.0, gap
    manifest = json.loads((folder / "manifest.json").read_bytes())
    assert [g["seconds"] for g in manifest["gaps"]] == [gap["seconds"]], manifest["gaps"]
    parts = sorted(folder.glob("media-*.mkv"))
    assert len(parts) >= 2, parts
    assert len(video_packets(parts[-1])) >= 30, f"too little video after the gap in {parts[-1]}"
