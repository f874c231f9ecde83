"""The fast clock gives aiortc's values, and install() puts it where aiortc reads it."""

from __future__ import annotations

import datetime
import time

import aiortc.clock as clock
import aiortc.rtcrtpsender as rtcrtpsender
import pytest

from streamserver import fastclock, patches

ORIGINAL_NTP = clock.current_ntp_time
ORIGINAL_MS = clock.current_ms


def test_same_values_as_aiortc() -> None:
    before = ORIGINAL_NTP()
    ours = fastclock.current_ntp_time()
    after = ORIGINAL_NTP()
    assert before <= ours <= after
    assert after - before < 2**32 // 100  # both read within 10 ms
    assert ORIGINAL_MS() <= fastclock.current_ms() <= ORIGINAL_MS() + 1


def test_exact_at_a_fixed_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    moment = datetime.datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=datetime.UTC)
    ns = (int(moment.timestamp()) * 1_000_000 + moment.microsecond) * 1000 + 789
    monkeypatch.setattr(time, "time_ns", lambda: ns)  # fastclock reads time.time_ns
    assert fastclock.current_ntp_time() == clock.datetime_to_ntp(moment)
    assert fastclock.current_ms() == int((moment - clock.NTP_EPOCH).total_seconds() * 1000)


def test_install_replaces_what_the_sender_reads() -> None:
    patches.install()
    assert vars(rtcrtpsender)["clock"].current_ntp_time is fastclock.current_ntp_time
    assert clock.current_ms is fastclock.current_ms
