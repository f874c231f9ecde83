"""Untrusted JSON: bounded nesting, one error type for every malformed text."""

from __future__ import annotations

import pytest

from signalling.safejson import MAX_DEPTH, BadJson, parse_json


def nested(depth: int) -> str:
    """Objects in objects, a list innermost: ``depth`` levels."""
    return '{"a": ' * (depth - 1) + "[1]" + "}" * (depth - 1)


def test_nesting_up_to_the_limit_is_accepted() -> None:
    assert parse_json(nested(MAX_DEPTH)) is not None
    assert parse_json(b'{"type": "fix", "lat": [1, {"b": null}]}')["type"] == "fix"


@pytest.mark.parametrize(
    "text", [nested(MAX_DEPTH + 1), "[" * 30000, "[" * 900 + "]" * 900, "{nope", b"\xff", ""]
)
def test_too_deep_or_malformed_is_one_error(text: str | bytes) -> None:
    with pytest.raises(BadJson):
        parse_json(text)
