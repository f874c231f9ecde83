"""The recorder's defaults, each stated once; configuration (``signalling.config``) refers here."""

from __future__ import annotations

from typing import Final

# Retain-until for a spool without retention rules: this many days after upload.
RETENTION_DAYS: Final = 31
# Length of one media segment (cut at the next keyframe after it).
SEGMENT_SECONDS: Final = 10.0
# How often every stored object is re-hashed (fixity check).
FIXITY_INTERVAL_S: Final = 24 * 3600.0
# Warn below this much free space for evidence; a failed recording resumes only above it.
LOW_SPACE_MB: Final = 500
# How long a node's published public key (``nodes.publish_key``) is locked in the store: as
# long as any evidence it signed may be kept (MoPI's longest reviews run to decades).
KEY_RETENTION_DAYS: Final = 100 * 366
