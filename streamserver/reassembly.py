"""Frame reassembly that releases a frame as soon as its last packet is in.

aiortc's JitterBuffer only knows a frame is complete when the first packet of the NEXT frame
arrives (a frame interval later, ~33 ms at 30 fps), and holds audio back four packets
(``prefetch=4``, ~80 ms) to smooth playout. A forwarding server plays nothing out: that wait
is pure added latency. This subclass keeps aiortc's buffer (sequence tracking, misorder and
overflow handling, the PLI flag) and only changes when a frame counts as complete: when the
packet with the RTP marker bit (the last of a video frame, RFC 6184/7741) is in with all
before it, or at once for audio (an Opus packet is a whole frame). aiortc asks for lost video
packets again (NACK) but not for audio, so an audio gap is given up once a few newer packets
are in (a packet merely reordered still makes it) instead of holding everything until the
buffer overflows (16 packets, ~320 ms). A video gap gets VIDEO_GAP_WAIT_S for its NACKed
packet to come back; after that the frames behind it go on (the one with the hole as far as it
arrived) and the caller is asked for a keyframe. aiortc would hold every later frame until its
512-packet buffer overflowed and then throw them away: seconds of video, received in full, lost
from the recording for one packet. When the stream ends, whatever is still held is flushed.
A frame no newer than the last one released (a stale duplicate that made aiortc reset the
buffer) is dropped, never sent or recorded twice. Every frame let out says whether it came
after loss (``ReceivedFrame.after_loss``), so that the recording can say which frames are not
whole as the phone sent them. It relies on aiortc 1.16.0 internals, covered by
tests/streamserver/test_reassembly.py.
"""

from __future__ import annotations

import time

from aiortc.jitterbuffer import MAX_MISORDER, JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add, uint16_gt

RTP_TIMESTAMP_MASK = 0xFFFFFFFF
AUDIO_REORDER_PACKETS = 3  # an audio gap is given up once this many newer packets are in
STALE_WINDOW = 1 << 24  # RTP ticks behind the last frame that count as stale (~3 min of video)
VIDEO_GAP_WAIT_S = 0.3  # how long a lost video packet may hold back the frames after it
GIVEN_UP = float("-inf")  # in place of the time a missing packet was first missed


class ReceivedFrame(JitterFrame):
    """A reassembled frame, and whether it came after loss.

    After loss: its first packet is not the one after the last run of packets taken out (a
    gap before it: lost on the way and not resent in time; before any run was taken out, a
    packet missing just before it), a packet is missing between two of its own, packets were
    thrown away since the frame before (the buffer overflowed or restarted, a stale frame, a
    gap before or inside a run of padding), or (video) its last packet is not the one with the
    marker bit. The frame holds what arrived: it, or a frame just before it, may be short or
    missing. Evidence must say so (the recorder writes a ``media_loss`` event). Packets lost
    before the first one that arrived cannot be known here, nor frames a sender overwrote by
    starting its sequence numbers afresh behind packets still held (so far only in tests).
    """

    def __init__(
        self, data: bytes, timestamp: int, after_loss: bool = False, arrival: float | None = None
    ) -> None:
        super().__init__(data, timestamp)
        self.after_loss = after_loss
        self.arrival = arrival  # when its last packet came (Unix seconds), where known


FramePart = tuple[bytes, int, bool]  # data, timestamp, after loss


class FrameBatch(JitterFrame):
    """Several frames completed by one packet (a late or retransmitted packet filled a gap).

    aiortc's receiver takes one frame per packet and maps its ``timestamp`` to the track's
    clock; a batch carries the OLDEST frame's timestamp there, so the mapper sees time move
    forward as usual, and ``parts()`` places the others relative to it.
    """

    def __init__(self, frames: list[ReceivedFrame], arrival: float | None = None) -> None:
        super().__init__(data=b"", timestamp=frames[0].timestamp)
        self._frames = frames
        self.arrival = arrival  # when the packet that completed them came, where known

    def parts(self) -> list[FramePart]:
        """(data, timestamp, after loss) per frame, timestamps on the scale of
        ``self.timestamp`` once mapped."""
        first = self._frames[0].timestamp
        return [
            (f.data, self.timestamp + ((f.timestamp - first) & RTP_TIMESTAMP_MASK), f.after_loss)
            for f in self._frames
        ]


