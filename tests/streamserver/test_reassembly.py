"""Frames leave the ingest buffer as soon as they are complete; aiortc's handling stays."""

from __future__ import annotations

import inspect

import aiortc.jitterbuffer as jitterbuffer
import aiortc.rtcrtpreceiver as rtcrtpreceiver
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtp import RtpPacket

from streamserver import reassembly
from streamserver.reassembly import CompletingJitterBuffer, FrameBatch, ReceivedFrame, frame_parts
from tests.streamserver.conftest import Clock


def rtp(seq: int, timestamp: int, data: bytes, marker: bool = False) -> RtpPacket:
    packet = RtpPacket(sequence_number=seq, timestamp=timestamp, marker=int(marker))
    packet._data = data  # type: ignore[attr-defined]  # the receiver's depayloaded bytes
    return packet


def video_buffer() -> CompletingJitterBuffer:
    return CompletingJitterBuffer(capacity=512, is_video=True)  # as aiortc's receiver does


def parts(frame: JitterFrame | None) -> list[tuple[bytes, int]]:
    return [] if frame is None else [(data, ts) for data, ts, _ in frame_parts(frame)]


def after_loss(frame: JitterFrame | None) -> list[bool]:
    return [] if frame is None else [lost for _, _, lost in frame_parts(frame)]


def test_aiortc_buffer_internals_we_rely_on() -> None:
    add = inspect.getsource(jitterbuffer.JitterBuffer.add)
    assert "self._packets[pos] = packet" in add
    assert "return pli_flag, self._remove_frame(packet.sequence_number)" in add
    assert "if misorder >= MAX_MISORDER:" in add  # a packet far behind resets the buffer
    buffer = jitterbuffer.JitterBuffer(capacity=16, is_video=True)
    for name in ("_origin", "_packets", "_capacity", "_is_video"):
        assert hasattr(buffer, name)
    assert list(inspect.signature(buffer.remove).parameters) == ["count"]
    assert list(inspect.signature(JitterFrame).parameters) == ["data", "timestamp"]
    receive_rtp = inspect.getsource(rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet)
    assert "packet._data = depayload(codec, packet.payload)" in receive_rtp


def test_video_frame_leaves_at_its_marker_packet() -> None:
    buffer = video_buffer()
    assert buffer.add(rtp(10, 0, b"a")) == (False, None)
    assert buffer.add(rtp(11, 0, b"b")) == (False, None)
    _, frame = buffer.add(rtp(12, 0, b"c", marker=True))
    assert parts(frame) == [(b"abc", 0)]
    # aiortc's own buffer would still be waiting for the next frame's first packet.
    stock = jitterbuffer.JitterBuffer(capacity=512, is_video=True)
    assert [stock.add(rtp(s, 0, b"x", marker=s == 12))[1] for s in (10, 11, 12)] == [None] * 3
    _, frame = buffer.add(rtp(13, 3000, b"d", marker=True))
    assert parts(frame) == [(b"d", 3000)]


def test_without_a_marker_the_next_timestamp_completes_the_frame() -> None:
    buffer = video_buffer()
    buffer.add(rtp(0, 0, b"a"))
    _, frame = buffer.add(rtp(1, 3000, b"b"))
    assert parts(frame) == [(b"a", 0)]


def test_audio_packets_are_frames_at_once() -> None:
    buffer = CompletingJitterBuffer(capacity=16, prefetch=4)  # aiortc's audio settings
    for seq in range(5):
        _, frame = buffer.add(rtp(100 + seq, seq * 960, bytes([seq + 1])))
        assert parts(frame) == [(bytes([seq + 1]), seq * 960)]


def test_audio_waits_a_little_for_a_reordered_packet() -> None:
    buffer = CompletingJitterBuffer(capacity=16, prefetch=4)
    buffer.add(rtp(100, 0, b"a"))
    assert buffer.add(rtp(102, 1920, b"c")) == (False, None)  # 101 is late, not lost
    _, frame = buffer.add(rtp(101, 960, b"b"))
    assert parts(frame) == [(b"b", 960), (b"c", 1920)]


