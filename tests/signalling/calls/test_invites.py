"""The invite types' table: what each shares, says by SMS and how long its link lives."""

from __future__ import annotations

from typing import get_args

from signalling.calls.invites import INVITES, SessionMode, invite, media_of
from signalling.config import Settings, load_settings
from signalling.smstext import SMS_LIMIT, render, septets


def test_every_invite_type_has_its_row_and_its_own_sms_setting() -> None:
    assert set(INVITES) == set(get_args(SessionMode))
    for kind in INVITES.values():
        assert kind.sms_setting in Settings.model_fields
    assert invite("bail_check").media == "location" and invite("bail_check").required_place
    assert invite("screening").media == "video"
    assert invite("screening").appointment and invite("screening").uploads_first
    assert invite("missing_person").media == "location"
    assert invite("missing_person").tracking == "until_stopped"
    assert {k for k, v in INVITES.items() if v.tracking == "until_stopped"} == {"missing_person"}


def test_a_recorded_mode_read_back() -> None:
    assert media_of("bail_check") == "location" and media_of("missing_person") == "location"
    assert media_of("screening") == "video" and media_of("location") == "location"
    assert media_of("from a future version") == "video"


def test_each_invite_sms_is_one_gsm_segment_and_says_what_it_asks() -> None:
    settings = load_settings()
    link = "https://999.example-police.uk/c/" + "x" * 22
    texts = {m: render(settings.sms_template_for(m), "Police", link) for m in INVITES}
    assert all(septets(text) <= SMS_LIMIT for text in texts.values())
    assert "bail" in texts["bail_check"] and "video" not in texts["bail_check"]
    assert "appointment" in texts["screening"]
    assert "999 call" not in texts["missing_person"]  # a missing person did not call
    assert len(set(texts.values())) == len(INVITES)


def test_a_bail_template_that_does_not_fit_stops_the_start() -> None:
    try:
        load_settings(sms_template_bail="{force}: " + "x" * 120 + " {link}")
    except ValueError as exc:
        assert "SCENELINK_SMS_TEMPLATE_BAIL does not fit one SMS" in str(exc)
    else:
        raise AssertionError("a two-segment bail SMS was accepted")
