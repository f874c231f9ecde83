"""The one chained-log implementation: links, shared writers, torn tails, the audit's lines."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from recorder.chain import GENESIS, ChainedLog, HashChain, check_links, first_broken, readable

AUDIT_FIELDS = ("seq", "at", "actor", "action", "session_id", "remote", "detail", "prev", "hash")


def audit_fields(action: str) -> dict[str, object]:
    return {"at": "2030-01-01T00:00:00+00:00", "actor": "ann", "action": action}


def test_two_writers_share_one_file_and_it_verifies_like_the_audit_trail(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    a, b = (
        ChainedLog(path, lock=True, encode=readable),
        ChainedLog(path, lock=True, encode=readable),
    )
    first = a.append({**audit_fields("sign_in"), "session_id": None, "remote": "::1", "detail": {}})
    b.append(lambda: {**audit_fields("erasure"), "session_id": "s1", "remote": None, "detail": {}})
    third = a.append({**audit_fields("é"), "session_id": None, "remote": None, "detail": {"n": 1}})
    entries = a.read()
    assert [e["seq"] for e in entries] == [0, 1, 2] and first["prev"] == GENESIS
    assert third["prev"] == entries[1]["hash"] and a.head == third["hash"]
    assert first_broken(entries, AUDIT_FIELDS) is None
    # the audit trail's own hash: sorted-key JSON of every field but hash
    body = {k: v for k, v in entries[2].items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha256(text.encode()).hexdigest() == entries[2]["hash"]
    # the audit trail's lines: sorted keys, spaces after separators
    assert path.read_text().splitlines()[0] == json.dumps(entries[0], sort_keys=True)
    entries[1]["detail"] = {"changed": True}
    assert first_broken(entries, AUDIT_FIELDS) == 1
    assert first_broken([{**entries[0], "extra": 1}], AUDIT_FIELDS) == 0


def test_a_torn_tail_is_moved_aside_before_the_next_entry(tmp_path: Path) -> None:
    chain = HashChain(tmp_path)
    chain.append("gap", reason="x", at=1.0)
    with chain.path.open("ab") as f:
        f.write(b'{"seq": 1, "kin')
    again = HashChain(tmp_path)
    assert len(again.entries) == 1
    again.append("gap", reason="y", at=2.0)
    assert check_links(again.entries) == again.head
    assert (
        tmp_path / f"chain.jsonl.torn-{len(chain.path.read_bytes().splitlines()[0]) + 1}"
    ).exists()
