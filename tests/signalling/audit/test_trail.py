import errno
import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from recorder.chain import entry_hash
from signalling.audit.trail import AuditTrail, AuditUnavailable, first_broken


async def filled(tmp_path: Path) -> AuditTrail:
    trail = AuditTrail(tmp_path / "audit.jsonl")
    for n, action in enumerate(
        [
            "sign_in",
            "collection.session_created",
            "consultation.live_view",
            "consultation.playback",
            "session_ended",
        ]
    ):
        await trail.record("alice", action, f"s{n % 2}", "10.0.0.1", n=n)
    return trail


async def test_intact_chain_and_search(tmp_path: Path) -> None:
    trail = await filled(tmp_path)
    records = trail.read()
    assert [r["seq"] for r in records] == [0, 1, 2, 3, 4]
    assert first_broken(records) is None
    assert [r["action"] for r in await trail.search(session_id="s1")] == [
        "collection.session_created",
        "consultation.playback",
    ]
    # A new trail object on the same file carries on the chain.
    again = AuditTrail(trail.path)
    await again.record("bob", "sign_in")
    assert first_broken(again.read()) is None and again.read()[-1]["seq"] == 5


async def test_changed_record_is_detected(tmp_path: Path) -> None:
    records = (await filled(tmp_path)).read()
    records[2]["actor"] = "mallory"
    assert first_broken(records) == 2


async def test_removed_record_is_detected(tmp_path: Path) -> None:
    records = (await filled(tmp_path)).read()
    del records[1]
    assert first_broken(records) == 1


async def test_reordered_records_are_detected(tmp_path: Path) -> None:
    records = (await filled(tmp_path)).read()
    records[3], records[4] = records[4], records[3]
    assert first_broken(records) == 3


async def test_rehashed_forgery_still_breaks_the_chain(tmp_path: Path) -> None:
    trail = await filled(tmp_path)
    lines = trail.path.read_text().splitlines()
    record = json.loads(lines[1])
    record["detail"] = {"n": 99}
    record["hash"] = entry_hash(record)  # self-consistent, but the next record's prev differs
    lines[1] = json.dumps(record)
    assert first_broken([json.loads(x) for x in lines]) == 2


async def test_a_torn_record_is_kept_aside_and_the_chain_goes_on(tmp_path: Path) -> None:
    trail = await filled(tmp_path)
    with trail.path.open("ab") as f:
        f.write(b'{"seq": 5, "actor": "al')  # the server died mid-write
    again = AuditTrail(trail.path)
    await again.record("bob", "sign_in")
    records = again.read()
    assert first_broken(records) is None and records[-1]["seq"] == 5
    [aside] = tmp_path.glob("audit.jsonl.torn-*")
    assert aside.read_bytes() == b'{"seq": 5, "actor": "al'
    assert oct(trail.path.stat().st_mode & 0o777) == "0o600"


async def test_an_unwritable_trail_refuses_the_action_and_stays_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trail = await filled(tmp_path)
    before = trail.path.read_bytes()

    def disk_full(fd: int, data: bytes | memoryview) -> int:
        os.ftruncate(fd, os.fstat(fd).st_size)  # (nothing reaches the file)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)  # durable.os is os
    with pytest.raises(AuditUnavailable):
        await trail.record("alice", "consultation.playback", "s1")
    monkeypatch.undo()
    assert trail.path.read_bytes() == before
    await trail.record("alice", "consultation.playback", "s1")
    assert first_broken(trail.read()) is None


async def test_a_record_with_a_field_added_or_missing_is_broken(tmp_path: Path) -> None:
    records = (await filled(tmp_path)).read()
    extra = dict(records[1], note="added")
    extra["hash"] = entry_hash(extra)
    assert first_broken([records[0], extra]) == 1
    missing = {k: v for k, v in records[0].items() if k != "detail"}
    missing["hash"] = entry_hash(missing)
    assert first_broken([missing]) == 0


async def test_a_background_refresh_of_what_was_consulted_is_not_recorded_again(
    tmp_path: Path,
) -> None:
    trail = AuditTrail(tmp_path / "audit.jsonl")
    # A refresh of something never consulted here (a restart, another node) is recorded.
    assert await trail.consult("ann", "consultation.search", refresh=True, ref="A", results=1)
    # Its repeats, finding more or less, are not: nobody consulted anything new.
    assert (
        await trail.consult("ann", "consultation.search", refresh=True, ref="A", results=2) is None
    )
    # A person searching again, a new question, another person: each is a consultation.
    assert await trail.consult("ann", "consultation.search", ref="A", results=2)
    assert await trail.consult("ann", "consultation.search", refresh=True, ref="B", results=0)
    assert await trail.consult("bob", "consultation.search", refresh=True, ref="A", results=2)
    assert await trail.consult("ann", "consultation.view", "s1", refresh=True)
    assert [(r["actor"], r["detail"].get("ref")) for r in trail.read()] == [
        ("ann", "A"),
        ("ann", "A"),
        ("ann", "B"),
        ("bob", "A"),
        ("ann", None),
    ]


async def test_search_by_date_range(tmp_path: Path) -> None:
    trail = await filled(tmp_path)
    records = trail.read()
    third = datetime.fromisoformat(records[2]["at"])
    fourth = datetime.fromisoformat(records[3]["at"])
    assert [r["seq"] for r in await trail.search(since=third, until=fourth)] == [2, 3]
    assert [r["seq"] for r in await trail.search(until=third)] == [0, 1, 2]
    later = fourth + timedelta(days=1)
    assert await trail.search(since=later) == []
