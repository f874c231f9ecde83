"""aioice's datagram path and aiortc's DTLS set-up and state, patched for the SRTP fast path.

The fast path itself is streamserver.fastpath. aiortc 1.16.0 and aioice 0.13.0 internals,
covered by tests/streamserver/test_fastpath.py.
"""

from __future__ import annotations

from typing import Any

import aioice.ice as ice
from aiortc.rtcdtlstransport import RTCDtlsTransport, State
from aiortc.stats import RTCStatsReport

from .. import fastpath, nativesrtp

ORIGINAL_DATAGRAM_RECEIVED = ice.StunProtocol.datagram_received
ORIGINAL_DATA_RECEIVED = ice.Connection.data_received
ORIGINAL_SET_STATE = RTCDtlsTransport._set_state
ORIGINAL_SETUP_SRTP = RTCDtlsTransport._setup_srtp
ORIGINAL_GET_STATS = RTCDtlsTransport._get_stats


def datagram_received(self: ice.StunProtocol, data: bytes | str, addr: tuple[Any, ...]) -> None:
    """aioice's, without trying to parse media and DTLS as STUN first."""
    if data and isinstance(data, bytes) and data[0] >= fastpath.STUN_FIRST_BYTES:
        self.receiver.data_received(data, self.local_candidate.component)
        return
    ORIGINAL_DATAGRAM_RECEIVED(self, data, addr)


def data_received(self: ice.Connection, data: bytes, component: int) -> None:
    """aioice's, except that SRTP goes to the fast path once DTLS is connected, and an empty
    datagram is dropped (aiortc's reader reads its first byte: it would end the connection)."""
    if not data:
        return
    if fastpath.take(self, data):
        return
    ORIGINAL_DATA_RECEIVED(self, data, component)


def set_state(self: RTCDtlsTransport, state: State) -> None:
    """aiortc's, then the fast path on for a connected transport and off for any other state."""
    ORIGINAL_SET_STATE(self, state)
    fastpath.on_state(self, state)


def setup_srtp(self: RTCDtlsTransport) -> None:
    """aiortc's, then the C receiver keyed as aiortc's receive session (when the extension runs)."""
    ORIGINAL_SETUP_SRTP(self)
    nativesrtp.attach(self)


def get_stats(self: RTCDtlsTransport) -> RTCStatsReport:
    """aiortc's, with the packets the sockets' Demuxes took in C counted in (fastpath)."""
    fast_path = fastpath.fast_path_of(self)
    if fast_path is not None:
        fast_path.fold_counts()
    return ORIGINAL_GET_STATS(self)
