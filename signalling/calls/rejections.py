"""Rejected fixes are logged, but not one line each: a page (or anyone holding its link)
sending garbage wrote 1.5 MB of log for 10,000 bad messages. The exact count is the store's."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

SUMMARY_INTERVAL_S = 60.0


@dataclass
class _Held:
    since: float
    count: int = 0
    last: str = ""


class RejectedFixLog:
    """A session's first rejection is logged at once; later ones are held and summed up in
    one line per session at most every ``interval_s`` (when the next rejection comes)."""

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = SUMMARY_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._clock = clock
        self._held: dict[str, _Held] = {}
        self._summarised_at = clock()
        self.total = 0  # every rejection on this node (metrics)

    def rejected(self, session_id: str, reason: str) -> None:
        self.total += 1
        now = self._clock()
        if now - self._summarised_at >= self._interval_s:
            self._summarise(now)
        held = self._held.get(session_id)
        if held is None:
            self._held[session_id] = _Held(since=now)
            self._logger.warning("session %s: fix rejected: %s", session_id, reason)
        else:
            held.count += 1
            held.last = reason

    def _summarise(self, now: float) -> None:
        """One line per session with rejections held; a quiet session is forgotten."""
        self._summarised_at = now
        for session_id, held in list(self._held.items()):
            if not held.count:
                del self._held[session_id]
                continue
            self._logger.warning(
                "session %s: %d more fixes rejected in %.0f s, the last: %s",
                session_id,
                held.count,
                now - held.since,
                held.last,
            )
            self._held[session_id] = _Held(since=now)