def arrival_of(frame: JitterFrame) -> float | None:
    """When a reassembled item's last packet came (Unix seconds), where it says."""
    return frame.arrival if isinstance(frame, ReceivedFrame | FrameBatch) else None


def frame_parts(frame: JitterFrame) -> list[FramePart]:
    """(data, timestamp, after loss) of each frame a reassembled item holds."""
    if isinstance(frame, FrameBatch):
        return frame.parts()
    return [(frame.data, frame.timestamp, isinstance(frame, ReceivedFrame) and frame.after_loss)]


def is_stale(timestamp: int, last: int | None) -> bool:
    """At or shortly behind ``last`` in RTP time (serial arithmetic, so wrap-around is fine);
    a jump back further than STALE_WINDOW is a sender starting afresh, not a stale frame."""
    return last is not None and ((last - timestamp) & RTP_TIMESTAMP_MASK) < STALE_WINDOW


class CompletingJitterBuffer(JitterBuffer):
    """aiortc's JitterBuffer, releasing every complete frame as soon as it is complete."""

    def __init__(self, capacity: int, prefetch: int = 0, is_video: bool = False) -> None:
        super().__init__(capacity, prefetch, is_video)
        self._released: int | None = None  # RTP timestamp of the newest frame let out
        self._head: int | None = None  # newest sequence number stored
        self._missing: dict[int, float] = {}  # video: missing sequence number -> since when
        self._gave_up = False  # a gap was given up on during this add()
        self._asked_at = float("-inf")  # when giving up on a gap last asked for a keyframe
        self._dropped = False  # packets thrown away (restart, overflow) since a frame let out
        self._expected: int | None = None  # the sequence number after the last run taken out

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        """aiortc's add(), except that a late packet of a frame already let out is ignored
        (aiortc takes one far behind for a sender starting afresh and resets the buffer), and
        giving up on a video gap asks for a keyframe."""
        seq = packet.sequence_number
        if self._origin is not None and is_stale(packet.timestamp, self._released):
            behind = uint16_add(self._origin, -seq)
            if behind < uint16_add(seq, -self._origin):
                return False, None
        if self._is_video:
            self._track_gaps(seq)
        origin = self._origin
        if origin is not None:
            if self._resets_at(seq):
                self._dropped |= self._held() > 0  # aiortc's add() throws away what is held
            elif uint16_add(origin, -seq) < uint16_add(seq, -origin):
                self._dropped = True  # behind the buffer and not stale: aiortc throws it away
        pli_flag, frame = super().add(packet)
        if self._gave_up:
            self._gave_up = False
            pli_flag = True
        return pli_flag, frame

    def _track_gaps(self, seq: int) -> None:
        """Note when each missing video packet was first known missing, each on its own clock."""
        head = self._head
        if head is None or self._resets_at(seq):
            self._head = seq
            self._missing.clear()
            return
        if uint16_gt(seq, head):
            skipped = uint16_add(seq, -head) - 1
            if skipped:
                now = time.monotonic()
                for i in range(1, min(skipped, self._capacity) + 1):
                    self._missing[uint16_add(head, i)] = now
            self._head = seq
        elif self._missing:
            self._missing.pop(seq, None)  # a resent or reordered packet filled its gap

    def smart_remove(self, count: int) -> bool:
        """aiortc's overflow: whole frames thrown away to make room (a loss to note)."""
        held = self._held()
        emptied = super().smart_remove(count)
        if self._held() < held:
            self._dropped = True
        return emptied

    def _held(self) -> int:
        return sum(p is not None for p in self._packets)

    def _resets_at(self, seq: int) -> bool:
        """aiortc's add() starts the buffer afresh at ``seq`` (a packet far behind the origin)."""
        if self._origin is None:
            return True
        delta = uint16_add(seq, -self._origin)
        misorder = uint16_add(self._origin, -seq)
        return misorder < delta and misorder >= MAX_MISORDER

    def _give_up_on(self, seq: int) -> bool:
        """True once missing video packet ``seq`` has had VIDEO_GAP_WAIT_S to come back."""
        since = self._missing.get(seq)
        if since is None:  # known missing before the buffer moved past an older head
            since = self._missing[seq] = time.monotonic()
        if since == GIVEN_UP:
            return True
        now = time.monotonic()
        if now - since < VIDEO_GAP_WAIT_S:
            return False
        self._missing[seq] = GIVEN_UP
        if now - self._asked_at >= VIDEO_GAP_WAIT_S:  # gaps given up on together: one request
            self._asked_at = now
            self._gave_up = True
        return True

    def _forget_missing_behind(self, origin: int) -> None:
        for seq in [s for s in self._missing if uint16_add(s, -origin) >= self._capacity]:
            del self._missing[seq]

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        """Called by ``add()`` after storing a packet: take out all complete frames in order.

        A frame is complete at its marker packet (video), at once (audio), or, as in aiortc,
        when a packet of a later timestamp follows it (a sender that omits the marker).
        Frames with no payload (padding after a frame was released) are dropped; audio
        skips a gap once AUDIO_REORDER_PACKETS packets after it are in.
        """
        assert self._origin is not None  # add() sets it before calling us
        newest = uint16_add(sequence_number, -self._origin)  # the packet add() just stored
        ahead = newest  # video: the newest packet in the buffer
        if self._is_video and self._head is not None:
            ahead = uint16_add(self._head, -self._origin)
        frames: list[ReceivedFrame] = []
        run: list[RtpPacket] = []
        taken = 0  # packets from the origin that belong to released frames (or skipped gaps)
        for count in range(self._capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None:
                if not self._is_video:
                    if newest - count < AUDIO_REORDER_PACKETS:
                        break
                    continue
                if count >= ahead or not self._give_up_on(uint16_add(self._origin, count)):
                    break
                continue
            if run and packet.timestamp != run[0].timestamp:
                self._release(run, frames)
                run, taken = [], count
            run.append(packet)
            if packet.marker or not self._is_video:
                self._release(run, frames)
                run, taken = [], count + 1
        if taken:
            self.remove(taken)
            if self._missing:
                self._forget_missing_behind(self._origin)
        if not frames:
            return None
        return frames[0] if len(frames) == 1 else FrameBatch(frames)

    def flush(self) -> list[tuple[int, JitterFrame]]:
        """Everything still held, gaps given up on, as (payload type, frame) in order.

        For the end of the stream, when no later packet will come to release them: each frame
        as far as it arrived, the last one too. The buffer is empty afterwards.
        """
        if self._origin is None:
            return []
        flushed: list[tuple[int, JitterFrame]] = []
        run: list[RtpPacket] = []
        for count in range(self._capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None:
                continue
            if run and packet.timestamp != run[0].timestamp:
                self._flush_run(run, flushed)
                run = []
            run.append(packet)
        if run:
            self._flush_run(run, flushed)
        self.remove(self._capacity)
        self._missing.clear()
        return flushed

    def _flush_run(self, run: list[RtpPacket], flushed: list[tuple[int, JitterFrame]]) -> None:
        frames: list[ReceivedFrame] = []
        self._release(run, frames)
        flushed.extend((run[0].payload_type, frame) for frame in frames)

    def _release(self, run: list[RtpPacket], frames: list[ReceivedFrame]) -> None:
        """Take ``run`` (the present packets of one frame, in order) out: let it out as a
        frame unless it is empty (padding) or stale, either way noting any loss."""
        data = b"".join(p._data for p in run)  # type: ignore[attr-defined]  # depayloaded
        timestamp = run[0].timestamp
        first = run[0].sequence_number
        gap_inside = uint16_add(run[-1].sequence_number, -first) + 1 != len(run)
        if self._expected is not None:
            contiguous = first == self._expected
        else:  # before any run was taken out: a missing packet just before it
            assert self._origin is not None
            contiguous = (
                first == self._origin
                or self._packets[uint16_add(first, -1) % self._capacity] is not None
            )
        self._expected = uint16_add(run[-1].sequence_number, 1)
        if not data or is_stale(timestamp, self._released):
            if data or not contiguous or gap_inside:
                self._dropped = True  # a frame thrown away, or one may be lost around padding
            return
        unfinished = self._is_video and not run[-1].marker
        after_loss = self._dropped or gap_inside or not contiguous or unfinished
        frames.append(ReceivedFrame(data, timestamp, after_loss))
        self._released = timestamp
        self._dropped = False
