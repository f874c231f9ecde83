"""JSON from outside (request bodies, WebSocket and data-channel messages, a provider's
answers) is decoded here, with its nesting bounded: ``'[' * 30000`` is refused like any other
malformed text instead of raising RecursionError where nobody expects it."""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32  # what SceneLink accepts is two or three levels deep


class BadJson(ValueError):
    """Not JSON, or nested deeper than ``MAX_DEPTH``."""


def parse_json(text: str | bytes) -> Any:
    try:
        value = json.loads(text)
    except RecursionError:
        raise BadJson(f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise BadJson(str(exc)) from None
    level = [value]
    for _ in range(MAX_DEPTH):  # one level at a time: no recursion here either
        level = [
            child
            for node in level
            if isinstance(node, (list, dict))
            for child in (node.values() if isinstance(node, dict) else node)
        ]
    if any(isinstance(node, (list, dict)) for node in level):
        raise BadJson(f"nested deeper than {MAX_DEPTH} levels")
    return value
