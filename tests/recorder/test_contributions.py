"""One bundle per session whichever nodes recorded it (issue 15): node A records, node B
continues after a failover; both nodes' parts are one session in the store, in the catalogue,
on the timeline and in ``scenelink verify``; and what a crash left on A joins it later."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.synthetic import Clip
from recorder.catalogue import Catalogue, SearchQuery
from recorder.contributions import IndexedPart, load_contributions, session_index
from recorder.events import now_iso
from recorder.evidence import Evidence, EvidenceSettings
from recorder.export import ExportRequest, build_package, verify_package
from recorder.fixity import check_store
from recorder.manifest import MANIFEST_JWS, Signer
from recorder.nodes import publish_key, published_keys
from recorder.recording import SessionRecorder
from recorder.recovery import recover_all
from recorder.spool import Spooler
from recorder.store import EvidenceStore, LocalFolderStore, find_session, index_key
from recorder.timeline import build_timeline
from recorder.verify import Report, VerifyError, download_session, verify_bundle, verify_target
from recorder.workingcopy import WorkingCopies, check_copy
from retention.book import RetentionBook
from retention.schedule import load_schedule
from signalling.cli.main import main as scenelink
from tests.conftest import s3_bucket
from tests.recorder.crash_child import kill_mid_part
from tests.recorder.feed import session_created, stream

SESSION = "sess-moved"
GAP_S = 3.0


class Node:
    """One node's evidence side: its own folder, key, node id and spool."""

    def __init__(self, root: Path, node_id: str, store: EvidenceStore) -> None:
        self.node_id = node_id
        self.evidence = root / node_id / "evidence"
        self.signer = Signer.load_or_create(root / node_id / "key.pem")
        self.spool = Spooler(store, node_id=node_id)
        publish_key(store, self.signer, node_id)

    def recorder(self, continued: bool) -> SessionRecorder:
        return SessionRecorder(
            self.evidence / SESSION,
            signer=self.signer,
            spool=self.spool,
            segment_seconds=60.0,
            node_id=self.node_id,
            tag_parts=continued,
        )

    def upload(self) -> None:
        self.spool.start()
        try:
            self.spool.enqueue_all(self.evidence)
            assert self.spool.wait_idle(30)
        finally:
            self.spool.stop()


async def failover(tmp_path: Path, store: EvidenceStore, clip: Clip) -> tuple[Node, Node]:
    """A records the start of the call; B takes it over GAP_S after A's last frame."""
    a, b = Node(tmp_path, "node-a", store), Node(tmp_path, "node-b", store)
    t0 = time.time() - 2 * clip.duration_s - GAP_S - 2
    rec_a = a.recorder(continued=False)
    rec_a.append_event(session_created("CAD-15", "tok-15"))
    rec_a.append_fix({"lat": 51.5, "lon": -0.1, "accuracy": 5.0, "received_at": "2026-12-07"})
    await stream(rec_a, clip, clip.duration_s, paced=False, t0=t0)
    await rec_a.close()
    a.upload()
    rec_b = b.recorder(continued=True)
    rec_b.record_move("node-a", "failover", t0 + clip.duration_s)
    await stream(rec_b, clip, clip.duration_s, paced=False, t0=t0 + clip.duration_s + GAP_S)
    rec_b.append_event({"event": "ended", "at": now_iso(), "by": "h", "session": {}})
    await rec_b.close()
    b.upload()
    assert rec_a.errors == rec_b.errors == []
    return a, b


