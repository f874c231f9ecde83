"""aiortc's NTP clock, from integer nanoseconds instead of datetime arithmetic.

aiortc's senders read ``current_ntp_time`` twice for every RTP packet to every viewer, and its
transports read ``current_ms`` for every packet received; both go through a datetime, a
timedelta and float seconds. The same values come from ``time.time_ns()`` at a fraction of
the cost. aiortc 1.16.0 internals, covered by tests/streamserver/test_fastclock.py;
streamserver.patches.install() puts them in aiortc.clock.
"""

from __future__ import annotations

import time

NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)


def current_ms() -> int:
    """Milliseconds since the NTP epoch."""
    return time.time_ns() // 1_000_000 + NTP_UNIX_OFFSET * 1000


def current_ntp_time() -> int:
    """64-bit NTP timestamp: seconds in the high word, the fraction in the low one."""
    seconds, micros = divmod(time.time_ns() // 1000, 1_000_000)
    return ((seconds + NTP_UNIX_OFFSET) << 32) | (micros << 32) // 1_000_000
