"""An audit extract for one session: its records, with the proof that they are the trail's own.

A supervisor hands the extract to whoever reviews the session (a complaint, a court) without
the rest of the trail. Each record keeps its ``seq``, ``prev`` and ``hash``; ``links`` are the
``seq``/``prev``/``hash`` of every record from the first extracted one to the trail's head
(other sessions' records by their hashes only, never their content), so a reader recomputes
each record's hash and follows the links to the head, which the trail's sealed archive holds
too (``check_extract``). The CSV form is the records alone, each with its own link.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from typing_extensions import TypedDict  # pydantic documents it (Python < 3.12)

from recorder.chain import entry_hash
from signalling.audit.trail import FIELDS, first_broken


class Link(TypedDict):
    seq: int
    prev: str
    hash: str


class AuditExtract(TypedDict):
    session_id: str
    made_at: str
    made_by: str
    records: list[dict[str, Any]]
    chain_intact: bool
    first_broken_seq: int | None
    links: list[Link]
    head: Link | None


def _link(record: Mapping[str, Any]) -> Link:
    return {"seq": int(record["seq"]), "prev": str(record["prev"]), "hash": str(record["hash"])}


def make_extract(
    trail: Sequence[Mapping[str, Any]], session_id: str, made_at: str, made_by: str
) -> AuditExtract:
    """The session's records out of the whole ``trail`` (as read), with their proof."""
    mine = [i for i, r in enumerate(trail) if r.get("session_id") == session_id]
    records = [dict(trail[i]) for i in mine]
    start = mine[0] if mine else len(trail)
    broken = first_broken(trail)
    return {
        "session_id": session_id,
        "made_at": made_at,
        "made_by": made_by,
        "records": records,
        "chain_intact": broken is None,
        "first_broken_seq": broken,
        "links": [_link(r) for r in trail[start:]],
        "head": _link(trail[-1]) if trail else None,
    }


def check_extract(extract: AuditExtract) -> str | None:
    """What is wrong with an extract (a changed record, a broken or missing link), or None."""
    links = {link["seq"]: link for link in extract["links"]}
    for record in extract["records"]:
        if entry_hash(record) != record["hash"]:
            return f"record {record['seq']} was changed"
        if links.get(int(record["seq"])) != _link(record):
            return f"record {record['seq']} is not among the links"
    for before, after in zip(extract["links"], extract["links"][1:], strict=False):
        if after["seq"] != before["seq"] + 1 or after["prev"] != before["hash"]:
            return f"the links break at {after['seq']}"
    if extract["links"] and extract["links"][-1] != extract["head"]:
        return "the links do not reach the head"
    return None


def extract_csv(extract: AuditExtract) -> str:
    """One row per record (``detail`` as JSON), each with its own ``prev`` and ``hash``."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS)
    writer.writeheader()
    for record in extract["records"]:
        writer.writerow(record | {"detail": json.dumps(record["detail"], sort_keys=True)})
    return out.getvalue()
