"""Decisions, locks and disposal against both stores, with a clock the test moves.

The retain-until dates and legal-hold states are read back from the store itself (moto's
S3 server: ``head_object`` and ``get_object_legal_hold``; moto has no ``get_object_retention``).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from recorder.spool import Spooler
from recorder.store import (
    EvidenceStore,
    LockRefused,
    ObjectLock,
    S3ObjectLockStore,
    StoredVersion,
    StoreError,
    lock_date,
)
from retention.book import RetentionBook, RetentionError
from retention.disposal import ERASURE_PREFIX, RESUME_AFTER, dispose_one, erasure_key, run
from retention.ledger import DisposalUnderway, LedgerError, ledger_prefix
from retention.schedule import Period, load_schedule
from tests.conftest import s3_bucket
from tests.retention.conftest import INCIDENT, LAT, LON, PHONE, Clock, Recorded, days


def dispose(book: RetentionBook, when: datetime) -> list[str]:
    book.clock.at(when)  # type: ignore[attr-defined]
    return [o.session_id for o in run(book, execute=True, by="records-manager")]


def store_locks(
    store: EvidenceStore, session_id: str, book: RetentionBook
) -> set[tuple[datetime | None, bool]]:
    """Retain-until and legal hold of every version, read back from the store itself."""
    found: set[tuple[datetime | None, bool]] = set()
    versions = [v for v in book.versions(session_id) if not v.delete_marker]
    assert versions
    if isinstance(store, S3ObjectLockStore):
        client = boto3.client("s3", endpoint_url=store.client.meta.endpoint_url)
        for v in versions:
            head = client.head_object(Bucket=store.bucket, Key=v.key, VersionId=v.version_id)
            hold = client.get_object_legal_hold(
                Bucket=store.bucket, Key=v.key, VersionId=v.version_id
            )["LegalHold"].get("Status", "OFF")  # moto: no Status until one is set
            assert head["ObjectLockMode"] == "GOVERNANCE"
            found.add((head["ObjectLockRetainUntilDate"], hold == "ON"))
    else:
        found = {(v.retain_until, v.legal_hold) for v in versions}
    return found


def test_unassessed_goes_after_the_short_period(
    book: RetentionBook, recorded: Recorded, clock: Clock
) -> None:
    start = clock.now
    sid = recorded("sess-unassessed")
    state = book.state(sid)
    assert state.disposal_at == start + days(31) and state.class_names == ["unassessed"]
    assert store_locks(book.store, sid, book) == {(lock_date(start + days(31)), False)}
    assert dispose(book, start + days(30)) == []
    assert dispose(
        book,
        start
        + days(
            31,
        ),
    ) == [sid]
    assert book.store.list("") == [erasure_key(sid)]


def on(day: datetime) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# class, events (days after the start), expected disposal from (start, linked)
CLASSES: list[tuple[str, dict[str, int], Callable[[datetime, datetime], datetime]]] = [
    ("pre_charge", {"decision": 60}, lambda s, _: on(s + days(60))),
    ("charged", {"outcome": 200}, lambda s, _: on(s + days(200))),
    ("convicted", {"conviction": 100}, lambda s, _: Period(6, "m").after(on(s + days(100)))),
    ("convicted", {"conviction": 100, "release": 900}, lambda s, _: on(s + days(900))),
    ("mopi_group_3", {}, lambda _, linked: Period(6, "y").after(linked)),
    ("non_crime", {}, lambda _, linked: Period(6, "y").after(linked)),
    ("mopi_group_2", {}, lambda _, linked: Period(10, "y").after(linked)),
    (
        "mopi_group_1",
        {"subject_born": -30 * 365},
        lambda s, _: Period(100, "y").after(on(s - days(30 * 365))),
    ),
]


@pytest.mark.parametrize(("class_name", "events", "expected"), CLASSES)
def test_each_class_is_disposed_of_at_the_right_time(
    book: RetentionBook,
    recorded: Recorded,
    clock: Clock,
    class_name: str,
    events: dict[str, int],
    expected: Callable[[datetime, datetime], datetime],
) -> None:
    start = clock.now
    sid = recorded(f"sess-{class_name}")
    linked = clock.at(start + days(10)).now
    dated = {e: (start + days(n)).date().isoformat() for e, n in events.items()}
    state, report = book.link(sid, "CRIME-1", class_name, "crime recorded", "inv1", dated)
    due = expected(start, linked)
    assert state.disposal_at == due and state.governing.source == "CRIME-1"
    assert report.extended == report.versions > 0
    assert store_locks(book.store, sid, book) == {(lock_date(due), False)}
    assert dispose(book, due - days(1)) == []
    assert dispose(book, due + days(1)) == [sid]


def test_waits_for_an_event_then_the_latest_link_wins(
    book: RetentionBook, recorded: Recorded, clock: Clock
) -> None:
    start = clock.now
    sid = recorded("sess-links")
    state, report = book.link(sid, "CRIME-1", "pre_charge", "suspect arrested", "inv1")
    assert state.disposal_at is None and state.governing.rule == "pre_charge: until decision"
    horizon = lock_date(Period(1, "y").after(start))  # indefinite: a year ahead, renewed
    assert store_locks(book.store, sid, book) == {(horizon, False)}
    assert dispose(book, start + days(5000)) == []
    book.link(sid, "INC-9", "non_crime", "welfare concern", "ch1")
    decision = (start + days(40)).date().isoformat()
    state, _ = book.link(
        sid, "CRIME-1", "pre_charge", "NFA decision", "inv1", {"decision": decision}
    )
    assert state.governing.source == "INC-9"  # non-crime's 6 years outlast the decision
    state, _ = book.link(sid, "INC-9", "non_crime", "linked in error", "sup1", removed=True)
    assert state.disposal_at is not None and state.disposal_at.date().isoformat() == decision
    with pytest.raises(RetentionError, match="does not use event"):
        book.link(sid, "CRIME-1", "charged", "x", "inv1", {"decision": decision})
    with pytest.raises(RetentionError, match="not linked to NOPE"):
        book.link(sid, "NOPE", "charged", "x", "inv1", removed=True)


def test_holds_stop_disposal_until_released(
    book: RetentionBook, recorded: Recorded, clock: Clock
) -> None:
    start = clock.now
    sid = recorded("sess-held")
    state, report, hold_id = book.hold(sid, "court", "trial listed", "inv1")
    assert state.disposal_at is None and report.legal_hold
    assert {held for _, held in store_locks(book.store, sid, book)} == {True}
    _, _, second = book.hold(sid, "iopc", "complaint", "sup1")
    assert dispose(book, start + days(400)) == []
    clock.at(start)
    state, report = book.release(sid, hold_id, "verdict given", "sup1")
    assert state.disposal_at is None and report.legal_hold  # the IOPC hold remains
    state, report = book.release(sid, second, "closed", "sup1")
    assert state.disposal_at == start + days(31) and not report.legal_hold
    assert {held for _, held in store_locks(book.store, sid, book)} == {False}
    with pytest.raises(RetentionError, match="no hold"):
        book.release(sid, second, "again", "sup1")
    with pytest.raises(RetentionError, match="unknown hold kind"):
        book.hold(sid, "curiosity", "x", "sup1")
    # The hold kept it past its date: the next run disposes of it.
    assert dispose(book, start + days(400)) == [sid]


def test_locks_only_extend_and_shortening_is_separate(
    book: RetentionBook, recorded: Recorded, clock: Clock
) -> None:
    start = clock.now
    sid = recorded("sess-shorten")
    state, _ = book.link(sid, "CRIME-1", "mopi_group_3", "theft", "inv1")
    long = lock_date(state.disposal_at or start)
    state, report = book.link(sid, "CRIME-1", "mopi_group_3", "theft", "inv1", removed=True)
    assert state.disposal_at == start + days(31)
    assert report.extended == 0 and report.locked_beyond_rules == report.versions
    assert {until for until, _ in store_locks(book.store, sid, book)} == {long}
    clock.at(start + days(40))
    skipped = run(book, execute=True, by="rm")
    assert [o.action for o in skipped] == ["skipped"] and "admin may shorten" in skipped[0].detail
    clock.at(start + days(1))
    state, count = book.shorten(sid, "linked in error; lawful to erase", "admin1")
    assert count > 0
    assert {until for until, _ in store_locks(book.store, sid, book)} == {
        lock_date(start + days(31))
    }
    assert dispose(book, start + days(32)) == [sid]


def test_compliance_mode_refuses_shortening(s3_server: str, clock: Clock, tmp_path: Path) -> None:
    store = s3_bucket(s3_server, "COMPLIANCE")
    book = RetentionBook(store, load_schedule(), clock)
    (tmp_path / "e").mkdir()
    from tests.retention.conftest import write_bundle

    write_bundle(tmp_path / "e" / "s1", clock.now)
    Spooler(store, lock_for=book.lock_for).sync(tmp_path / "e" / "s1")
    book.link("s1", "CRIME-1", "mopi_group_3", "theft", "inv1")
    book.link("s1", "CRIME-1", "mopi_group_3", "error", "inv1", removed=True)
    entries = len(book.ledger("s1").read())
    with pytest.raises(LockRefused, match="COMPLIANCE"):
        book.shorten("s1", "erase", "admin1")
    assert len(book.ledger("s1").read()) == entries  # nothing recorded


def upload_later_segment(
    book: RetentionBook,
    folder: Path,
    lock_for: Callable[[str, datetime], ObjectLock] | None = None,
) -> list[StoredVersion]:
    """A segment that reaches the store after the decisions: the versions it got."""
    data = b"more media"
    (folder / "media-001.mkv").write_bytes(data)
    manifest = json.loads((folder / "manifest.json").read_text())
    sha256 = hashlib.sha256(data).hexdigest()
    manifest["segments"].append({"name": "media-001.mkv", "sha256": sha256, "bytes": len(data)})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    Spooler(book.store, lock_for=lock_for or book.lock_for).sync(folder)
    return [v for v in book.versions(folder.name) if v.key.endswith("media-001.mkv")]


def test_new_uploads_get_the_rules_date(
    book: RetentionBook, recorded: Recorded, clock: Clock, tmp_path: Path
) -> None:
    start = clock.now
    sid = recorded("sess-later")
    state, _ = book.link(sid, "CRIME-1", "mopi_group_2", "assault", "inv1")
    new = upload_later_segment(book, tmp_path / "evidence" / sid)
    assert [v.retain_until for v in new] == [lock_date(state.disposal_at or start)]
    assert [v.legal_hold for v in new] == [False]


def test_new_uploads_of_a_held_session_are_held(
    book: RetentionBook, recorded: Recorded, tmp_path: Path
) -> None:
    sid = recorded("sess-held-later")
    book.hold(sid, "court", "trial listed", "inv1")
    new = upload_later_segment(book, tmp_path / "evidence" / sid)
    assert [v.legal_hold for v in new] == [True]


@pytest.mark.parametrize("change", ["hold", "release"])
def test_a_hold_changed_while_a_segment_uploads_reaches_it(
    book: RetentionBook, recorded: Recorded, tmp_path: Path, change: str
) -> None:
    """The decision's own pass over the store ran before the segment landed."""
    sid = recorded(f"sess-{change}-race")
    held = change == "release"
    if held:
        _, _, hold_id = book.hold(sid, "court", "trial listed", "inv1")
    decided: list[ObjectLock] = []

    def lock_for(session_id: str, started_at: datetime) -> ObjectLock:
        lock = book.lock_for(session_id, started_at)
        if not decided:  # the decision lands just after the spool read the rules
            if held:
                book.release(sid, hold_id, "trial over", "sup1")
            else:
                book.hold(sid, "court", "trial listed", "inv1")
        decided.append(lock)
        return lock

    new = upload_later_segment(book, tmp_path / "evidence" / sid, lock_for)
    assert decided[0].legal_hold is held
    assert [v.legal_hold for v in new] == [not held]


