"""One JSON POST to an SMS provider, with a deadline, where anything but a 2xx is a failure."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from signalling.sms.base import SmsError


async def post_json(
    provider: str, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float
) -> None:
    """Raise ``SmsError`` naming only the provider and what went wrong: never the URL (it
    may hold a key), the body (number and link) nor the provider's answer (it may echo them).

    A session per message: links go out a few times an hour, so there is no pool worth
    keeping open (and none to close at shutdown).
    """
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.post(
                url,
                data=body,
                headers={"Content-Type": "application/json", **headers},
                allow_redirects=False,
            ) as response,
        ):
            if not 200 <= response.status < 300:
                raise SmsError(f"{provider} answered HTTP {response.status}")
    except TimeoutError:
        raise SmsError(f"{provider} did not answer within {timeout_s:g} s") from None
    except aiohttp.ClientError as exc:
        raise SmsError(f"cannot reach {provider} ({type(exc).__name__})") from None
