"""The caller page's languages: one catalogue file each, web_client/static/i18n/<lang>.json.

A force adds a language by dropping in a file (and an SMS template): the server lists the
files once, at start-up, and the page, the console's send form and the API take their
languages from that list. English is the fallback for any key a language lacks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

FALLBACK = "en"
# A catalogue's name is its language: a lower-case BCP 47 primary tag, maybe with a region.
LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")


@dataclass(frozen=True, slots=True)
class Language:
    code: str  # the catalogue file's name: "en", "cy"
    name: str  # in its own words ("Cymraeg"): the catalogue's "language.name"


class CatalogueError(ValueError):
    """A catalogue file that the caller page could not use."""


def _catalogue_dir() -> Any:
    return resources.files("web_client").joinpath("static", "i18n")


def read_catalogue(code: str) -> dict[str, str]:
    """One language's flat key -> text map, checked to be one."""
    path = _catalogue_dir().joinpath(f"{code}.json")
    try:
        strings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CatalogueError(f"caller-page catalogue {code}.json: {exc}") from None
    if not isinstance(strings, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in strings.items()
    ):
        raise CatalogueError(f"caller-page catalogue {code}.json is not a flat text map")
    return strings


@cache
def languages() -> tuple[Language, ...]:
    """Every catalogue shipped, English first (read once: the files do not change)."""
    codes = sorted(
        entry.name.removesuffix(".json")
        for entry in _catalogue_dir().iterdir()
        if entry.name.endswith(".json") and LANGUAGE_TAG.match(entry.name.removesuffix(".json"))
    )
    if FALLBACK not in codes:
        raise CatalogueError(f"no caller-page catalogue {FALLBACK}.json (the fallback)")
    codes.sort(key=lambda code: code != FALLBACK)
    return tuple(Language(code, read_catalogue(code).get("language.name", code)) for code in codes)


def language_codes() -> tuple[str, ...]:
    return tuple(language.code for language in languages())


def known_language(code: str) -> str:
    """A language the caller page has a catalogue for (a request's ``language``)."""
    if code not in language_codes():
        raise ValueError(
            f"no caller-page catalogue {code!r}; there are: {', '.join(language_codes())}"
        )
    return code
