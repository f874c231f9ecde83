"""The retention side of the evidence, composed once for whoever runs the server.

``recorder`` knows nothing of retention: its ``Evidence`` takes a factory for the rules. This
module supplies it, so the server makes its evidence with one call::

    evidence = open_evidence(EvidenceSettings.from_settings(settings))
    await evidence.start()
    evidence.retention  # the RetentionBook, once started
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from recorder.evidence import Evidence, EvidenceSettings
from recorder.store import EvidenceStore

from .book import RetentionBook
from .schedule import load_schedule


def retention_for(schedule_path: Path | None) -> Callable[[EvidenceStore], RetentionBook]:
    """The factory ``Evidence`` calls with its store at start-up: the book under the schedule
    at ``schedule_path`` (the shipped one if None; a bad schedule fails the start)."""

    def make(store: EvidenceStore) -> RetentionBook:
        return RetentionBook(store, load_schedule(schedule_path))

    return make


def open_evidence(settings: EvidenceSettings) -> Evidence[RetentionBook]:
    """The server's evidence, with the retention rules of ``settings.retention_schedule``."""
    return Evidence(settings, retention_for(settings.retention_schedule))
