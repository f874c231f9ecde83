"""aiortc's depayloader for the receivers, in C when the extension runs.

aiortc's receiver strips each packet's payload header in Python (H.264: single NAL units, FU-A
fragments and STAP-A aggregates to Annex B; VP8: the payload descriptor). The C versions in
streamserver.native._native give the same bytes and raise the same ValueErrors, which the
receiver catches and drops the packet for; without the extension aiortc's own run.
streamserver.patches.install() puts ``depayload`` in aiortc's receiver module; covered by
tests/streamserver/test_native_depayload.py.
"""

from __future__ import annotations

from typing import Any

from aiortc.codecs import depayload as aiortc_depayload

from . import native


def depayload(codec: Any, payload: bytes) -> bytes:
    """aiortc's ``depayload(codec, payload)``, in C for H.264 and VP8 when it runs."""
    c = native.NATIVE
    if c is None:
        return aiortc_depayload(codec, payload)
    data: bytes
    if codec.name == "H264":
        data = c.depayload_h264(payload)
    elif codec.name == "VP8":
        data = c.depayload_vp8(payload)
    else:
        data = payload
    return data
