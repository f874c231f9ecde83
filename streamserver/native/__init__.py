"""Which per-packet path runs: the C extension streamserver.native._native, or pure Python.

As aiohttp does, SCENELINK_NO_EXTENSIONS=1 selects the pure-Python path (the reference the
suite compares the C path with); so does an extension that fails to import (not built, or
libsrtp2 missing), with one warning saying why. ``NATIVE`` is read once, at import;
``load()`` reads the setting again (for tests that switch paths).
"""

from __future__ import annotations

import importlib
import logging
import os
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the extension's types, from its stub (_native.pyi)
    from ._native import Assembled as Assembled
    from ._native import AssembledFrame as AssembledFrame
    from ._native import Assembler as Assembler
    from ._native import Demux as Demux
    from ._native import RtpFields as RtpFields
    from ._native import SrtpReceiver as SrtpReceiver
    from ._native import SrtpSender as SrtpSender

logger = logging.getLogger(__name__)

ENV = "SCENELINK_NO_EXTENSIONS"


def disabled() -> bool:
    """True when the environment asks for the pure-Python path."""
    return os.environ.get(ENV, "") not in ("", "0")


def load() -> ModuleType | None:
    """The C extension, or None for the pure-Python path (a failed import is logged)."""
    if disabled():
        return None
    try:
        return importlib.import_module("streamserver.native._native")
    except ImportError as exc:
        logger.warning("streamserver: C extension unavailable, using the Python path: %s", exc)
        return None


NATIVE = load()
