"""Feeding a SessionRecorder with a synthetic clip in real time (tests and the crash child)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from bench.synthetic import AUDIO_CLOCK, VIDEO_CLOCK, Clip
from recorder import SessionRecorder
from recorder.events import SessionCreated, now_iso
from recorder.manifest import Signer
from recorder.spool import Spooler
from streamserver.frames import EncodedFrame, is_keyframe
from streamserver.relay import TrackRelay

PHONE = "+447700900555"  # searched for by no test


def session_created(
    incident_ref: str, token_id: str, phone: str = PHONE, by: str = "handler"
) -> SessionCreated:
    """The first event of a session, as the service records it."""
    return {
        "event": "session_created",
        "at": now_iso(),
        "by": by,
        "incident_ref": incident_ref,
        "mode": "video",
        "token_id": token_id,
        "phone": phone,
    }


def looped_frames(
    clip: Clip, t0: float, seconds: float
) -> tuple[list[EncodedFrame], list[EncodedFrame]]:
    vperiod = len(clip.video) * VIDEO_CLOCK // clip.fps
    aperiod = len(clip.audio) * 960
    laps = int(seconds / clip.duration_s) + 1
    video = [
        EncodedFrame(
            "video",
            clip.codec,
            p.data,
            p.pts + lap * vperiod,
            VIDEO_CLOCK,
            is_keyframe(clip.codec, p.data),
            t0 + (p.pts + lap * vperiod) / VIDEO_CLOCK,
        )
        for lap in range(laps)
        for p in clip.video
    ]
    audio = [
        EncodedFrame(
            "audio",
            "opus",
            p.data,
            p.pts + lap * aperiod,
            AUDIO_CLOCK,
            True,
            t0 + (p.pts + lap * aperiod) / AUDIO_CLOCK,
        )
        for lap in range(laps)
        for p in clip.audio
    ]
    return (
        [f for f in video if f.arrival - t0 < seconds],
        [f for f in audio if f.arrival - t0 < seconds],
    )


class PacedTrack(MediaStreamTrack):
    """Returns each frame at its ``arrival`` wall-clock time, then ends."""

    def __init__(self, kind: str, frames: list[EncodedFrame]) -> None:
        super().__init__()
        self.kind = kind
        self._frames = list(frames)
        self.last_sent: EncodedFrame | None = None

    async def recv(self) -> EncodedFrame:  # type: ignore[override]
        if not self._frames:
            raise MediaStreamError
        frame = self._frames.pop(0)
        delay = frame.arrival - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        self.last_sent = frame
        return frame


async def stream(
    rec: SessionRecorder, clip: Clip, seconds: float, paced: bool = True, t0: float | None = None
) -> tuple[PacedTrack, PacedTrack]:
    """One caller connection of ``seconds`` of media; returns when all was relayed.

    ``t0``: the wall-clock time its first frame arrived (unpaced: in the past)."""
    vrelay = TrackRelay("video", queue_size=4000)
    arelay = TrackRelay("audio", queue_size=4000)
    rec.attach(vrelay.subscribe(), arelay.subscribe())
    if t0 is None:
        t0 = time.time() if paced else time.time() - seconds - 1
    video, audio = looped_frames(clip, t0, seconds)
    vt, at = PacedTrack("video", video), PacedTrack("audio", audio)
    vrelay.set_source(vt)
    arelay.set_source(at)
    deadline = time.monotonic() + seconds + 10
    while time.monotonic() < deadline:
        if vrelay.frames_in == len(video) and arelay.frames_in == len(audio):
            break
        await asyncio.sleep(0.02)
    await vrelay.stop()
    await arelay.stop()
    return vt, at


async def record_session(
    folder: Path,
    clip: Clip,
    signer: Signer,
    spool: Spooler | None,
    connections: int = 1,
    paced: bool = False,
    incident_ref: str = "INC-1/24",
    phone: str = PHONE,
    fixes: tuple[tuple[float, float], ...] = ((51.5, -0.1),),
) -> SessionRecorder:
    """A whole session as the service records one: created, consent, media, fixes, ended."""
    rec = SessionRecorder(folder, signer=signer, spool=spool, segment_seconds=1.0)
    rec.append_event(session_created(incident_ref, "tok-1", phone))
    rec.append_event(
        {
            "event": "consent_given",
            "at": now_iso(),
            "consent_version": "v3",
            "user_agent": "UA",
            "browser": None,
            "device": None,
        }
    )
    for _ in range(connections):
        await stream(rec, clip, clip.duration_s, paced=paced)
    for lat, lon in fixes:
        rec.append_fix({"lat": lat, "lon": lon, "accuracy": 5.0})
    rec.append_event({"event": "ended", "at": now_iso(), "by": "handler", "session": {}})
    await rec.close()
    assert rec.errors == []
    return rec


async def record_reconnected(
    folder: Path,
    clip: Clip,
    signer: Signer,
    spool: Spooler | None,
    gap_s: float,
    fixes: tuple[tuple[float, float, float], ...] = (),
    incident_ref: str = "CAD-TL",
    chat: tuple[tuple[float, str], ...] = (),
) -> float:
    """A closed session whose caller connected twice, ``gap_s`` apart (two parts), with
    ``fixes`` as (seconds after the first frame, lat, lon) and the caller's ``chat`` messages
    as (seconds after the first frame, text); returns the first frame's wall-clock time."""
    rec = SessionRecorder(folder, signer=signer, spool=spool, segment_seconds=60.0)
    rec.append_event(session_created(incident_ref, "tok-tl"))
    t0 = time.time() - 2 * clip.duration_s - gap_s - 2
    await stream(rec, clip, clip.duration_s, paced=False, t0=t0)
    await stream(rec, clip, clip.duration_s, paced=False, t0=t0 + clip.duration_s + gap_s)
    for offset, lat, lon in fixes:
        received = datetime.fromtimestamp(t0 + offset, UTC).isoformat()
        rec.append_fix({"lat": lat, "lon": lon, "accuracy": 5.0, "received_at": received})
    for i, (offset, text) in enumerate(chat):
        rec.append_event(
            {
                "event": "chat_message",
                "at": datetime.fromtimestamp(t0 + offset, UTC).isoformat(),
                "message_id": f"m{i}",
                "sender": "caller",
                "by": None,
                "text": text,
                "language": "en",
                "translation": None,
            }
        )
    rec.append_event({"event": "ended", "at": now_iso(), "by": "handler", "session": {}})
    await rec.close()
    assert rec.errors == []
    return t0