def test_audio_does_not_wait_for_a_packet_that_is_never_resent() -> None:
    buffer = CompletingJitterBuffer(capacity=16, prefetch=4)
    buffer.add(rtp(100, 0, b"a"))
    for seq in (102, 103):  # 101 lost: audio is not NACKed
        assert buffer.add(rtp(seq, (seq - 100) * 960, b"x")) == (False, None)
    _, frame = buffer.add(rtp(104, 3840, b"e"))  # three packets on: give the gap up
    assert [t for _, t in parts(frame)] == [1920, 2880, 3840]
    assert after_loss(frame) == [True, False, False]  # the packet after the gap
    assert buffer.add(rtp(101, 960, b"b")) == (False, None)  # too late: time moved on
    _, frame = buffer.add(rtp(105, 4800, b"f"))
    assert parts(frame) == [(b"f", 4800)]


def test_a_stale_duplicate_far_behind_is_ignored_not_sent_again() -> None:
    """An old packet (a repeated retransmission) arriving 100+ packets late: aiortc resets
    its buffer to it and would let the old frame out again, then stall."""
    buffer = video_buffer()
    for seq in range(300):
        _, frame = buffer.add(rtp(seq, seq * 3000, bytes([seq % 256]), marker=True))
        assert parts(frame) == [(bytes([seq % 256]), seq * 3000)]
    assert buffer.add(rtp(150, 150 * 3000, b"old", marker=True)) == (False, None)
    _, frame = buffer.add(rtp(300, 300 * 3000, b"new", marker=True))
    assert parts(frame) == [(b"new", 900000)]  # no stall, no repeat


def test_a_sender_starting_afresh_is_still_followed() -> None:
    buffer = video_buffer()
    buffer.add(rtp(5000, 10_000_000, b"a", marker=True))
    # Sequence far behind and RTP time far behind (beyond the stale window): a new start.
    pli, frame = buffer.add(rtp(1000, 10_000_000 - (1 << 25), b"b", marker=True))
    assert pli is True and parts(frame) == [(b"b", 10_000_000 - (1 << 25))]


def test_a_late_packet_releases_every_frame_it_completes_in_order() -> None:
    buffer = video_buffer()
    buffer.add(rtp(0, 0, b"a0"))
    for seq, ts, data, marker in [(2, 3000, b"b", False), (3, 3000, b"B", True)]:
        assert buffer.add(rtp(seq, ts, data, marker)) == (False, None)
    assert buffer.add(rtp(4, 6000, b"c", marker=True)) == (False, None)
    _, frame = buffer.add(rtp(1, 0, b"a1", marker=True))  # e.g. a NACKed retransmission
    assert isinstance(frame, FrameBatch)
    frame.timestamp = 90  # the receiver maps the oldest frame's RTP time to the track's
    assert parts(frame) == [(b"a0a1", 90), (b"bB", 3090), (b"c", 6090)]
    assert buffer.add(rtp(5, 9000, b"d", marker=True))[1] is not None  # nothing left behind


def test_a_batch_spans_an_rtp_timestamp_wrap() -> None:
    last = 0xFFFFFFFF - 999
    batch = FrameBatch([ReceivedFrame(b"x", last), ReceivedFrame(b"y", 2000, True)])
    assert parts(batch) == [(b"x", last), (b"y", last + 3000)]


def test_padding_after_a_released_frame_is_not_a_frame() -> None:
    buffer = video_buffer()
    buffer.add(rtp(0, 0, b"a", marker=True))
    assert buffer.add(rtp(1, 0, b"")) == (False, None)  # padding-only packet
    _, frame = buffer.add(rtp(2, 3000, b"b", marker=True))
    assert parts(frame) == [(b"b", 3000)]