def test_second_run_is_a_no_op_and_the_erasure_record_holds_no_content(
    book: RetentionBook, recorded: Recorded, clock: Clock, tmp_path: Path
) -> None:
    start = clock.now
    sid = recorded("sess-erase")
    book.link(sid, INCIDENT, "non_crime", f"caller {PHONE} at {LAT},{LON}", "ch1")
    book.link(sid, INCIDENT, "non_crime", "mistake", "sup1", removed=True)
    book.shorten(sid, "linked in error", "admin1")
    clock.at(start + days(40))
    dry = run(book, execute=False, by="rm")
    assert [(o.action, o.session_id) for o in dry] == [("would dispose", sid)]
    assert (tmp_path / "evidence" / sid).is_dir() and book.store.list(ledger_prefix(sid))
    copies = tmp_path / "derivatives"
    (copies / sid).mkdir(parents=True)  # a playback working copy made on this node
    (copies / sid / "copy.mp4").write_bytes(b"copy")
    (copies / "sess-other").mkdir()
    done = run(book, execute=True, by="rm", spool_dir=tmp_path / "evidence", derivatives_dir=copies)
    assert [(o.action, o.class_name) for o in done] == [("disposed", "unassessed")]
    assert not (copies / sid).exists() and (copies / "sess-other").is_dir()
    assert done[0].objects >= 6
    assert run(book, execute=True, by="rm", spool_dir=tmp_path / "evidence") == []
    assert not (tmp_path / "evidence" / sid).exists()
    assert book.store.list("") == [erasure_key(sid)]
    assert [v for v in book.store.versions("") if not v.key.startswith(ERASURE_PREFIX)] == []
    raw = book.store.get(erasure_key(sid)).decode()
    for secret in (PHONE, "7700900123", INCIDENT, "4471", LAT, LON, "51.50", "linked in error"):
        assert secret not in raw
    record = json.loads(raw)
    assert record["session_id"] == sid and record["by"] == "rm"
    assert record["rule"] == "unassessed: session_start + 31d" and record["objects"] >= 6
    with pytest.raises(StoreError, match="not|NoSuchKey"):
        book.store.get(f"index/{sid}.json")


