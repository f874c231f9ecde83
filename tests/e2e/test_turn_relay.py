"""A caller whose network lets through nothing but TURN: Chromium restricted to relay
candidates (``iceTransportPolicy: "relay"``, as the server tells its pages) streams through the
harness's own coturn, the call handler watches through it too, and the recording holds, bit for
bit, the encoded frames the caller's browser sent."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from recorder.library import video_packets
from tests.e2e.conftest import RunningServer, recording_closed, relay_only
from tests.e2e.test_walking_skeleton import console, wait_for_frames
from tests.harness import TurnServer
from tests.viewer import runs_in_order

pytestmark = pytest.mark.e2e

# Runs before the caller page's own script: every peer connection the page makes is kept, its
# configuration noted, and each video frame the encoder hands to the sender is hashed on its
# way out (encoded insertable streams), unchanged.
TAP_SENDER = """
(() => {
  const Native = window.RTCPeerConnection;
  window.tap = { configs: [], pcs: [], candidates: [], sent: [] };
  function hook(sender, kind) {
    const { readable, writable } = sender.createEncodedStreams();
    readable.pipeThrough(new TransformStream({
      transform(frame, out) {
        if (kind === 'video') {
          window.tap.sent.push(crypto.subtle.digest('SHA-256', frame.data.slice(0)));
        }
        out.enqueue(frame);
      }
    })).pipeTo(writable);
  }
  function Tapped(config) {
    window.tap.configs.push(JSON.parse(JSON.stringify(config || {})));
    const pc = new Native(Object.assign({}, config, { encodedInsertableStreams: true }));
    window.tap.pcs.push(pc);
    pc.addEventListener('icecandidate', (e) => {
      if (e.candidate && e.candidate.candidate) window.tap.candidates.push(e.candidate.candidate);
    });
    const addTransceiver = pc.addTransceiver.bind(pc);
    pc.addTransceiver = (track, init) => {
      const transceiver = addTransceiver(track, init);
      if (typeof track !== 'string') hook(transceiver.sender, track.kind);
      return transceiver;
    };
    const addTrack = pc.addTrack.bind(pc);
    pc.addTrack = (track, ...streams) => {
      const sender = addTrack(track, ...streams);
      hook(sender, track.kind);
      return sender;
    };
    return pc;
  }
  Tapped.prototype = Native.prototype;
  window.RTCPeerConnection = Tapped;
})();
"""

SENT_HASHES = """async () => {
  const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');
  return (await Promise.all(window.tap.sent)).map(hex);
}"""

SELECTED_PAIR = """async () => {
  const pc = window.tap.pcs[window.tap.pcs.length - 1];
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) {
      pair = stats.get(s.selectedCandidatePairId);
    }
  });
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId);
  return { local: local.candidateType, address: local.address, bytesSent: pair.bytesSent };
}"""


@pytest.fixture
def server(tmp_path: Path, coturn: TurnServer) -> Iterator[RunningServer]:
    yield from relay_only(tmp_path, coturn)


async def test_a_relay_only_caller_streams_through_turn_and_is_recorded_bit_for_bit(
    browser: Browser, server: RunningServer, coturn: TurnServer
) -> None:
    handler = await console(browser, server, "alice", "alice-pass")
    await handler.fill("#send-form [name=phone]", "07700 900123")
    await handler.fill("#send-form [name=incident_ref]", "CAD-2026-0311")
    await handler.click("#send-form [type=submit]")
    link = handler.locator("a.sms-link").first
    await expect(link).to_be_visible(timeout=10_000)
    caller_url = await link.get_attribute("href")
    session_id = await handler.locator("#sessions li[data-session-id]").first.get_attribute(
        "data-session-id"
    )
    assert caller_url and session_id

    caller_context = await browser.new_context(
        permissions=["geolocation", "camera", "microphone"],
        geolocation={"latitude": 51.501, "longitude": -0.1262, "accuracy": 8},
    )
    await caller_context.add_init_script(TAP_SENDER)
    caller = await caller_context.new_page()
    await caller.goto(caller_url)
    await caller.click("#agree")
    await expect(caller.locator("#status")).to_have_attribute("data-state", "live", timeout=30_000)

    # The page made its connection as the server said: TURN only, with a credential of its own.
    configs: list[dict[str, Any]] = await caller.evaluate("window.tap.configs")
    assert configs[-1]["iceTransportPolicy"] == "relay"
    turn = [s for s in configs[-1]["iceServers"] if s["urls"] == coturn.urls]
    assert turn and re.fullmatch(rf"\d+:{session_id}", turn[0]["username"])
    candidates: list[str] = await caller.evaluate("window.tap.candidates")
    assert candidates and all(" typ relay " in c for c in candidates), candidates

    # The call handler watches (the console's connection is relay-only too).
    await handler.click(f'#sessions li[data-session-id="{session_id}"] .watch')
    await wait_for_frames(handler, 30, within_s=30)
    pair = await caller.evaluate(SELECTED_PAIR)
    assert pair and pair["local"] == "relay" and pair["address"] == "127.0.0.1", pair

    await handler.click("#end-session")
    await handler.click("#end-session")
    await expect(caller.locator("#status")).to_have_attribute("data-state", "ended", timeout=10_000)
    sent = [bytes.fromhex(h) for h in await caller.evaluate(SENT_HASHES)]
    await caller_context.close()

    # What was recorded is, frame for frame and byte for byte, what the browser sent, in order;
    # a frame that came after loss (a packet lost and not resent within the wait, which a busy
    # machine can cause even on loopback) is recorded as it arrived, and the evidence names it.
    folder = server.data_dir / "evidence" / session_id
    await recording_closed(folder)
    parts = sorted(folder.glob("media-*.mkv"))
    assert parts, f"no media recorded in {folder}"
    events = [json.loads(line) for line in (folder / "events.jsonl").open()]
    after_loss = {
        (e["part"], i)
        for e in events
        if e["event"] == "media_loss" and e["kind"] == "video"
        for i in e["frames"]
    }
    recorded = [
        (hashlib.sha256(p).digest(), (part.name, i) in after_loss)
        for part in parts
        for i, p in enumerate(video_packets(part))
    ]
    whole = sum(not lost for _, lost in recorded)
    print(
        f"recorded {len(recorded)} of the {len(sent)} video frames sent through TURN, "
        f"{len(recorded) - whole} after loss ({pair})"
    )
    assert whole >= 30, f"only {whole} whole frames recorded"
    assert runs_in_order(recorded, sent), (
        f"{len(recorded)} recorded frames are not, between frames after loss, runs of the "
        f"{len(sent)} the caller sent"
    )

    # coturn allocated a relay for the caller's credential (and for the console's).
    async with asyncio.timeout(5):
        while "ALLOCATE processed, success" not in coturn.log.read_text():
            await asyncio.sleep(0.1)
    log = coturn.log.read_text()
    assert re.search(
        rf"user <\d+:{session_id}>: incoming packet ALLOCATE processed, success", log
    ), log[-4000:]
    assert re.search(
        rf"user <\d+:{session_id}\.viewer>: incoming packet ALLOCATE processed, success", log
    ), log[-4000:]
