"""Type stub for the C extension streamserver.native._native (streamserver/native/_native.c)."""

from collections.abc import Callable
from typing import Any

MAX_DATAGRAM: int

Assembled = tuple[
    int, tuple[bool, list[AssembledFrame] | None, list[int] | None], int, bytes | None
]
"""What SrtpReceiver.receive answers for a routed stream's packet that needs doing something
with: SSRC, the Assembler's answer to add(), extension profile, extension block."""

RtpFields = tuple[int, int, int, int, int, tuple[int, ...], int, bytes | None, bytes, int]
"""marker, payload type, sequence number, timestamp, SSRC, CSRCs, extension profile,
extension block (None without the X bit), payload, padding size."""

class SrtpReceiver:
    packets: int
    octets: int
    auth_failed: int
    replayed: int
    malformed: int
    def __init__(self, profile: int, key: bytes) -> None: ...
    def unprotect_rtcp(self, data: bytes, /) -> bytes | None: ...
    def receive(self, data: bytes, /) -> RtpFields | Assembled | None: ...
    def route(self, ssrc: int, payload_type: int, assembler: Assembler | None, /) -> bool: ...

class Demux:
    def __init__(
        self,
        receiver: SrtpReceiver,
        answered: Callable[[RtpFields | Assembled | BaseException], None],
        fallback: Callable[[bytes | str, tuple[Any, ...]], None],
    ) -> None: ...
    def __call__(self, data: bytes | str, addr: tuple[Any, ...], /) -> None: ...
    def take_counts(self) -> tuple[int, int]: ...

class SrtpSender:
    packets: int
    octets: int
    wire_octets: int
    send_errors: int
    def __init__(self, profile: int, key: bytes) -> None: ...
    def set_destination(self, fd: int, host: str, port: int, /) -> None: ...
    def send_frame(
        self,
        payloads: list[bytes],
        payload_type: int,
        seq: int,
        timestamp: int,
        ssrc: int,
        extension_profile: int,
        extension: bytes,
        direct: bool,
        /,
    ) -> tuple[int, list[bytes]]: ...
    def retransmit(self, seq: int, rtx: tuple[int, int, int] | None = None, /) -> bytes | None: ...

AssembledFrame = tuple[int, bytes, int, bool]
"""payload type (of the frame's first packet), data, RTP timestamp, after loss (packets of it
or just before it never came: see streamserver.reassembly.ReceivedFrame)."""

class Assembler:
    """NACK bookkeeping, depayloading, reassembly and receiver statistics for one stream."""

    # Receiver statistics, as aiortc's StreamStatistics (read-only).
    @property
    def packets_received(self) -> int: ...
    @property
    def base_seq(self) -> int | None: ...
    @property
    def max_seq(self) -> int | None: ...
    @property
    def cycles(self) -> int: ...
    @property
    def jitter(self) -> int: ...
    @property
    def packets_expected(self) -> int: ...
    @property
    def packets_lost(self) -> int: ...
    @property
    def fraction_lost(self) -> int:
        """Reading it starts the next interval, as aiortc's property does."""
    def __init__(self, video: bool, depayloader: int, clockrate: int = 0, /) -> None: ...
    def add(
        self,
        seq: int,
        timestamp: int,
        marker: bool,
        payload_type: int,
        payload: bytes,
        now: float,
        stats: bool = True,
        /,
    ) -> tuple[bool, list[AssembledFrame] | None, list[int] | None]: ...
    def flush(self) -> list[AssembledFrame]: ...
    def take_octets(self) -> int: ...
    hold: bool
    """SrtpReceiver.receive keeps answers that are frames only for take_held."""
    def take_held(self) -> list[tuple[Assembled, int, int]]:
        """(answer, arrival ms since the NTP epoch, octets) held since the last call."""

def depayload_h264(payload: bytes, /) -> bytes: ...
def depayload_vp8(payload: bytes, /) -> bytes: ...
