"""The one place that sets up logging: readable lines, or one JSON object per line.

JSON lines (python-json-logger) carry ``timestamp``, ``level``, ``logger``, ``message`` and
whatever a call passes as ``extra``, so a log shipper needs no parsing rules.
"""

from __future__ import annotations

import logging
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def formatter(log_format: LogFormat) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
        )
    return logging.Formatter(TEXT_FORMAT)


def configure_logging(
    level: str | int, log_format: LogFormat = "text", *, replace: bool = False
) -> None:
    """One handler on stderr in ``log_format``, unless the root logger has one already;
    ``replace`` drops those (``serve``, once its settings name the format)."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format))
    logging.basicConfig(level=level, handlers=[handler], force=replace)
