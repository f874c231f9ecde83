"""Rejected fixes: the first per session logged at once, the rest summed up per interval."""

from __future__ import annotations

import logging

import pytest

from signalling.calls.rejections import RejectedFixLog


def test_a_flood_of_rejections_is_a_few_lines(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = RejectedFixLog(logging.getLogger("test.rejections"), interval_s=60, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, "test.rejections"):
        for i in range(10_000):
            log.rejected("s1", f"bad {i}")
            now[0] += 0.001  # ten seconds in all
        log.rejected("s2", "other")
        now[0] = 61.0
        log.rejected("s2", "again")  # after the interval: the summary comes first
        now[0] = 200.0
        log.rejected("s1", "back")  # s1 was summed up and then quiet: logged at once again
    assert [r.getMessage() for r in caplog.records] == [
        "session s1: fix rejected: bad 0",
        "session s2: fix rejected: other",
        "session s1: 9999 more fixes rejected in 61 s, the last: bad 9999",
        "session s2: fix rejected: again",  # nothing held for s2: it was forgotten
        "session s1: fix rejected: back",
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records)
