"""The caller page's language catalogues: complete, same placeholders, and the pages' English."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest
from pydantic import ValidationError

from signalling.config import WELSH_SMS, load_settings
from signalling.languages import FALLBACK, language_codes, languages, read_catalogue

PLACEHOLDER = re.compile(r"\{(\w+)\}")
# The page's own markup in a text: **bold**.
BOLD = "**"


def test_english_first_and_welsh_shipped() -> None:
    assert language_codes()[0] == FALLBACK
    assert "cy" in language_codes()
    names = {language.code: language.name for language in languages()}
    assert names["en"] == "English" and names["cy"] == "Cymraeg"


@pytest.mark.parametrize("code", [c for c in language_codes() if c != FALLBACK])
def test_every_language_has_every_key_with_the_same_placeholders(code: str) -> None:
    english = read_catalogue(FALLBACK)
    other = read_catalogue(code)
    assert sorted(set(english) - set(other)) == [], f"{code}.json lacks these keys"
    assert sorted(set(other) - set(english)) == [], f"{code}.json has keys English lacks"
    for key, text in english.items():
        assert set(PLACEHOLDER.findall(other[key])) == set(PLACEHOLDER.findall(text)), key
        assert other[key].count(BOLD) == text.count(BOLD), key
        assert other[key].strip(), key


class _Keyed(HTMLParser):
    """The text of each element that names a catalogue key (data-i18n), as written."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: dict[str, str] = {}
        self.attrs: dict[str, str] = {}
        self._open: list[tuple[str, str, list[str]]] = []  # (tag, key, text parts)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        key = found.get("data-i18n")
        if key and found.get("data-i18n-attr"):
            self.attrs[key] = found.get(found["data-i18n-attr"] or "") or ""
        elif key:
            self._open.append((tag, key, []))
        elif tag == "strong" and self._open:
            self._open[-1][2].append(BOLD)

    def handle_endtag(self, tag: str) -> None:
        if tag == "strong" and self._open:
            self._open[-1][2].append(BOLD)
        elif self._open and self._open[-1][0] == tag:
            _, key, parts = self._open.pop()
            self.texts[key] = "".join(parts)

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][2].append(data)


@pytest.mark.parametrize("page", ["caller.html", "expired.html", "early.html"])
def test_the_pages_english_is_the_catalogues(page: str) -> None:
    """The HTML's own words are what shows before the catalogue arrives (or if it cannot):
    they must be the English catalogue's, so nothing drifts."""
    parser = _Keyed()
    parser.feed(resources.files("web_client").joinpath(page).read_text(encoding="utf-8"))
    english = read_catalogue(FALLBACK)
    assert parser.texts, "no data-i18n element"
    for key, text in (parser.texts | parser.attrs).items():
        key = key.replace("{{mode}}", "video")
        expected = english[key].replace("{force}", "{{force}}")
        assert text == expected, key


def test_every_key_used_by_the_page_script_exists() -> None:
    english = read_catalogue(FALLBACK)
    script = resources.files("web_client").joinpath("static", "caller.js").read_text("utf-8")
    used = set(re.findall(r"'((?:status|step|accuracy)\.[a-z_]+)'", script))
    assert used and used <= set(english), sorted(used - set(english))


def test_the_default_language_needs_a_catalogue(tmp_path: Path) -> None:
    assert load_settings(data_dir=tmp_path, default_language="cy").default_language == "cy"
    with pytest.raises(ValidationError, match="SCENELINK_DEFAULT_LANGUAGE 'fr' has no caller-"):
        load_settings(data_dir=tmp_path, default_language="fr")


def test_each_language_has_its_sms_and_english_fills_the_gaps(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.sms_template_for("video", "cy").startswith("{force}: fel y gofynnwyd")
    assert settings.sms_template_for("video", "en") == settings.sms_template
    assert settings.sms_template_for("video", None) == settings.sms_template
    welsh_default = load_settings(data_dir=tmp_path, default_language="cy")
    assert welsh_default.sms_template_for("location", None) == WELSH_SMS["location"]
    only_video = load_settings(data_dir=tmp_path, sms_templates={"cy": {"video": "{force} {link}"}})
    assert only_video.sms_template_for("video", "cy") == "{force} {link}"
    assert only_video.sms_template_for("location", "cy") == only_video.sms_template_location


@pytest.mark.parametrize(
    ("templates", "problem"),
    [
        ({"cy": {"video": "{force}: tapiwch ŵ {link}"}}, r"\['cy'\]\['video'\] .*U\+0175"),
        ({"cy": {"location": "{force}: " + "tapiwch " * 15 + "{link}"}}, r"'location'\] .*160"),
        ({"cy": {"video": "{force}: tapiwch"}}, r"\['cy'\]\['video'\] .*no \{link\}"),
        ({"fr": {"video": "{force}: {link}"}}, r"\['fr'\]: no caller-page catalogue"),
        ({"cy": {"selfie": "{force}: {link}"}}, r"sms_templates\.cy\.selfie"),
    ],
)
def test_a_language_sms_that_is_not_one_gsm_sms_stops_the_start(
    tmp_path: Path, templates: dict[str, dict[str, str]], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        load_settings(data_dir=tmp_path, sms_templates=templates)