async def test_two_nodes_parts_are_one_session_in_the_store_catalogue_and_verify(
    tmp_path: Path, store: EvidenceStore, clips: dict[str, Clip]
) -> None:
    a, b = await failover(tmp_path, store, clips["H264"])
    prefix = find_session(store, SESSION)
    keys = store.list(prefix + "/")
    assert f"{prefix}/media-001.mkv" in keys  # the first node's, as a single node names it
    assert f"{prefix}/nodes/node-b/media-node-b-001.mkv" in keys
    assert f"{prefix}/nodes/node-b/{MANIFEST_JWS}" in keys
    assert [v.key for v in store.versions(index_key(SESSION))] == [index_key(SESSION)]

    # The session index: both nodes' parts in order, the move's gap before B's first.
    found = load_contributions(store, SESSION, {"keys": published_keys(store)})
    assert [c.node_id for c in found] == ["node-a", "node-b"]
    parts = session_index(found)
    assert [(p.name, p.node_id) for p in parts] == [
        ("media-001.mkv", "node-a"),
        ("media-node-b-001.mkv", "node-b"),
    ]
    assert parts[0].gap_before_s is None
    assert parts[1].gap_before_s == pytest.approx(GAP_S, abs=0.2)

    # Search by incident reference: ONE session, both nodes' parts, events merged.
    catalogue = Catalogue(store, a.signer.jwks())  # B's key comes from the store
    [entry] = catalogue.search(SearchQuery(incident_ref="CAD-15"))
    assert entry.session_id == SESSION and entry.status == "closed"
    assert [s.name for s in entry.segments] == [p.name for p in parts]
    assert catalogue.media(SESSION, "media-node-b-001.mkv") == store.get(parts[1].key)
    events = [e["event"] for e in catalogue.events(SESSION)]
    assert events.count("session_created") == 1 and events.count("recording_moved") == 1
    assert events.index("session_created") < events.index("recording_moved") < events.index("ended")
    assert len(catalogue.trail(SESSION)) == 1

    # The playback timeline covers both nodes' parts, the gap between them.
    timeline = build_timeline(SESSION, entry.segments, catalogue.events(SESSION), [], None)
    assert [p["name"] for p in timeline["parts"]] == [p.name for p in parts]
    assert [g["cause"] for g in timeline["gaps"]] == ["between_parts"]
    assert timeline["gaps"][0]["end_s"] - timeline["gaps"][0]["start_s"] == pytest.approx(
        GAP_S, abs=0.2
    )

    # scenelink verify <session>: every node's contribution, with the published keys.
    report = verify_target(SESSION, store, None)
    assert report.nodes == ["node-a", "node-b"] and report.segments == 2
    assert report.key_ids == sorted([a.signer.kid, b.signer.kid])
    assert [p.name for p in report.gaps] == ["media-node-b-001.mkv"]
    assert not any("taken from the bundle itself" in n for n in report.notes)


