"""Chat limits: length, control characters and binary, language tags, the per-side rate, and
delivery and read state."""

from __future__ import annotations

import pytest

from signalling.calls.chat import (
    ChatRefused,
    apply_receipt,
    caller_view,
    check_language,
    check_rate,
    check_text,
    message_event,
    new_message,
)
from signalling.calls.state import MemoryStore
from signalling.config import Settings


def test_text_within_the_limits_is_kept_exactly() -> None:
    text = "I'm hiding upstairs\nhe has a knife\t(kitchen) – Rwy'n ofnus 😨"
    assert check_text(text, 100) == text


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("", "text"),
        ("   \n", "text"),
        (42, "text"),
        (b"bytes", "text"),
        ("x" * 11, "chat_max_chars"),
        ("bell\x07", "control_characters"),
        ("nul\x00", "control_characters"),
        ("esc\x1b[2J", "control_characters"),
        ("del\x7f", "control_characters"),
        ("surrogate\ud800", "control_characters"),
    ],
)
def test_refused_text_names_the_limit(text: object, limit: str) -> None:
    with pytest.raises(ChatRefused) as refused:
        check_text(text, 10 if limit == "chat_max_chars" else 100)
    assert refused.value.limit == limit


def test_control_character_refusal_names_the_character() -> None:
    with pytest.raises(ChatRefused, match="U\\+0007"):
        check_text("a\x07", 10)


@pytest.mark.parametrize(
    ("tag", "language"),
    [("cy", "cy"), ("en-GB", "en"), ("CY", "cy"), ("pt_BR", "pt"), ("", None), ("../x", None)],
)
def test_language_tags(tag: str, language: str | None) -> None:
    assert check_language(tag) == language
    assert check_language(None) is None


async def test_each_side_has_its_own_rate() -> None:
    settings = Settings(chat_rate_messages=2, chat_rate_window_s=60)
    store = MemoryStore()
    for attempt in ("a", "b"):
        await check_rate(store, settings, "s1", "caller", attempt)
    with pytest.raises(ChatRefused) as refused:
        await check_rate(store, settings, "s1", "caller", "c")
    assert refused.value.limit == "chat_rate"
    assert refused.value.retry_after_s is not None and 0 < refused.value.retry_after_s <= 60
    assert "more than 2 messages in 60 s" in str(refused.value)
    await check_rate(store, settings, "s1", "handler", "d")  # the other side is not held
    await check_rate(store, settings, "s2", "caller", "e")  # nor another session


def test_receipts_deliver_then_read_once() -> None:
    message = new_message(
        "handler", "alice", "Help is on the way", "2026-01-01T00:00:00+00:00", "en"
    )
    assert apply_receipt(message, "delivered", "t1")
    assert not apply_receipt(message, "delivered", "t2")
    assert message["delivered_at"] == "t1" and message["read_at"] is None
    assert apply_receipt(message, "read", "t3")
    assert not apply_receipt(message, "read", "t4")
    assert message["read_at"] == "t3"
    read_first = new_message("caller", None, "ok", "t", None)
    assert apply_receipt(read_first, "read", "t5")  # read implies delivered
    assert read_first["delivered_at"] == "t5"


def test_the_caller_is_not_told_the_handlers_name_and_the_event_keeps_it() -> None:
    message = new_message("handler", "alice", "Stay where you are", "t", "en")
    assert "by" not in caller_view(message)
    event = message_event(message)
    assert event["event"] == "chat_message" and event["by"] == "alice"
    assert event["text"] == "Stay where you are" and event["translation"] is None
