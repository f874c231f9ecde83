import json
from pathlib import Path

from signalling.audit import AuditTrail, first_broken


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
    from signalling.audit import AuditRecord

    forged = AuditRecord(**(record | {"hash": ""}))
    record["hash"] = forged.content_hash()  # self-consistent, but the next record's prev differs
    lines[1] = json.dumps(record)
    assert first_broken([json.loads(x) for x in lines]) == 2
