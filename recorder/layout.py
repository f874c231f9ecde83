"""The recorder's names in the data folder, in one place.

::

    <data dir>/
        evidence/                   the spool: one folder per session (``SessionRecorder``)
        evidence-store/             the local evidence store, when no S3 bucket is configured
        evidence-signing-key.pem    the Ed25519 key manifests are signed with (unless supplied)
        node-id                     this node's id in a cluster, made once (unless configured)
        fixity.jsonl                one line per fixity check
        exports/                    disclosure packages built for download
        derivatives/                working copies for playback (``workingcopy``), per session

Configuration may put the spool or the key elsewhere (``EvidenceSettings``); the rest follows
the data folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

EVIDENCE_DIR: Final = "evidence"
STORE_DIR: Final = "evidence-store"
SIGNING_KEY_FILE: Final = "evidence-signing-key.pem"
NODE_ID_FILE: Final = "node-id"
FIXITY_LOG: Final = "fixity.jsonl"
EXPORTS_DIR: Final = "exports"
DERIVATIVES_DIR: Final = "derivatives"


@dataclass(frozen=True, slots=True)
class DataLayout:
    """Where the recorder's things are under one data folder."""

    data_dir: Path

    @property
    def evidence_dir(self) -> Path:
        return self.data_dir / EVIDENCE_DIR

    @property
    def store_dir(self) -> Path:
        return self.data_dir / STORE_DIR

    @property
    def signing_key(self) -> Path:
        return self.data_dir / SIGNING_KEY_FILE

    @property
    def node_id_file(self) -> Path:
        return self.data_dir / NODE_ID_FILE

    @property
    def fixity_log(self) -> Path:
        return self.data_dir / FIXITY_LOG

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / EXPORTS_DIR

    @property
    def derivatives_dir(self) -> Path:
        return self.data_dir / DERIVATIVES_DIR
