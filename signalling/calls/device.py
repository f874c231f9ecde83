"""The caller's browser and device in words, from the page's user agent (ua-parser)."""

from __future__ import annotations

from ua_parser import parse

from recorder.events import CallerDevice

MAX_USER_AGENT = 512


def _version(*parts: str | None) -> str:
    return ".".join(p for p in parts if p)


def caller_device(user_agent: str) -> CallerDevice:
    """E.g. browser "Mobile Safari 17.5", device "iPhone (iOS 17.5)"; None where unknown.

    Blocking the first time (ua-parser compiles its rules): call it off the event loop.
    """
    user_agent = user_agent[:MAX_USER_AGENT]
    result = parse(user_agent)
    browser = os_name = hardware = None
    if result.user_agent is not None:
        ua = result.user_agent
        browser = f"{ua.family} {_version(ua.major, ua.minor)}".strip()
    if result.os is not None:
        os_ = result.os
        os_name = f"{os_.family} {_version(os_.major, os_.minor)}".strip()
    if result.device is not None and result.device.family != "Other":
        hardware = result.device.family
    device = f"{hardware} ({os_name})" if hardware and os_name else hardware or os_name
    return {"user_agent": user_agent, "browser": browser, "device": device}


def families(user_agent: str) -> tuple[str | None, str | None]:
    """The browser and the OS by family and major version (``"Mobile Safari 17"``,
    ``"iOS 17"``): enough to group callers by, too coarse to single one out."""
    result = parse(user_agent[:MAX_USER_AGENT])
    browser = os_name = None
    if result.user_agent is not None:
        browser = f"{result.user_agent.family} {result.user_agent.major or ''}".strip()
    if result.os is not None:
        os_name = f"{result.os.family} {result.os.major or ''}".strip()
    return browser, os_name
