"""Settings that derive from others: where the evidence spool is (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

from signalling.config import load_settings


def test_the_evidence_spool_is_this_nodes_folder_in_a_shared_spool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCENELINK_DATA_DIR", str(tmp_path / "data"))
    assert load_settings().evidence_dir == tmp_path / "data" / "evidence"
    monkeypatch.setenv("SCENELINK_SHARED_SPOOL", str(tmp_path / "shared"))
    made = load_settings().evidence_dir  # the node id made once, kept in the data folder
    assert made.parent == tmp_path / "shared"
    assert made.name == (tmp_path / "data" / "node-id").read_text().strip()
    assert load_settings().evidence_dir == made
    monkeypatch.setenv("SCENELINK_NODE_ID", "node-7")
    assert load_settings().evidence_dir == tmp_path / "shared" / "node-7"
    monkeypatch.setenv("SCENELINK_NODE_ID", "../up")
    with pytest.raises(ValueError, match="node_id"):
        load_settings()
