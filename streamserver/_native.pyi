"""Type stub for the C extension streamserver._native (streamserver/_native.c)."""

MAX_DATAGRAM: int

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
    def unprotect_rtp(self, data: bytes, /) -> RtpFields | None: ...
    def unprotect_rtcp(self, data: bytes, /) -> bytes | None: ...