def test_overflow_still_asks_for_a_keyframe() -> None:
    buffer = video_buffer()
    buffer.add(rtp(0, 0, b"a"))  # its marker packet never comes
    pli, _ = buffer.add(rtp(600, 90000, b"z", marker=True))
    assert pli is True


def test_a_lost_video_packet_holds_later_frames_only_for_the_gap_wait(clock: Clock) -> None:
    buffer = video_buffer()
    assert parts(buffer.add(rtp(0, 0, b"k", marker=True))[1]) == [(b"k", 0)]
    assert buffer.add(rtp(1, 3000, b"p1")) == (False, None)
    # Packet 2 (the middle of frame 3000) is lost; NACK gets it a chance to come back.
    assert buffer.add(rtp(3, 3000, b"p3", marker=True)) == (False, None)
    clock.now += reassembly.VIDEO_GAP_WAIT_S / 2
    assert buffer.add(rtp(4, 6000, b"q", marker=True)) == (False, None)
    clock.now += reassembly.VIDEO_GAP_WAIT_S / 2 + 0.01
    # Given up: everything behind the gap goes on, the holed frame as far as it arrived, and
    # the caller is asked for a keyframe (aiortc would have held all of it until overflow).
    pli, frame = buffer.add(rtp(5, 9000, b"r", marker=True))
    assert pli is True
    assert parts(frame) == [(b"p1p3", 3000), (b"q", 6000), (b"r", 9000)]
    assert after_loss(frame) == [True, False, False]  # the holed frame says so
    # One keyframe request per gap; the lost packet coming back late changes nothing.
    pli, frame = buffer.add(rtp(6, 12000, b"s", marker=True))
    assert pli is False and parts(frame) == [(b"s", 12000)]
    assert buffer.add(rtp(2, 3000, b"p2")) == (False, None)


def test_a_gap_in_an_unfinished_frame_is_waited_for_once(clock: Clock) -> None:
    buffer = video_buffer()
    buffer.add(rtp(0, 0, b"a"))
    buffer.add(rtp(2, 0, b"c"))  # 1 lost; the frame's marker has not come yet
    clock.now += reassembly.VIDEO_GAP_WAIT_S + 0.01
    pli, frame = buffer.add(rtp(3, 0, b"d"))
    assert (pli, frame) == (True, None)  # given up, but the frame is not finished
    pli, frame = buffer.add(rtp(4, 0, b"e", marker=True))
    assert pli is False  # the same gap: no second wait, no second request
    assert parts(frame) == [(b"acde", 0)] and after_loss(frame) == [True]


def test_a_retransmission_within_the_wait_completes_the_frame(clock: Clock) -> None:
    buffer = video_buffer()
    buffer.add(rtp(0, 0, b"k", marker=True))
    buffer.add(rtp(1, 3000, b"p1"))
    buffer.add(rtp(3, 3000, b"p3", marker=True))
    buffer.add(rtp(4, 6000, b"q", marker=True))
    clock.now += reassembly.VIDEO_GAP_WAIT_S / 2
    pli, frame = buffer.add(rtp(2, 3000, b"p2"))  # the NACKed packet, resent in time
    assert pli is False
    assert parts(frame) == [(b"p1p2p3", 3000), (b"q", 6000)]
    assert after_loss(frame) == [False, False]  # recovered: whole, as sent


