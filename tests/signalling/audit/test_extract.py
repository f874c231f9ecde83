"""One session's audit extract: its records and the links that prove them the trail's own."""

from __future__ import annotations

import copy
import csv
import io
from pathlib import Path

from signalling.audit.extract import check_extract, extract_csv, make_extract
from signalling.audit.trail import AuditTrail


async def trail_of_two_sessions(tmp_path: Path) -> AuditTrail:
    trail = AuditTrail(tmp_path / "audit.jsonl")
    await trail.record("ann", "sign_in")
    for n in range(6):
        await trail.record("ann", "consultation.view", f"s{n % 2}", "10.0.0.1", n=n)
    await trail.record("bob", "sign_in")
    return trail


async def test_extract_holds_the_sessions_records_and_proves_them(tmp_path: Path) -> None:
    trail = (await trail_of_two_sessions(tmp_path)).read()
    extract = make_extract(trail, "s1", "2026-12-07T14:00:00+00:00", "sue")
    assert [r["seq"] for r in extract["records"]] == [2, 4, 6]
    assert extract["chain_intact"] and extract["first_broken_seq"] is None
    # Links from the first record to the head, other sessions' records by hash only.
    assert [link["seq"] for link in extract["links"]] == [2, 3, 4, 5, 6, 7]
    assert extract["head"] == {"seq": 7, "prev": trail[6]["hash"], "hash": trail[7]["hash"]}
    assert check_extract(extract) is None

    changed = copy.deepcopy(extract)
    changed["records"][1]["actor"] = "mallory"
    assert check_extract(changed) == "record 4 was changed"
    dropped = copy.deepcopy(extract)
    del dropped["links"][2]
    assert check_extract(dropped) == "record 4 is not among the links"
    cut = copy.deepcopy(extract)
    cut["links"].pop()
    assert check_extract(cut) == "the links do not reach the head"


async def test_extract_as_csv(tmp_path: Path) -> None:
    trail = (await trail_of_two_sessions(tmp_path)).read()
    rows = list(csv.DictReader(io.StringIO(extract_csv(make_extract(trail, "s0", "t", "sue")))))
    assert [(r["seq"], r["action"], r["detail"]) for r in rows] == [
        ("1", "consultation.view", '{"n": 0}'),
        ("3", "consultation.view", '{"n": 2}'),
        ("5", "consultation.view", '{"n": 4}'),
    ]
    assert rows[0]["hash"] == trail[1]["hash"] and rows[0]["prev"] == trail[0]["hash"]