def test_a_run_that_finds_another_runs_claim_leaves_the_session_to_it(
    recorded: Recorded, clock: Clock, store: EvidenceStore
) -> None:
    """The interleaving behind a double disposal: run B reads the ledger just after run A
    claimed the session and before A wrote its erasure record. B must not claim again; if
    A died there, a run after ``RESUME_AFTER`` finishes the job."""
    sid = recorded("sess-claimed")
    later = Clock(clock.now + days(40))
    first = RetentionBook(store, load_schedule(), later)
    state = first.state(sid)
    first.ledger(sid).append_after(state.head, "disposal", later.now, later.now, by="n0")
    second = RetentionBook(store, load_schedule(), later)
    outcome = dispose_one(second, sid, execute=True, by="n1", spool_dir=None)
    assert outcome is not None and outcome.action == "skipped"
    assert outcome.detail == "another run disposing"
    assert not store.list(erasure_key(sid))
    resumed = RetentionBook(store, load_schedule(), Clock(later.now + RESUME_AFTER))
    outcome = dispose_one(resumed, sid, execute=True, by="n1", spool_dir=None)
    assert outcome is not None and outcome.action == "disposed"
    assert store.list("") == [erasure_key(sid)]


def test_two_concurrent_runs_dispose_once(
    book: RetentionBook, recorded: Recorded, clock: Clock, store: EvidenceStore
) -> None:
    sids = [recorded(f"sess-c{i}") for i in range(3)]
    later = Clock(clock.now + days(40))
    books = [RetentionBook(store, load_schedule(), later) for _ in range(2)]
    results: list[list[str]] = [[], []]
    barrier = threading.Barrier(2)

    def node(i: int) -> None:
        barrier.wait()
        results[i] = [
            o.session_id for o in run(books[i], execute=True, by=f"n{i}") if o.action == "disposed"
        ]

    threads = [threading.Thread(target=node, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results[0] + results[1]) == sorted(sids)
    assert store.list("") == sorted(erasure_key(s) for s in sids)


def test_a_version_deleted_between_listing_and_reading_is_skipped(s3_server: str) -> None:
    """Another node's disposal can delete a version after this node listed it."""
    store = s3_bucket(s3_server)
    for name in ("a", "b"):
        store.create(f"sess/{name}", name.encode(), datetime.now(UTC))
    deleted: list[str] = []

    def other_node_deletes(params: dict[str, str], **_: object) -> None:
        if not deleted:
            deleted.append(params["Key"])
            store.client.delete_object(
                Bucket=params["Bucket"],
                Key=params["Key"],
                VersionId=params["VersionId"],
                BypassGovernanceRetention=True,
            )

    store.client.meta.events.register("before-parameter-build.s3.HeadObject", other_node_deletes)
    found = store.versions("sess/")
    assert len(deleted) == 1
    assert [v.key for v in found] == [k for k in ("sess/a", "sess/b") if k != deleted[0]]


def test_tampered_ledger_is_detected(tmp_path: Path, clock: Clock) -> None:
    from recorder.store import LocalFolderStore

    store = LocalFolderStore(tmp_path / "store")
    book = RetentionBook(store, load_schedule(), clock)
    book.open("s1", clock.now)
    book.link("s1", "CRIME-1", "mopi_group_3", "theft", "inv1")
    path = tmp_path / "store" / ledger_prefix("s1") / "000001.json"
    path.chmod(0o644)
    path.write_text(path.read_text().replace("mopi_group_3", "non_crime"))
    with pytest.raises(LedgerError, match="entry 1"):
        RetentionBook(store, load_schedule(), clock).state("s1")


def test_one_unreadable_ledger_does_not_stop_the_other_disposals(
    tmp_path: Path, clock: Clock
) -> None:
    from recorder.store import LocalFolderStore

    store = LocalFolderStore(tmp_path / "store")
    book = RetentionBook(store, load_schedule(), clock)
    for sid in ("s-a", "s-broken", "s-z"):
        book.open(sid, clock.now)
    path = tmp_path / "store" / ledger_prefix("s-broken") / "000000.json"
    path.chmod(0o644)
    entry = json.loads(path.read_text())
    path.write_text(json.dumps(entry | {"at": "2020-01-01T00:00:00+00:00"}))
    later = RetentionBook(store, load_schedule(), Clock(clock.now + days(40)))
    assert [s.session_id for s in later.states()] == ["s-a", "s-z"]
    outcomes = {o.session_id: o.action for o in run(later, execute=True, by="rm1")}
    assert outcomes == {"s-a": "disposed", "s-broken": "failed", "s-z": "disposed"}


def test_a_decision_recorded_while_a_run_disposes_keeps_the_session(
    book: RetentionBook, recorded: Recorded, clock: Clock, store: EvidenceStore
) -> None:
    """A link made on another node after the run read the rules but before it deleted
    anything wins: the run gives the session up, and nothing is deleted."""
    sid = recorded("sess-race")
    later = Clock(clock.now + days(40))
    disposer = RetentionBook(store, load_schedule(), later)
    other_node = RetentionBook(store, load_schedule(), later)
    listed = disposer.versions

    def versions_then_a_link(session_id: str) -> list[StoredVersion]:
        found = listed(session_id)
        if not other_node.state(sid).links:
            other_node.link(sid, "CR-77", "mopi_group_2", "serious assault", "inv1")
        return found

    disposer.versions = versions_then_a_link  # type: ignore[method-assign]
    assert [o for o in run(disposer, execute=True, by="rm") if o.action == "disposed"] == []
    assert not store.list(erasure_key(sid))
    state = RetentionBook(store, load_schedule(), later).state(sid)
    assert state.disposal_at is not None and state.disposal_at > later.now + days(3000)
    assert store.list(f"index/{sid}.json") and len(book.versions(sid)) >= 6
    # And once a run has claimed a session, no decision can slip in behind it.
    other_node.ledger(sid).append("disposal", later.now, later.now + days(1), by="rm")
    with pytest.raises(DisposalUnderway, match="being disposed of"):
        other_node.hold(sid, "court", "too late", "inv1")


@pytest.mark.parametrize("how", ["overwritten", "hidden"])
def test_a_replaced_or_hidden_ledger_entry_is_detected_in_s3(
    s3_server: str, clock: Clock, how: str
) -> None:
    store = s3_bucket(s3_server)
    book = RetentionBook(store, load_schedule(), clock)
    book.open("s1", clock.now)
    book.hold("s1", "court", "trial listed", "sup1")
    last = store.list(ledger_prefix("s1"))[-1]
    if how == "overwritten":
        store.client.put_object(Bucket=store.bucket, Key=last, Body=b"{}")
    else:
        store.client.delete_object(Bucket=store.bucket, Key=last)  # a delete marker
    with pytest.raises(LedgerError, match="replaced"):
        RetentionBook(store, load_schedule(), clock).state("s1")
