"""Chat between the caller's page and the console: what a message may hold, how fast each
side may send, and the record kept of it.

A message is refused whole (``ChatRefused``, naming the limit) and nothing is stored: not
text, empty, longer than ``chat_max_chars``, holding a control character other than a line
break or tab (or binary), or the side's ``chat_rate_messages``-th within
``chat_rate_window_s`` already sent (counted in the state store, so across nodes with Redis).
Delivery and read state are the other side's page saying so (``apply_receipt``).
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from typing import Literal, Protocol

from typing_extensions import TypedDict  # pydantic documents it (Python < 3.12)

from recorder.events import ChatMessage
from signalling.config import Settings

Sender = Literal["caller", "handler"]
Receipt = Literal["delivered", "read"]

ALLOWED_CONTROLS = frozenset("\n\t")
LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")


class ChatRefused(ValueError):
    """A message refused before anything is stored: ``limit`` names the rule it broke."""

    def __init__(self, error: str, limit: str, retry_after_s: float | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.limit = limit
        self.retry_after_s = retry_after_s


class Translation(TypedDict):
    """A machine translation (``recorder.events.ChatTranslation``, as the API documents it)."""

    language: str
    text: str


class ChatRecord(TypedDict):
    """One message as the console and the state store keep it (``seq`` counts from 0)."""

    message_id: str
    seq: int
    sender: Sender
    by: str | None  # the call handler's username; None for the caller
    text: str
    at: str
    language: str | None  # the sender's page language (the caller's catalogue, e.g. "cy")
    translation: Translation | None
    delivered_at: str | None  # the other side's page has it
    read_at: str | None  # shown there while the page was visible


class CallerChatRecord(TypedDict):
    """What the caller's page is told of a message: no call handler's name."""

    message_id: str
    seq: int
    sender: Sender
    text: str
    at: str
    translation: Translation | None
    delivered_at: str | None
    read_at: str | None


class CallerChatState(TypedDict):
    """All the caller's page shows of the chat: on the data channel when it opens (asked
    with ``chat_sync``) and as the answer to its poll (``GET /api/caller/chat``). The
    ``version`` changes whenever anything in it does."""

    type: Literal["chat_state"]
    messages: list[CallerChatRecord]
    silent: bool
    microphone_request: str | None
    version: str


class CallerChat(TypedDict):
    type: Literal["chat"]
    message: CallerChatRecord


class CallerSilent(TypedDict):
    type: Literal["silent"]
    on: bool
    microphone_request: str | None


class ChatError(TypedDict):
    """A message the caller sent on the data channel was refused: nothing was stored."""

    type: Literal["chat_error"]
    error: str
    limit: str


class ChannelError(TypedDict):
    type: Literal["error"]
    error: str


CallerMessage = CallerChatState | CallerChat | CallerSilent | ChatError | ChannelError
"""What the server sends down the caller's data channel about the chat."""


class AttemptCounter(Protocol):
    """The state store's sign-in throttle counter, reused for the chat rate."""

    async def count_attempt(
        self, limits: dict[str, int], attempt: str, window_s: float
    ) -> float: ...


def check_text(text: object, max_chars: int) -> str:
    """The text as sent, or ``ChatRefused``."""
    if not isinstance(text, str):
        raise ChatRefused("chat text must be a string", "text")
    if not text.strip():
        raise ChatRefused("empty message", "text")
    if len(text) > max_chars:
        raise ChatRefused(f"message longer than {max_chars} characters", "chat_max_chars")
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cs") and char not in ALLOWED_CONTROLS:
            raise ChatRefused(f"control character U+{ord(char):04X} refused", "control_characters")
    return text


def check_language(value: object) -> str | None:
    """A page's language tag reduced to its primary subtag ("en-GB" -> "en"), or None."""
    if not isinstance(value, str) or not LANGUAGE.fullmatch(value):
        return None
    return value.split("-")[0].split("_")[0].lower()


async def check_rate(
    counter: AttemptCounter, settings: Settings, session_id: str, sender: Sender, attempt: str
) -> None:
    """Count one message against the side's rate, or refuse it (``retry_after_s`` says when)."""
    limit, window = settings.chat_rate_messages, settings.chat_rate_window_s
    wait = await counter.count_attempt({f"chat:{session_id}:{sender}": limit}, attempt, window)
    if wait > 0:
        raise ChatRefused(
            f"more than {limit} messages in {window:g} s", "chat_rate", retry_after_s=wait
        )


def new_message(
    sender: Sender, by: str | None, text: str, at: str, language: str | None
) -> ChatRecord:
    """A message before the store numbers it (``seq`` is -1 until then)."""
    return {
        "message_id": secrets.token_hex(8),
        "seq": -1,
        "sender": sender,
        "by": by,
        "text": text,
        "at": at,
        "language": language,
        "translation": None,
        "delivered_at": None,
        "read_at": None,
    }


def apply_receipt(record: ChatRecord, receipt: Receipt, at: str) -> bool:
    """Mark the message delivered (and read, for "read"); True if that changed anything."""
    changed = False
    if record["delivered_at"] is None:
        record["delivered_at"] = at
        changed = True
    if receipt == "read" and record["read_at"] is None:
        record["read_at"] = at
        changed = True
    return changed


def other_side(sender: Sender) -> Sender:
    return "handler" if sender == "caller" else "caller"


def caller_view(record: ChatRecord) -> CallerChatRecord:
    return {
        "message_id": record["message_id"],
        "seq": record["seq"],
        "sender": record["sender"],
        "text": record["text"],
        "at": record["at"],
        "translation": record["translation"],
        "delivered_at": record["delivered_at"],
        "read_at": record["read_at"],
    }


def message_event(record: ChatRecord) -> ChatMessage:
    """The evidence of a message: who, when, the text, its language and any translation."""
    return {
        "event": "chat_message",
        "at": record["at"],
        "message_id": record["message_id"],
        "sender": record["sender"],
        "by": record["by"],
        "text": record["text"],
        "language": record["language"],
        "translation": record["translation"],
    }
