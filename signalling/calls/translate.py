"""Machine translation of chat through a (self-hosted) LibreTranslate server, off unless
``SCENELINK_TRANSLATE_URL`` is set.

``POST /translate`` with ``q``, ``source``, ``target``, ``format: "text"`` and the optional
``api_key``; the answer's ``translatedText``. A server that is down, slow past the deadline or
refusing gives no translation (the original alone is shown and kept), logged once until it
answers again, like the other outside services (``webservice``).
"""

from __future__ import annotations

from signalling.calls.chat import Translation
from signalling.calls.webservice import JsonService


class Translator:
    def __init__(self, url: str | None, api_key: str | None, timeout_s: float) -> None:
        self.url = url.rstrip("/") if url else None
        self.api_key = api_key
        self._service = JsonService("LibreTranslate", timeout_s)

    @property
    def enabled(self) -> bool:
        return self.url is not None

    async def translate(self, text: str, source: str, target: str) -> Translation | None:
        """``text`` from ``source`` into ``target`` (language codes), or None."""
        if self.url is None or source == target:
            return None
        body: dict[str, str] = {"q": text, "source": source, "target": target, "format": "text"}
        if self.api_key:
            body["api_key"] = self.api_key
        answer = await self._service.call("POST", f"{self.url}/translate", json=body)
        if answer is None:
            return None
        translated = answer.get("translatedText") if isinstance(answer, dict) else None
        if not isinstance(translated, str) or not translated.strip():
            self._service.outage.failed("no translatedText in the answer")
            return None
        self._service.outage.answered()
        return {"language": target, "text": translated}

    async def close(self) -> None:
        await self._service.close()
