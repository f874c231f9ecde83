"""The server's evidence gets the retention rules through retention.wiring (recorder never
imports retention), and without them the spool locks for the default number of days."""

from __future__ import annotations

from pathlib import Path

import pytest

from recorder.defaults import RETENTION_DAYS
from recorder.evidence import Evidence, EvidenceSettings
from recorder.layout import DataLayout
from recorder.store import LocalFolderStore
from retention.book import RetentionBook
from retention.wiring import open_evidence


def settings(tmp_path: Path) -> EvidenceSettings:
    return EvidenceSettings(data_dir=tmp_path, evidence_dir=DataLayout(tmp_path).evidence_dir)


async def test_open_evidence_hands_the_book_to_the_spool(tmp_path: Path) -> None:
    evidence = open_evidence(settings(tmp_path))
    with pytest.raises(RuntimeError, match="not started"):
        _ = evidence.retention
    await evidence.start()
    try:
        book: RetentionBook = evidence.retention
        assert isinstance(book, RetentionBook)
        assert book.store is evidence.store
        assert evidence.spool.lock_for == book.lock_for
        assert isinstance(evidence.store, LocalFolderStore)
        assert evidence.store.root == tmp_path / "evidence-store"
        assert (tmp_path / "evidence-signing-key.pem").exists()
    finally:
        await evidence.stop()


async def test_evidence_without_rules(tmp_path: Path) -> None:
    evidence: Evidence = Evidence(settings(tmp_path))
    await evidence.start()
    try:
        with pytest.raises(RuntimeError, match="no retention rules"):
            _ = evidence.retention
        assert evidence.spool.lock_for is None
        assert evidence.spool.retention_days == RETENTION_DAYS == 31
    finally:
        await evidence.stop()