def test_each_gap_waits_on_its_own_clock(clock: Clock) -> None:
    buffer = video_buffer()
    # Two holes in one frame (1 and 3), then one in the next frame (6), all missed at once.
    for seq, data, marker in ((0, b"a", False), (2, b"c", False), (4, b"e", True)):
        assert buffer.add(rtp(seq, 0, data, marker)) == (False, None)
    assert buffer.add(rtp(5, 3000, b"f")) == (False, None)
    assert buffer.add(rtp(7, 3000, b"h", marker=True)) == (False, None)
    clock.now += reassembly.VIDEO_GAP_WAIT_S + 0.01
    pli, frame = buffer.add(rtp(8, 6000, b"i", marker=True))
    # All three have waited long enough: no hole restarts another's wait; one request.
    assert pli is True
    assert parts(frame) == [(b"ace", 0), (b"fh", 3000), (b"i", 6000)]
    clock.now += 0.01
    # A new hole right after starts its own wait, without a second request within the wait.
    assert buffer.add(rtp(10, 9000, b"k", marker=True)) == (False, None)
    clock.now += reassembly.VIDEO_GAP_WAIT_S + 0.01
    pli, frame = buffer.add(rtp(11, 12000, b"l", marker=True))
    assert pli is True and parts(frame) == [(b"k", 9000), (b"l", 12000)]


def test_flush_gives_what_is_held_in_order_with_payload_types() -> None:
    buffer = video_buffer()
    assert buffer.flush() == []
    buffer.add(rtp(0, 0, b"a"))
    buffer.add(rtp(2, 0, b"c", marker=True))  # 1 missing
    buffer.add(rtp(3, 3000, b"d", marker=True))
    buffer.add(rtp(5, 6000, b"f"))  # 4 missing, and no marker yet
    flushed = buffer.flush()
    assert [(pt, f.data, f.timestamp) for pt, f in flushed] == [
        (0, b"ac", 0),
        (0, b"d", 3000),
        (0, b"f", 6000),
    ]
    # A hole, whole, the packet before missing and no marker (its end never came).
    assert [after_loss(f) for _, f in flushed] == [[True], [False], [True]]
    assert buffer.flush() == []
    assert buffer.add(rtp(1, 0, b"b")) == (False, None)  # already let out: stale


def test_a_frame_whose_first_packet_was_lost_comes_after_loss(clock: Clock) -> None:
    buffer = video_buffer()
    assert after_loss(buffer.add(rtp(0, 0, b"k", marker=True))[1]) == [False]
    buffer.add(rtp(2, 3000, b"b", marker=True))  # 1, its first packet, never comes
    clock.now += reassembly.VIDEO_GAP_WAIT_S + 0.01
    _, frame = buffer.add(rtp(3, 6000, b"c", marker=True))
    assert parts(frame) == [(b"b", 3000), (b"c", 6000)]
    assert after_loss(frame) == [True, False]


def test_a_frame_whose_marker_packet_was_lost_comes_after_loss(clock: Clock) -> None:
    buffer = video_buffer()
    buffer.add(rtp(0, 0, b"a"))  # 1, the marker packet, never comes
    buffer.add(rtp(2, 3000, b"b", marker=True))
    clock.now += reassembly.VIDEO_GAP_WAIT_S + 0.01
    _, frame = buffer.add(rtp(3, 6000, b"c", marker=True))
    # 1 could have been the end of frame 0 or the start of frame 3000: both say so.
    assert parts(frame) == [(b"a", 0), (b"b", 3000), (b"c", 6000)]
    assert after_loss(frame) == [True, True, False]


def test_frames_thrown_away_on_overflow_make_the_next_come_after_loss() -> None:
    buffer = video_buffer()
    buffer.add(rtp(0, 0, b"a"))  # its marker packet never comes: held until overflow
    _, frame = buffer.add(rtp(600, 90000, b"z", marker=True))
    assert parts(frame) == [(b"z", 90000)] and after_loss(frame) == [True]
    _, frame = buffer.add(rtp(601, 93000, b"y", marker=True))
    assert after_loss(frame) == [False]


def test_a_sender_starting_afresh_behind_throws_away_what_was_held() -> None:
    buffer = video_buffer()
    buffer.add(rtp(5000, 0, b"a"))  # held: its marker packet never comes
    _, frame = buffer.add(rtp(1000, 900000, b"n", marker=True))  # far behind: a restart
    assert parts(frame) == [(b"n", 900000)] and after_loss(frame) == [True]


