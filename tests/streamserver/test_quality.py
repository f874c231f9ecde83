"""The caller's network quality, computed from aiortc's receive statistics and the relay."""

from __future__ import annotations

from datetime import UTC, datetime

from aiortc.stats import (
    RTCInboundRtpStreamStats,
    RTCRemoteInboundRtpStreamStats,
    RTCStatsReport,
    RTCTransportStats,
)

from bench.synthetic import Clip
from streamserver.frames import video_dimensions
from streamserver.quality import (
    NetworkQuality,
    changed_meaningfully,
    counters,
    network_quality,
    reported_round_trip_ms,
)

AT = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def report(video: tuple[int, int], audio: tuple[int, int], octets: int) -> RTCStatsReport:
    """A receive-only connection's stats: (received, lost) per stream and transport bytes."""
    made = RTCStatsReport()
    for kind, (received, lost) in (("video", video), ("audio", audio)):
        made.add(
            RTCInboundRtpStreamStats(
                timestamp=AT,
                type="inbound-rtp",
                id=f"inbound-rtp_{kind}",
                ssrc=1 if kind == "video" else 2,
                kind=kind,
                transportId="transport_1",
                packetsReceived=received,
                packetsLost=lost,
                jitter=0,
            )
        )
    made.add(
        RTCTransportStats(
            timestamp=AT,
            type="transport",
            id="transport_1",
            packetsSent=10,
            packetsReceived=video[0] + audio[0],
            bytesSent=1000,
            bytesReceived=octets,
            iceRole="controlled",
            dtlsState="connected",
        )
    )
    return made


def test_two_samples_give_loss_bitrate_and_frame_rate() -> None:
    before = counters(report((1000, 10), (500, 0), 2_000_000), frames=300, at=100.0)
    after = counters(report((1180, 12), (600, 0), 2_350_000), frames=350, at=102.0)
    quality = network_quality(before, after, 80.0, (1280, 720), AT)
    assert quality == {
        "rtt_ms": 80.0,
        "loss_pct": 0.7,  # 2 lost of 282 expected in the interval, not of all so far
        "bitrate_kbps": 1400.0,  # 350 000 bytes in 2 s
        "fps": 25.0,
        "width": 1280,
        "height": 720,
        "measured_at": "2026-12-07T10:00:00+00:00",
    }
    first = network_quality(None, before, None, None, AT)  # no interval yet: no rates
    assert first["loss_pct"] is first["bitrate_kbps"] is first["fps"] is first["width"] is None
    # Nothing arrived: no loss to speak of (not 0 %), nothing received.
    idle = network_quality(
        after, counters(report((1180, 12), (600, 0), 2_350_000), 350, 104), None, None, AT
    )
    assert (idle["loss_pct"], idle["bitrate_kbps"], idle["fps"]) == (None, 0.0, 0.0)


def test_the_round_trip_reported_by_rtcp_is_used_when_there_is_one() -> None:
    stats = report((1, 0), (1, 0), 10)
    assert reported_round_trip_ms(stats) is None  # receive-only: aiortc has none
    stats.add(
        RTCRemoteInboundRtpStreamStats(
            timestamp=AT,
            type="remote-inbound-rtp",
            id="remote-inbound-rtp_1",
            ssrc=1,
            kind="video",
            transportId="transport_1",
            packetsReceived=1,
            packetsLost=0,
            jitter=0,
            roundTripTime=0.0834,
            fractionLost=0.0,
        )
    )
    assert reported_round_trip_ms(stats) == 83.4


def test_only_a_meaningful_change_is_shown_again() -> None:
    base: NetworkQuality = network_quality(
        counters(report((0, 0), (0, 0), 0), 0, 0.0),
        counters(report((200, 0), (100, 0), 350_000), 50, 2.0),
        80.0,
        (1280, 720),
        AT,
    )
    assert changed_meaningfully(None, base)
    assert not changed_meaningfully(base, base | {"rtt_ms": 90.0, "bitrate_kbps": 1450.0})
    assert changed_meaningfully(base, base | {"rtt_ms": 250.0})
    assert changed_meaningfully(base, base | {"loss_pct": 3.0})
    assert changed_meaningfully(base, base | {"bitrate_kbps": 600.0})
    assert changed_meaningfully(base, base | {"fps": 12.0})
    assert changed_meaningfully(base, base | {"width": 640, "height": 360})
    assert changed_meaningfully(base, base | {"rtt_ms": None})


def test_resolution_from_either_codecs_keyframe(clips: dict[str, Clip]) -> None:
    for codec, clip in clips.items():
        key = next(p for p in clip.video if p.keyframe)
        assert video_dimensions(codec, key.data) == (clip.width, clip.height)
