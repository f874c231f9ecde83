"""Dataclasses as the state store keeps them: plain JSON values, datetimes in ISO 8601."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import datetime
from typing import Any, Self


class Record:
    """Mixin for a dataclass kept in the state store (memory or Redis)."""

    __slots__ = ()

    def to_record(self) -> dict[str, Any]:
        data = asdict(self)  # type: ignore[call-overload]
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()}

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Self:
        """The inverse of ``to_record``; fields the record lacks take their defaults."""
        values: dict[str, Any] = {}
        for field in fields(cls):  # type: ignore[arg-type]
            if field.name not in data:
                continue
            value = data[field.name]
            if isinstance(value, str) and "datetime" in str(field.type):
                value = datetime.fromisoformat(value)
            values[field.name] = value
        return cls(**values)
