"""The SMS's text: the GSM 7-bit alphabet (GSM 03.38) and one-segment templates.

A text written only in the GSM 7-bit alphabet fits 160 characters in one SMS; a single
character outside it (a curly quote, an en dash, a Welsh ŵ) turns the whole message into
UCS-2, 70 characters a segment, and a link split over several segments looks like phishing.
Characters of the extension table (``€``, ``[``, ``~``...) are sent as two septets.
"""

from __future__ import annotations

import gsm0338  # noqa: F401  # registers the "gsm03.38" codec

GSM7 = "gsm03.38"

SMS_LIMIT = 160  # septets in one SMS
TEMPLATE_FIELDS = ("force", "link")
# What a default template is checked with when no public URL is configured.
TYPICAL_PUBLIC_URL = "https://999.example-police.uk"


def septets(text: str) -> int:
    """The text's length in GSM 7-bit septets (gsm0338's codec writes an extension-table
    character as escape + character); ``ValueError`` names the first character that is not
    in the GSM alphabet."""
    try:
        return len(text.encode(GSM7))
    except UnicodeEncodeError as exc:
        char = text[exc.start]
        raise ValueError(f"{char!r} (U+{ord(char):04X}) is not a GSM 7-bit character") from None


def render(template: str, force: str, link: str) -> str:
    return template.format(force=force, link=link)


def template_problem(template: str, force: str, longest_link: str) -> str | None:
    """Why ``template`` would not make a one-segment GSM 7-bit SMS with ``force`` and the
    longest link expected; None when it would."""
    try:
        text = render(template, force, longest_link)
    except (AttributeError, IndexError, KeyError, ValueError) as exc:
        return f"only {{force}} and {{link}} may be used ({type(exc).__name__}: {exc})"
    if longest_link not in text:
        return "it has no {link}"
    try:
        length = septets(text)
    except ValueError as exc:
        return str(exc)
    if length > SMS_LIMIT:
        return (
            f"it is {length} GSM characters with the force name {force!r} and the link "
            f"{longest_link} ({len(longest_link)} characters); one SMS holds {SMS_LIMIT}"
        )
    return None
