"""Investigators' side of the store: search the catalogue, export a disclosure package, and
verify it in a fresh folder (and catch tampering with it)."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.synthetic import Clip
from recorder.catalogue import Area, Catalogue, CatalogueEntry, Near, SearchQuery
from recorder.export import ExportRequest, build_package, verify_package
from recorder.manifest import Signer
from recorder.spool import Spooler
from recorder.store import EvidenceStore, LocalFolderStore
from recorder.verify import VerifyError
from signalling.cli.main import main as scenelink
from tests.recorder.feed import record_session

LONDON = ((51.5010, -0.1262), (51.5012, -0.1261))
LEEDS = ((53.7997, -1.5492),)


@pytest.fixture
async def stored(
    store: EvidenceStore, clips: dict[str, Clip], tmp_path: Path
) -> tuple[EvidenceStore, Signer]:
    """Two sessions in the store: one in London for 07700 900123, one in Leeds."""
    signer = Signer.load_or_create(tmp_path / "key.pem")
    spool = Spooler(store)
    spool.start()
    try:
        await record_session(
            tmp_path / "ev" / "sess-london",
            clips["H264"],
            signer,
            spool,
            incident_ref="CAD-7",
            phone="+447700900123",
            fixes=LONDON,
        )
        await record_session(
            tmp_path / "ev" / "sess-leeds",
            clips["VP8"],
            signer,
            spool,
            incident_ref="CAD-8",
            phone="+447700900999",
            fixes=LEEDS,
        )
        assert spool.wait_idle(30)
    finally:
        spool.stop()
    return store, signer


def ids(found: list[CatalogueEntry]) -> set[str]:
    return {e.session_id for e in found}


async def test_search_by_incident_phone_date_and_area(
    stored: tuple[EvidenceStore, Signer],
) -> None:
    store, signer = stored
    catalogue = Catalogue(store, signer.jwks())
    assert ids(catalogue.search(SearchQuery())) == {"sess-london", "sess-leeds"}
    assert ids(catalogue.search(SearchQuery(incident_ref="cad-7"))) == {"sess-london"}
    assert ids(catalogue.search(SearchQuery(phone="+447700900999"))) == {"sess-leeds"}
    assert ids(catalogue.search(SearchQuery(phone="+447700900000"))) == set()
    around_whitehall = Area.parse("51.50,-0.13,51.51,-0.12")
    assert ids(catalogue.search(SearchQuery(area=around_whitehall))) == {"sess-london"}
    # Near a point: the London fixes are 780-800 m from Trafalgar Square.
    trafalgar = (51.50809, -0.12807)
    assert ids(catalogue.search(SearchQuery(near=Near(*trafalgar, 900)))) == {"sess-london"}
    assert ids(catalogue.search(SearchQuery(near=Near(*trafalgar, 700)))) == set()
    now = datetime.now(UTC)
    assert ids(catalogue.search(SearchQuery(since=now - timedelta(hours=1)))) == {
        "sess-london",
        "sess-leeds",
    }
    assert ids(catalogue.search(SearchQuery(until=now - timedelta(hours=1)))) == set()
    london = catalogue.get("sess-london")
    assert london.status == "closed" and london.media_seconds > 2
    assert [(f["lat"], f["lon"]) for f in catalogue.trail("sess-london")] == list(LONDON)
    first = london.segments[0]
    assert len(catalogue.media("sess-london", first.name)) == first.bytes
    with pytest.raises(KeyError):
        catalogue.media("sess-london", "manifest.jws")  # only listed segments are media


def test_near_is_geodesic_and_its_box_holds_the_circle() -> None:
    near = Near(60.0, 10.0, 1000.0)  # at 60 degrees north a degree of longitude is ~55.8 km
    assert near.contains(60.0, 10.0 + 0.99 / 55.8) and not near.contains(60.0, 10.0 + 1.01 / 55.8)
    assert near.contains(60.0 + 0.99 / 111.4, 10.0)
    assert not near.contains(60.0 + 1.01 / 111.4, 10.0)
    box = near.box()
    for lat, lon in ((60.0, 10.0 + 0.99 / 55.8), (60.0 - 0.99 / 111.4, 10.0)):
        assert box.contains(lat, lon)
    assert not box.contains(60.0, 10.1) and not box.contains(60.1, 10.0)
    pole = Near(89.9999, 0.0, 50_000.0).box()  # the box stays a valid one at the pole
    assert pole.north == 90.0 and pole.west == -180.0 and pole.east == 180.0


def test_area_must_be_ordered() -> None:
    with pytest.raises(ValueError):
        Area.parse("51.6,-0.1,51.5,0.0")
    with pytest.raises(ValueError):
        Area.parse("1,2,3")


async def test_export_package_verifies_in_a_fresh_folder_and_tampering_is_named(
    stored: tuple[EvidenceStore, Signer], tmp_path: Path
) -> None:
    store, signer = stored
    catalogue = Catalogue(store, signer.jwks())
    entries = catalogue.search(SearchQuery())
    audit = {"sess-london": [{"seq": 0, "actor": "alice", "action": "consultation.playback"}]}
    request = ExportRequest("exp-1", "ivan", "CPS Leeds", "charging file", datetime.now(UTC))
    progress: list[tuple[int, int]] = []
    package = build_package(
        store,
        signer,
        request,
        entries,
        audit,
        tmp_path / "p.zip",
        lambda d, t: progress.append((d, t)),
    )
    assert progress and progress[-1][0] == progress[-1][1]

    jwks = tmp_path / "published-jwks.json"
    jwks.write_text(json.dumps(signer.jwks()))
    assert scenelink(["verify", str(package), "--jwks", str(jwks)]) == 0

    fresh = tmp_path / "fresh"
    with zipfile.ZipFile(package) as zf:
        zf.extractall(fresh)
    reports = verify_package(fresh, signer.jwks())
    assert {r.session_id for r in reports} == {"sess-london", "sess-leeds"}
    statement = (fresh / "continuity-statement.txt").read_text()
    assert "ivan" in statement and "CPS Leeds" in statement and "alice" in statement
    extract = (fresh / "sessions" / "sess-london" / "audit-extract.jsonl").read_text()
    assert "consultation.playback" in extract

    segment = sorted((fresh / "sessions" / "sess-leeds").glob("media-*.mkv"))[1]
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0x01
    segment.write_bytes(bytes(data))
    with pytest.raises(VerifyError, match=f"sessions/sess-leeds/{segment.name}"):
        verify_package(fresh, signer.jwks())
    assert scenelink(["verify", str(fresh), "--jwks", str(jwks)]) == 1

    other = tmp_path / "other"
    with zipfile.ZipFile(package) as zf:
        zf.extractall(other)
    (other / "sessions" / "sess-london" / "media-999.mkv").write_bytes(b"smuggled")
    with pytest.raises(VerifyError, match="media-999.mkv: not listed"):
        verify_package(other, signer.jwks())
    index = json.loads((other / "export.json").read_text())
    assert index["recipient"] == "CPS Leeds"
    stranger = Signer.load_or_create(tmp_path / "stranger.pem")
    with pytest.raises(VerifyError, match="export.jws"):
        verify_package(other, stranger.jwks())


async def test_package_verify_catches_edited_index_and_added_files(
    stored: tuple[EvidenceStore, Signer], tmp_path: Path
) -> None:
    """Everything in a package is covered: export.json must be the signed index, a file
    anywhere that export.json does not list is named, and a key taken from the package itself
    is reported as such."""
    store, signer = stored
    entries = Catalogue(store, signer.jwks()).search(SearchQuery(incident_ref="CAD-7"))
    request = ExportRequest("exp-2", "ivan", "CPS Leeds", "charging file", datetime.now(UTC))
    package = build_package(store, signer, request, entries, {}, tmp_path / "p.zip")

    def unpacked(name: str) -> Path:
        folder = tmp_path / name
        with zipfile.ZipFile(package) as zf:
            zf.extractall(folder)
        return folder

    edited = unpacked("edited")
    index = json.loads((edited / "export.json").read_text())
    index["recipient"] = "Defence solicitor"
    (edited / "export.json").write_text(json.dumps(index, indent=1))
    with pytest.raises(VerifyError, match="export.json: differs from the signed"):
        verify_package(edited, signer.jwks(), decode=False)

    added = unpacked("added")
    (added / "media-extra.mkv").write_bytes(b"smuggled")
    with pytest.raises(VerifyError, match="media-extra.mkv: not listed"):
        verify_package(added, signer.jwks(), decode=False)

    own_key = verify_package(unpacked("own-key"), None, decode=False)
    assert all(any("key taken from the package" in n for n in r.notes) for r in own_key)


async def test_a_disposed_bundle_is_not_found_rather_than_an_error(
    clips: dict[str, Clip], tmp_path: Path
) -> None:
    store = LocalFolderStore(tmp_path / "store")
    signer = Signer.load_or_create(tmp_path / "key.pem")
    spool = Spooler(store)
    await record_session(tmp_path / "ev" / "sess-gone", clips["VP8"], signer, None)
    spool.sync(tmp_path / "ev" / "sess-gone")
    catalogue = Catalogue(store, signer.jwks())
    entry = catalogue.get("sess-gone")
    for key in store.list(""):  # what disposal does, behind the catalogue's back
        (tmp_path / "store" / key).unlink()
    with pytest.raises(KeyError):
        catalogue.media("sess-gone", entry.segments[0].name)
    with pytest.raises(KeyError):
        catalogue.get("sess-gone")
