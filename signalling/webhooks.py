"""Session events for other systems (a CAD): each POSTed as signed JSON to one URL.

Nothing here may delay a call: the service only queues an event. Each session's events go out
in order (one worker per session; a later event waits for the earlier ones), a failure or a
timeout is tried again after a doubling wait (capped), and an event is given up after
``webhook_attempts`` with an ERROR log. The body is signed exactly as the SMS webhook's is.

Every attempt is a line in ``<data dir>/webhooks/deliveries.jsonl`` rather than in the audit
trail: the trail records people's use of personal data (DPA 2018 s.62), these are a machine's
outbound messages carrying none (no phone number, no name of a caller), and a receiver down for
an hour would otherwise fill the trail with retries.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Literal, get_args

from typing_extensions import TypedDict  # pydantic documents it (Python < 3.12)

from recorder.durable import append_line, make_folder
from recorder.events import EvidenceEvent, now_iso
from signalling.config import Settings
from signalling.disclosure.exports import ExportJob
from signalling.sms.base import SmsError
from signalling.sms.http import post_json
from signalling.sms.webhook import SIGNATURE_HEADER, signature

logger = logging.getLogger(__name__)

EVENT_HEADER = "X-SceneLink-Event"
DELIVERY_HEADER = "X-SceneLink-Delivery"


class _Hook(TypedDict):
    id: str  # unique per event, the same on every retry: a receiver drops one it has seen
    sequence: int  # 1, 2, ... per session (per export), in the order they are delivered
    at: str  # when it happened (ISO 8601, UTC)


class _SessionHook(_Hook):
    session_id: str


class SessionCreatedHook(_SessionHook):
    """A call handler sent a link (the number is not sent: the CAD has it)."""

    event: Literal["session_created"]
    incident_ref: str
    mode: str  # video or location
    created_by: str


class LinkOpenedHook(_SessionHook):
    """The caller tapped the link (their browser and device, as the user agent names them)."""

    event: Literal["link_opened"]
    browser: str | None
    device: str | None


class LiveHook(_SessionHook):
    """Media from the caller is flowing (again, after a reconnection)."""

    event: Literal["live"]


class EndedHook(_SessionHook):
    """The session ended; ``by`` is the operator who ended it (or ``caller``)."""

    event: Literal["ended"]
    by: str


class BundleReadyHook(_SessionHook):
    """The recording is closed, signed and in the evidence store: ``recording_url`` answers."""

    event: Literal["bundle_ready"]
    manifest_sha256: str  # of manifest.jws as stored
    recording_url: str


class ExportReadyHook(_Hook):
    """A disclosure package is built; only the person who asked for it can download it."""

    event: Literal["export_ready"]
    export_id: str
    session_ids: list[str]
    requested_by: str
    export_url: str


WebhookPayload = (
    SessionCreatedHook | LinkOpenedHook | LiveHook | EndedHook | BundleReadyHook | ExportReadyHook
)
WEBHOOK_PAYLOADS: tuple[type[WebhookPayload], ...] = get_args(WebhookPayload)

Outcome = Literal["delivered", "retry", "given_up", "abandoned"]


class DeliveryAttempt(TypedDict):
    """One line of the delivery log."""

    at: str
    id: str
    event: str
    key: str  # the session (or export:<id>) whose order it keeps
    sequence: int
    attempt: int
    outcome: Outcome
    error: str | None  # what went wrong, never the URL nor the receiver's answer
    ms: float


class Webhooks:
    """The queue of events for ``url``; ``start`` on the loop, ``close`` to drain."""

    def __init__(
        self,
        url: str,
        secret: bytes,
        log_path: Path,
        *,
        timeout_s: float,
        backoff_s: float,
        backoff_max_s: float,
        attempts: int,
    ) -> None:
        self.url = url
        self._secret = secret
        self.log_path = log_path
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.attempts = attempts
        self._queues: dict[str, deque[WebhookPayload]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._sequence: defaultdict[str, int] = defaultdict(int)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Webhooks | None:
        if settings.webhook_url is None or settings.webhook_secret is None:
            return None  # the validator has refused a URL without its secret
        return cls(
            settings.webhook_url,
            settings.webhook_secret.get_secret_value().encode(),
            settings.layout.webhook_deliveries,
            timeout_s=settings.webhook_timeout_s,
            backoff_s=settings.webhook_backoff_s,
            backoff_max_s=settings.webhook_backoff_max_s,
            attempts=settings.webhook_attempts,
        )

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    # -- what is announced -------------------------------------------------------------

    def _envelope(self, key: str) -> tuple[str, int]:
        self._sequence[key] += 1
        return secrets.token_hex(16), self._sequence[key]

    def session_event(self, session_id: str, event: EvidenceEvent) -> None:
        """An evidence event of the session; the ones other systems are told of are queued."""
        hook: WebhookPayload
        if event["event"] == "session_created":
            hook = {
                "event": "session_created",
                "session_id": session_id,
                "at": event["at"],
                "incident_ref": event["incident_ref"],
                "mode": event["mode"],
                "created_by": event["by"],
                "id": "",
                "sequence": 0,
            }
        elif event["event"] == "link_opened":
            hook = {
                "event": "link_opened",
                "session_id": session_id,
                "at": event["at"],
                "browser": event["browser"],
                "device": event["device"],
                "id": "",
                "sequence": 0,
            }
        elif event["event"] == "live":
            hook = {
                "event": "live",
                "session_id": session_id,
                "at": event["at"],
                "id": "",
                "sequence": 0,
            }
        elif event["event"] == "ended":
            hook = {
                "event": "ended",
                "session_id": session_id,
                "at": event["at"],
                "by": event["by"],
                "id": "",
                "sequence": 0,
            }
        else:
            return
        self._queue(session_id, hook)

    def bundle_stored(self, session_id: str, manifest_sha256: str) -> None:
        """From the spool's thread: the closed, signed bundle is in the store."""
        hook: BundleReadyHook = {
            "event": "bundle_ready",
            "session_id": session_id,
            "at": now_iso(),
            "manifest_sha256": manifest_sha256,
            "recording_url": f"/api/recordings/{session_id}",
            "id": "",
            "sequence": 0,
        }
        loop = self._loop
        try:
            if loop is None:
                raise RuntimeError("not started")
            loop.call_soon_threadsafe(self._queue, session_id, hook)
        except RuntimeError:  # the loop has closed: the server has stopped
            logger.error("webhook bundle_ready (%s) not delivered: the server stopped", session_id)

    def export_ready(self, job: ExportJob) -> None:
        export_id = job.request.export_id
        hook: ExportReadyHook = {
            "event": "export_ready",
            "at": now_iso(),
            "export_id": export_id,
            "session_ids": job.session_ids,
            "requested_by": job.request.requested_by,
            "export_url": f"/api/exports/{export_id}",
            "id": "",
            "sequence": 0,
        }
        self._queue(f"export:{export_id}", hook)

    def _queue(self, key: str, hook: WebhookPayload) -> None:
        hook["id"], hook["sequence"] = self._envelope(key)
        if self._closed:
            logger.error(
                "webhook %s (%s #%d) not delivered: the server is stopping",
                hook["event"],
                key,
                hook["sequence"],
            )
            return
        self._queues.setdefault(key, deque()).append(hook)
        if key not in self._workers:
            self._workers[key] = asyncio.ensure_future(self._drain(key))

    # -- delivery ----------------------------------------------------------------------

    async def _drain(self, key: str) -> None:
        queue = self._queues[key]
        try:
            while queue:
                await self._deliver(key, queue[0])
                queue.popleft()
        finally:
            del self._queues[key], self._workers[key]

    async def _deliver(self, key: str, hook: WebhookPayload) -> None:
        body = json.dumps(hook).encode()
        headers = {
            SIGNATURE_HEADER: signature(self._secret, body),
            EVENT_HEADER: hook["event"],
            DELIVERY_HEADER: hook["id"],
        }
        for attempt in range(1, self.attempts + 1):
            started = time.monotonic()
            error: str | None = None
            try:
                await post_json("the event webhook", self.url, body, headers, self.timeout_s)
            except SmsError as exc:  # post_json's failure, named for its first user
                error = str(exc)
            last = attempt == self.attempts
            outcome: Outcome = "delivered" if error is None else "given_up" if last else "retry"
            await self._log(key, hook, attempt, outcome, error, time.monotonic() - started)
            if error is None:
                return
            if last:
                logger.error(
                    "webhook %s (%s #%d) given up after %d attempts: %s",
                    hook["event"],
                    key,
                    hook["sequence"],
                    attempt,
                    error,
                )
                return
            await asyncio.sleep(min(self.backoff_s * 2 ** (attempt - 1), self.backoff_max_s))

    async def _log(
        self,
        key: str,
        hook: WebhookPayload,
        attempt: int,
        outcome: Outcome,
        error: str | None,
        seconds: float,
    ) -> None:
        record: DeliveryAttempt = {
            "at": now_iso(),
            "id": hook["id"],
            "event": hook["event"],
            "key": key,
            "sequence": hook["sequence"],
            "attempt": attempt,
            "outcome": outcome,
            "error": error,
            "ms": round(seconds * 1000, 1),
        }
        line = json.dumps(record).encode() + b"\n"
        await asyncio.to_thread(self._append, line)

    def _append(self, line: bytes) -> None:
        make_folder(self.log_path.parent)
        append_line(self.log_path, line)

    async def close(self, drain_s: float | None = None) -> None:
        """Give queued events until ``drain_s`` (the request deadline by default) to go out;
        what is still queued then is abandoned, each logged at ERROR, as is any event
        announced from now on."""
        self._closed = True
        workers = list(self._workers.values())
        if workers:
            await asyncio.wait(workers, timeout=self.timeout_s if drain_s is None else drain_s)
        for key, queue in list(self._queues.items()):
            for hook in queue:
                logger.error(
                    "webhook %s (%s #%d) not delivered: the server stopped",
                    hook["event"],
                    key,
                    hook["sequence"],
                )
                await self._log(key, hook, 0, "abandoned", "server stopped", 0.0)
        left = list(self._workers.values())
        for worker in left:
            worker.cancel()
        await asyncio.gather(*left, return_exceptions=True)