async def test_verify_fails_when_a_nodes_part_or_manifest_changes_or_its_key_is_unknown(
    tmp_path: Path, clips: dict[str, Clip], capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalFolderStore(tmp_path / "store")
    a, b = await failover(tmp_path, store, clips["VP8"])
    keys = {"keys": published_keys(store)}
    folder = download_session(store, SESSION, tmp_path / "fetched")
    verify_bundle(folder, keys, decode=False)
    published = tmp_path / "published.json"
    published.write_text(json.dumps(keys))
    assert scenelink(["verify", str(folder), "--jwks", str(published), "--no-decode"]) == 0
    printed = capsys.readouterr().out
    assert "nodes: node-a, node-b" in printed
    assert f"gap: {GAP_S:.1f} s before media-node-b-001.mkv (node node-b)" in printed
    # The playback working copy is made from both nodes' parts and checks against them.
    catalogue = Catalogue(store, a.signer.jwks())
    copy, record, _ = await WorkingCopies(tmp_path / "derivatives", catalogue).get(
        catalogue.get(SESSION), "ivan"
    )
    assert [p["name"] for p in record["parts"]] == ["media-001.mkv", "media-node-b-001.mkv"]
    assert record["parts"][1]["offset_s"] == pytest.approx(clips["VP8"].duration_s + GAP_S, abs=0.2)
    assert check_copy(copy, folder) == record["packets"] > 0
    # A disclosure package carries both nodes' shares and keys, and verifies on its own.
    request = ExportRequest("exp-15", "ivan", "CPS", "file", datetime.now(UTC))
    package = build_package(
        store, a.signer, request, [catalogue.get(SESSION)], {}, tmp_path / "p.zip"
    )
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(package) as zf:
        zf.extractall(unpacked)
    [report] = verify_package(unpacked, None, decode=False)
    assert report.nodes == ["node-a", "node-b"] and report.segments == 2

    with pytest.raises(VerifyError, match="node node-b: .*signature does not verify"):
        verify_bundle(folder, a.signer.jwks(), decode=False)  # B's key unknown

    def tampered(path: str, at: int) -> Path:
        """A copy of the bundle with one byte of ``path`` changed (in the middle of a JWS's
        payload, never in the last base64 character, whose low bits may decode to nothing)."""
        copy = tmp_path / f"copy-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(folder, copy)
        target = copy / path
        target.chmod(0o644)
        data = bytearray(target.read_bytes())
        data[at] = ord("B") if data[at] == ord("A") else ord("A")
        target.write_bytes(bytes(data))
        return copy

    part = tampered("nodes/node-b/media-node-b-001.mkv", -2)
    with pytest.raises(VerifyError, match="node node-b: segment media-node-b-001.mkv: SHA-256"):
        verify_bundle(part, keys, decode=False)
    signed = (folder / "nodes" / "node-b" / MANIFEST_JWS).read_bytes()
    jws = tampered(f"nodes/node-b/{MANIFEST_JWS}", signed.index(b".") + len(signed) // 4)
    with pytest.raises(VerifyError, match="node node-b: manifest.jws: signature does not"):
        verify_bundle(jws, keys, decode=False)
    first = tampered("media-001.mkv", -2)
    with pytest.raises(VerifyError, match="^segment media-001.mkv: SHA-256"):
        verify_bundle(first, keys, decode=False)
    # The first node's share without its manifest (its upload cut short) is not passed over.
    unsigned = tmp_path / "unsigned"
    shutil.copytree(folder, unsigned)
    (unsigned / MANIFEST_JWS).unlink()
    with pytest.raises(VerifyError, match="^manifest.jws: missing"):
        verify_bundle(unsigned, keys, decode=False)
    # A contribution moved under another node's name is caught too.
    moved = tmp_path / "moved"
    shutil.copytree(folder, moved)
    (moved / "nodes" / "node-b").rename(moved / "nodes" / "node-c")
    with pytest.raises(VerifyError, match="node node-c: its manifest names node node-b"):
        verify_bundle(moved, keys, decode=False)

    # Fixity re-hashes every node's share (B's key from the store); a changed part is named.
    assert check_store(store, a.signer.jwks())["mismatches"] == []
    stored = tmp_path / "store" / find_session(store, SESSION) / "nodes" / "node-b"
    (stored / "media-node-b-001.mkv").chmod(0o644)
    (stored / "media-node-b-001.mkv").write_bytes(b"changed")
    [problem] = check_store(store, a.signer.jwks())["mismatches"]
    assert problem == {
        "key": f"{find_session(store, SESSION)}/nodes/node-b/media-node-b-001.mkv",
        "problem": "SHA-256 mismatch",
    }


async def test_a_bundle_from_before_clusters_verifies_and_a_new_node_continues_it(
    tmp_path: Path, clips: dict[str, Clip], signer: Signer
) -> None:
    """No node ids anywhere (as every bundle was before): same layout, verifies as before;
    a node that continues such a session adds its own contribution beside it."""
    store = LocalFolderStore(tmp_path / "store")
    old = SessionRecorder(tmp_path / "old" / SESSION, signer=signer, spool=Spooler(store))
    old.append_event(session_created("CAD-OLD", "tok"))
    await stream(old, clips["H264"], clips["H264"].duration_s, paced=False)
    await old.close()
    assert old.spool is not None
    old.spool.start()
    assert old.spool.wait_idle(30)
    old.spool.stop()
    before = verify_target(SESSION, store, None)
    assert before.nodes == [None] and before.segments == 1
    assert any("taken from the bundle itself" in n for n in before.notes)  # no keys published

    b = Node(tmp_path, "node-b", store)
    rec = b.recorder(continued=True)
    rec.record_move(None, "failover", None)
    await stream(rec, clips["H264"], clips["H264"].duration_s, paced=False)
    await rec.close()
    b.upload()
    report = verify_target(
        SESSION, store, {"keys": [*signer.jwks()["keys"], *published_keys(store)]}
    )
    assert report.nodes == [None, "node-b"] and report.segments == 2
    [entry] = Catalogue(store, signer.jwks()).search(SearchQuery(incident_ref="CAD-OLD"))
    assert [s.node_id for s in entry.segments] == [None, "node-b"]


async def test_a_dead_nodes_open_part_joins_the_bundle_when_it_comes_back(
    tmp_path: Path, clips: dict[str, Clip], rec_clip_dir: Path
) -> None:
    """A (a recording process) is killed mid-part before uploading anything; B continues
    (and claims the index); A restarts: recovery salvages the open part and the spool puts
    A's contribution beside B's. Search finds one session with both, and it verifies."""
    store = LocalFolderStore(tmp_path / "store")
    a, b = Node(tmp_path, "node-a", store), Node(tmp_path, "node-b", store)
    folder_a = a.evidence / SESSION
    await kill_mid_part(folder_a, rec_clip_dir, tmp_path / "node-a" / "key.pem", tmp_path / "log")

    rec_b = b.recorder(continued=True)
    rec_b.record_move("node-a", "failover", None)
    await stream(rec_b, clips["H264"], clips["H264"].duration_s, paced=False, t0=time.time())
    await rec_b.close()
    b.upload()
    assert find_session(store, SESSION).endswith("no-incident/" + SESSION)  # B claimed it
    catalogue = Catalogue(store, b.signer.jwks())
    [only_b] = catalogue.search(SearchQuery())
    assert only_b.status == "closed" and only_b.incident_ref is None  # cached as it is

    [recovered] = recover_all(a.evidence, a.signer, a.node_id)  # A is back
    assert recovered.segments  # the whole frames of the part it was writing
    a.upload()
    report = verify_target(SESSION, store, None)
    assert report.nodes == ["node-b", "node-a"]
    # The same catalogue sees A's late contribution (its member record says the session grew).
    [entry] = catalogue.search(SearchQuery(incident_ref="INC-K"))
    nodes = [s.node_id for s in entry.segments]
    assert nodes == ["node-a"] * (len(nodes) - 1) + ["node-b"]  # in recording order
    assert recovered.segments[-1] in [s.name for s in entry.segments]
    # A's share ended in a crash, as the dead node's always does; B recorded last and closed.
    assert entry.status == report.status == "closed"
    # Disposal takes every node's objects, A's member record included.
    book = RetentionBook(store, load_schedule())
    keys = {v.key for v in book.versions(SESSION)}
    assert f"contributions/{SESSION}/node-a.json" in keys
    assert any("/nodes/node-a/" in k for k in keys) and index_key(SESSION) in keys


async def test_a_new_owner_continues_the_session_through_evidence(
    tmp_path: Path, clips: dict[str, Clip], s3_server: str
) -> None:
    """Two clustered nodes on one S3 bucket, as the server wires them: each makes its node
    id once and publishes its key; the new owner's ``continue_recording`` continues the
    session (no second ``session_created``, a ``recording_moved`` with the gap), and every
    part name carries its node's id."""
    bucket = s3_bucket(s3_server)
    nodes = []
    for name in ("a", "b"):
        settings = EvidenceSettings(
            data_dir=tmp_path / name,
            evidence_dir=tmp_path / name / "evidence",
            s3_bucket=bucket.bucket,
            s3_endpoint_url=s3_server,
            segment_seconds=60.0,
            clustered=True,
        )
        evidence: Evidence = Evidence(settings)
        await evidence.start()
        nodes.append(evidence)
    a, b = nodes
    try:
        assert (tmp_path / "a" / "node-id").read_text().strip() == a.node_id != b.node_id
        kids = {k["kid"] for k in (await asyncio.to_thread(a.trusted_jwks))["keys"]}
        assert kids == {a.signer.kid, b.signer.kid}
        clip = clips["VP8"]
        t0 = time.time() - 2 * clip.duration_s - GAP_S - 2
        rec_a = a.recorder(SESSION)
        rec_a.append_event(session_created("CAD-EV", "tok"))
        await stream(rec_a, clip, clip.duration_s, paced=False, t0=t0)
        await rec_a.close()
        last_seen = t0 + clip.duration_s
        rec_b = b.continue_recording(
            SESSION, from_node=a.node_id, reason="failover", last_seen_wall_clock=last_seen
        )
        await stream(rec_b, clip, clip.duration_s, paced=False, t0=last_seen + GAP_S)
        await rec_b.close()
    finally:
        for evidence in nodes:
            await evidence.stop()
    catalogue = Catalogue(bucket, a.signer.jwks())
    [entry] = catalogue.search(SearchQuery(incident_ref="CAD-EV"))
    assert [s.name for s in entry.segments] == [
        f"media-{a.node_id}-001.mkv",
        f"media-{b.node_id}-001.mkv",
    ]
    [moved] = [e for e in catalogue.events(SESSION) if e["event"] == "recording_moved"]
    assert (moved["node_id"], moved["from_node"], moved["reason"]) == (
        b.node_id,
        a.node_id,
        "failover",
    )
    assert moved["gap_s"] >= GAP_S
    assert [e["event"] for e in catalogue.events(SESSION)].count("session_created") == 1
    assert verify_target(SESSION, bucket, None).nodes == [a.node_id, b.node_id]


async def test_a_node_rescues_a_dead_nodes_spool_from_the_shared_folder(
    tmp_path: Path, rec_clip_dir: Path
) -> None:
    """SCENELINK_SHARED_SPOOL: node A's recording process dies mid-part and A never comes
    back; B recovers A's folder from the shared spool and uploads it as A's contribution
    (signed by B, naming A). A folder still being recorded is left alone."""
    shared = tmp_path / "shared"
    await kill_mid_part(
        shared / "node-a" / SESSION, rec_clip_dir, tmp_path / "a-key.pem", tmp_path / "sent"
    )
    busy = SessionRecorder(shared / "node-c" / "sess-live", signer=None)  # C is alive
    settings = EvidenceSettings(
        data_dir=tmp_path / "b",
        evidence_dir=shared / "node-b",
        node_id="node-b",
        shared_spool=shared,
    )
    b: Evidence = Evidence(settings)
    await b.start()
    try:
        assert await b.rescue("node-b") == []  # itself: never
        assert await b.rescue("node-c") == []  # alive: its folder is locked
        assert await b.rescue("node-a") == [SESSION]
    finally:
        await b.stop()
        await busy.close()
    assert "sess-live" not in [k.split("/")[1] for k in b.store.list("index/")]
    report = verify_target(SESSION, b.store, None)
    assert report.nodes == ["node-a"] and report.key_ids == [b.signer.kid]
    [entry] = Catalogue(b.store, b.signer.jwks()).search(SearchQuery(incident_ref="INC-K"))
    assert entry.status == "interrupted" and len(entry.segments) >= 2


def test_a_move_to_another_node_is_a_gap_however_short() -> None:
    """What verify lists as gaps: every move between nodes, and a pause over a second on
    one node; parts cut for length follow on at once and are not gaps."""

    def part(name: str, node: str, first: float, gap: float | None) -> IndexedPart:
        return IndexedPart(name, f"k/{name}", node, "0" * 64, 1, 1.0, first, first + 1.0, gap)

    parts = [
        part("a1", "a", 0.0, None),
        part("a2", "a", 1.02, 0.02),
        part("b1", "b", 2.32, 0.3),
        part("b2", "b", 4.82, 1.5),
    ]
    assert [p.name for p in Report(parts=parts).gaps] == ["b1", "b2"]
