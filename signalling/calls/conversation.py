"""The chat of each session: messages taken, numbered, delivered to the consoles (the live
feed) and recorded as evidence, with their delivery and read state and, when configured, a
machine translation.

A message is published the moment it is accepted; the translation (bounded by
``SCENELINK_TRANSLATE_TIMEOUT_S``) follows as an update, so a slow translator never delays
delivery. Its ``chat_message`` event is written once the translation is in or given up, so
the event holds both; ``settle`` waits for those still pending before a session's record
closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from recorder.events import EvidenceEvent
from signalling.calls.chat import (
    ChatRecord,
    Receipt,
    Sender,
    apply_receipt,
    check_rate,
    check_text,
    message_event,
    new_message,
    other_side,
)
from signalling.calls.sessions import utcnow
from signalling.calls.state import StateStore
from signalling.calls.translate import Translator
from signalling.config import Settings

logger = logging.getLogger(__name__)

MAX_RECEIPT_IDS = 100


class Conversations:
    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        record: Callable[[str, EvidenceEvent], None],
    ) -> None:
        self.settings = settings
        self.store = store
        self._record = record
        key = settings.translate_api_key
        self.translator = Translator(
            settings.translate_url,
            key.get_secret_value() if key else None,
            settings.translate_timeout_s,
        )
        self._caller_language: dict[str, str] = {}  # the caller page's, as it last said
        self._pending: dict[str, set[asyncio.Task[None]]] = {}

    def caller_language(self, session_id: str, language: str | None) -> None:
        """The caller's page language (its catalogue's), for translating to the caller."""
        if language is not None:
            self._caller_language[session_id] = language

    async def send(
        self, session_id: str, sender: Sender, text: object, by: str | None, language: str | None
    ) -> ChatRecord:
        """Take one message, or refuse it (``ChatRefused``) with nothing stored."""
        checked = check_text(text, self.settings.chat_max_chars)
        message = new_message(sender, by, checked, utcnow().isoformat(), language)
        await check_rate(self.store, self.settings, session_id, sender, message["message_id"])
        message = await self.store.add_chat(session_id, message)
        await self.store.publish(session_id, {"type": "chat", "message": message})
        source, target = self._languages(session_id, message)
        if self.translator.enabled and source and target and source != target:
            task = asyncio.ensure_future(self._translate(session_id, message, source, target))
            pending = self._pending.setdefault(session_id, set())
            pending.add(task)
            task.add_done_callback(pending.discard)
        else:
            self._record(session_id, message_event(message))
        return message

    def _languages(self, session_id: str, message: ChatRecord) -> tuple[str | None, str | None]:
        handler = self.settings.handler_language
        if message["sender"] == "caller":
            return message["language"], handler
        return handler, self._caller_language.get(session_id)

    async def _translate(
        self, session_id: str, message: ChatRecord, source: str, target: str
    ) -> None:
        try:
            translation = await self.translator.translate(message["text"], source, target)
            if translation is not None:
                # Read again: a receipt may have come in meanwhile.
                message = next(
                    (m for m in await self.store.chat(session_id) if m["seq"] == message["seq"]),
                    message,
                )
                message["translation"] = translation
                await self.store.save_chat(session_id, message)
                await self.store.publish(session_id, {"type": "chat", "message": message})
        except Exception:
            logger.exception("session %s: chat translation", session_id)
        finally:
            self._record(session_id, message_event(message))

    async def receipt(
        self,
        session_id: str,
        reader: Sender,
        message_ids: Iterable[str],
        receipt: Receipt,
        by: str | None,
    ) -> list[str]:
        """The reader's page has the other side's messages (or showed them, for "read"):
        each changed one is published, and newly read ones recorded (``chat_read``). The ids
        whose state changed; unknown ids and the reader's own messages change nothing."""
        wanted = set(list(message_ids)[:MAX_RECEIPT_IDS])
        at = utcnow().isoformat()
        newly_read: list[str] = []
        changed: list[str] = []
        for message in await self.store.chat(session_id):
            if message["message_id"] not in wanted or message["sender"] != other_side(reader):
                continue
            was_read = message["read_at"] is not None
            if not apply_receipt(message, receipt, at):
                continue
            changed.append(message["message_id"])
            if not was_read and message["read_at"] is not None:
                newly_read.append(message["message_id"])
            await self.store.save_chat(session_id, message)
            await self.store.publish(session_id, {"type": "chat", "message": message})
        if newly_read:
            self._record(
                session_id,
                {
                    "event": "chat_read",
                    "at": at,
                    "message_ids": newly_read,
                    "reader": reader,
                    "by": by,
                },
            )
        return changed

    async def settle(self, session_id: str) -> None:
        """Wait for the session's translations in flight (each bounded by its deadline), so
        their messages are recorded before the record closes."""
        pending = self._pending.pop(session_id, set())
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self._caller_language.pop(session_id, None)

    async def close(self) -> None:
        for session_id in list(self._pending):
            await self.settle(session_id)
        await self.translator.close()