def test_a_gap_the_frame_before_took_out_still_marks_the_next(clock: Clock) -> None:
    """A frame let out on the next one's timestamp takes the given-up gap after it out too:
    the frame behind that gap, completed later, still says it came after loss."""
    buffer = video_buffer()
    buffer.add(rtp(10, 0, b"a1"))  # 11 (its marker) and 12 (the next frame's first) lost
    buffer.add(rtp(13, 3000, b"b2"))
    clock.now += 0.1
    buffer.add(rtp(15, 6000, b"c1"))  # 14 is late
    clock.now += 0.25
    _, frame = buffer.add(rtp(16, 6000, b"c2", marker=True))
    assert parts(frame) == [(b"a1", 0)] and after_loss(frame) == [True]
    _, frame = buffer.add(rtp(14, 3000, b"b3", marker=True))
    assert parts(frame) == [(b"b2b3", 3000), (b"c1c2", 6000)]
    assert after_loss(frame) == [True, False]


def test_an_overflow_that_removes_only_a_gap_still_marks_the_frame_behind_it() -> None:
    buffer = video_buffer()
    buffer.add(rtp(99, 0, b"w", marker=True))
    buffer.add(rtp(101, 3000, b"x2"))  # 100, this frame's first packet, never comes
    buffer.add(rtp(102, 3000, b"x3", marker=True))
    _, frame = buffer.add(rtp(612, 90000, b"z", marker=True))  # overflow: 100 removed
    assert parts(frame) == [(b"x2x3", 3000)] and after_loss(frame) == [True]


def test_whole_frames_lost_with_nothing_held_mark_the_next() -> None:
    audio = CompletingJitterBuffer(capacity=16, prefetch=4)
    audio.add(rtp(100, 0, b"a"))
    _, frame = audio.add(rtp(125, 24000, b"z"))  # 24 packets (480 ms) never came
    assert parts(frame) == [(b"z", 24000)] and after_loss(frame) == [True]
    video = video_buffer()
    video.add(rtp(10, 0, b"a", marker=True))
    _, frame = video.add(rtp(800, 90000, b"z", marker=True))
    assert parts(frame) == [(b"z", 90000)] and after_loss(frame) == [True]


def test_a_frame_lost_before_padding_marks_the_next(clock: Clock) -> None:
    buffer = video_buffer()
    buffer.add(rtp(10, 0, b"a", marker=True))
    assert buffer.add(rtp(12, 3000, b"")) == (False, None)  # 11 (frame 3000) lost; padding
    buffer.add(rtp(13, 6000, b"c1"))
    clock.now += reassembly.VIDEO_GAP_WAIT_S + 0.01
    _, frame = buffer.add(rtp(14, 6000, b"c2", marker=True))
    assert parts(frame) == [(b"c1c2", 6000)] and after_loss(frame) == [True]


def test_a_first_packet_thrown_away_behind_the_first_to_arrive_marks_the_first_frame() -> None:
    buffer = video_buffer()
    buffer.add(rtp(1001, 0, b"k2"))
    assert buffer.add(rtp(1000, 0, b"k1")) == (False, None)  # behind the origin: dropped
    _, frame = buffer.add(rtp(1002, 0, b"k3", marker=True))
    assert parts(frame) == [(b"k2k3", 0)] and after_loss(frame) == [True]


def test_a_sender_starting_afresh_a_little_behind_marks_the_first_frame_it_keeps() -> None:
    buffer = CompletingJitterBuffer(capacity=16, prefetch=4)
    for seq in range(100, 110):
        buffer.add(rtp(seq, (seq - 100) * 960, b"a"))
    for seq in range(50, 110):  # restarted 60 behind: aiortc throws these away
        assert buffer.add(rtp(seq, (seq - 40) * 960, b"n")) == (False, None)
    _, frame = buffer.add(rtp(110, 70 * 960, b"z"))
    assert parts(frame) == [(b"z", 70 * 960)] and after_loss(frame) == [True]
