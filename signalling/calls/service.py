"""The life of a call session: link, caller, viewers, fixes, end. HTTP-free, so tests and
a dispatch (CAD) integration drive the same code as the console."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCSessionDescription

from recorder.events import (
    CallerStateChanged,
    ConsentGiven,
    Ended,
    EvidenceEvent,
    LinkOpened,
    MediaGapEnded,
    MediaStateChanged,
    RequiredPlace,
    SessionCreated,
    SilentMode,
    iso_at,
)
from recorder.evidence import Evidence
from recorder.recording import RecordingStatus, SessionRecorder
from signalling.audit.trail import AuditTrail
from signalling.calls.bail import check, worth_recording
from signalling.calls.caller_state import (
    InvalidCallerState,
    caller_summary,
    parse_caller_state,
    stopped_sharing,
)
from signalling.calls.chat import (
    CallerChatState,
    CallerMessage,
    ChatRecord,
    ChatRefused,
    Receipt,
    Sender,
    caller_view,
    check_language,
)
from signalling.calls.conversation import Conversations
from signalling.calls.device import caller_device
from signalling.calls.feed import ConsoleSession, invite_view
from signalling.calls.geocoding import PlaceRecord, ReverseGeocoder, What3Words
from signalling.calls.invites import SessionMode, invite
from signalling.calls.links import CallerLink, link_hash, new_link_id, well_formed
from signalling.calls.location import FixRecord, GpsFix, InvalidFix, check_plausible, parse_fix
from signalling.calls.rejections import RejectedFixLog
from signalling.calls.sdp import check_offer, refused_late
from signalling.calls.sessions import CallSession, utcnow
from signalling.calls.state import StateStore
from signalling.calls.turn import ice_servers_for
from signalling.cluster.registry import LocalRegistry, Registry
from signalling.config import Settings
from signalling.safejson import parse_json
from signalling.sms import SmsError, SmsMessage, SmsSender
from signalling.sms.phone import mask, normalise_mobile
from signalling.smstext import render
from streamserver.quality import SAMPLE_S, NetworkQuality, QualityMeter, changed_meaningfully
from streamserver.session import MediaGap, MediaSession

logger = logging.getLogger(__name__)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


# Chat and silent mode on the caller's data channel (see ``_caller_chat``).
CALLER_CHAT_MESSAGES = frozenset({"chat", "chat_receipt", "chat_sync", "silent"})


class LinkNotUsable(Exception):
    """The caller's link is forged, expired, replaced or its session has ended.

    ``session_id`` names the session when the link was a real one (never for a forged
    token): the refusal is then shown to its call handler (``link_refused``)."""

    def __init__(self, reason: str, session_id: str | None = None) -> None:
        super().__init__(reason)
        self.session_id = session_id


class TooEarly(LinkNotUsable):
    """A screening appointment's link opened before its time: the caller is told when."""

    def __init__(self, opens_at: datetime, session_id: str) -> None:
        super().__init__(f"too early: opens at {opens_at.isoformat()}", session_id)
        self.opens_at = opens_at


class SessionEnded(Exception):
    pass


class CallerConnected(Exception):
    """The caller has opened the link: a new one would only cut them off."""


class NotOwner(Exception):
    """Another worker owns the session: only the owner touches its media and evidence."""


class SessionService:
    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        sms: SmsSender,
        evidence: Evidence,
        audit: AuditTrail | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.settings = settings
        # Which sessions this worker owns (signalling.cluster); alone, all of them.
        self.cluster = registry or LocalRegistry(settings.node_name, "")
        self.audit = audit  # for what the service does on its own (a bail check's verdict)
        self._bail_locks: dict[str, asyncio.Lock] = {}
        self.evidence = evidence
        self.store = store
        self.sms = sms
        self._media: dict[str, MediaSession] = {}
        self._recorders: dict[str, SessionRecorder] = {}
        self._last_fix: dict[str, GpsFix] = {}
        self._rejected_fixes = RejectedFixLog(logger)
        self._tasks: set[asyncio.Task[None]] = set()
        self._network: dict[str, NetworkQuality] = {}  # the caller's, on this node
        self._meters: dict[str, asyncio.Task[None]] = {}
        key = settings.w3w_api_key
        self.what3words = What3Words(
            key.get_secret_value() if key else None,
            settings.w3w_base_url,
            settings.place_timeout_s,
        )
        self.geocoder = ReverseGeocoder(
            settings.geocoder_url, settings.geocoder_user_agent, settings.place_timeout_s
        )
        self._place_busy: set[str] = set()
        self._place_next: dict[str, FixRecord] = {}
        self.chat = Conversations(settings, store, self._record_chat)
        self._to_caller_feeds: dict[str, asyncio.Task[None]] = {}
        # Told of the session's milestones (created, opened, live, ended) once recorded: the
        # event webhook. Called on the loop; each must only queue, never wait.
        self.listeners: list[Callable[[str, EvidenceEvent], None]] = []
        # Told each sample of a live caller's network quality (the stills fallback).
        self.quality_listeners: list[Callable[[str, NetworkQuality], None]] = []

    # -- call handler ------------------------------------------------------------------

    async def create(
        self,
        phone: str,
        incident_ref: str,
        mode: SessionMode,
        created_by: str,
        base_url: str,
        required_place: RequiredPlace | None = None,
        appointment: tuple[datetime, datetime] | None = None,
        language: str | None = None,
    ) -> CallSession:
        """``required_place`` for a bail check, ``appointment`` (start, end) for a screening
        appointment: the link opens only between them. ``language``: the handler's choice of
        the caller page's and the SMS's language (None: the caller's browser decides)."""
        e164 = normalise_mobile(phone, self.settings.phone_region)
        session_id = secrets.token_hex(8)
        now = utcnow()
        starts_at, ends_at = appointment or (None, None)
        link_expires_at = self._link_expiry(ends_at)
        link_id, token_id = await self._new_link(session_id, mode, link_expires_at)
        session = CallSession(
            id=session_id,
            incident_ref=incident_ref,
            phone=e164,
            mode=mode,
            state="link_sent",
            created_at=now,
            created_by=created_by,
            token_id=token_id,
            link_expires_at=link_expires_at,
            required_place=required_place,
            appointment_at=starts_at,
            appointment_ends_at=ends_at,
            language=language,
        )
        await self.cluster.claim(session_id)  # a new id: nobody else can hold it
        await self.store.create(session)
        created: SessionCreated = {
            "event": "session_created",
            "by": created_by,
            "at": now.isoformat(),
            "incident_ref": incident_ref,
            "mode": mode,
            "token_id": token_id,
            # The evidence (not the logs) keeps the number: right-of-access searches need it.
            "phone": e164,
        }
        if required_place is not None:
            created["required_place"] = required_place
        if language is not None:
            created["language"] = language
        if starts_at is not None and ends_at is not None:
            created["appointment"] = {
                "starts_at": starts_at.isoformat(),
                "ends_at": ends_at.isoformat(),
            }
        self._recorder(session_id).append_event(created)
        self._announce(session_id, created)
        return await self._send_link(session, link_id, base_url, created_by)

    async def resend(self, session_id: str, by: str, base_url: str) -> CallSession:
        """A fresh link for a caller who has not opened theirs (the SMS failed or never
        arrived); the old link stops working."""
        session = await self.store.get(session_id)
        if session.state == "ended":
            raise SessionEnded(session_id)
        if session.opened_at is not None:
            raise CallerConnected(session_id)
        link_expires_at = self._link_expiry(session.appointment_ends_at)
        link_id, token_id = await self._new_link(session_id, session.mode, link_expires_at)
        now = utcnow()
        session = await self._change(
            session_id,
            token_id=token_id,
            link_expires_at=link_expires_at,
            sms_status="pending",
            sms_error=None,
            link_refused=None,
        )
        self._recorder(session_id).append_event(
            {"event": "link_resent", "by": by, "at": now.isoformat(), "token_id": token_id}
        )
        return await self._send_link(session, link_id, base_url, by)

    async def _send_link(
        self, session: CallSession, link_id: str, base_url: str, by: str
    ) -> CallSession:
        """A failed delivery is kept on the session (and in the evidence) for the call
        handler to see and retry; it is not an error of the request."""
        link = f"{base_url.rstrip('/')}/c/{link_id}"
        force = self.settings.force_name
        template = self.settings.sms_template_for(session.mode, session.language)
        text = render(template, force, link)
        try:
            await self.sms.send(SmsMessage(session.id, force, session.phone, text, link, by))
        except SmsError as exc:
            logger.warning("session %s: SMS to %s failed: %s", session.id, mask(session.phone), exc)
            self._recorder(session.id).append_event(
                {"event": "link_not_sent", "reason": str(exc), "at": utcnow().isoformat()}
            )
            return await self._change(session.id, sms_status="failed", sms_error=str(exc))
        self._recorder(session.id).append_event({"event": "link_sent", "at": utcnow().isoformat()})
        return await self._change(session.id, sms_status="sent", sms_error=None)

    def _link_expiry(self, appointment_ends_at: datetime | None) -> datetime:
        """When an unopened link stops working: the end of its appointment, if any."""
        return appointment_ends_at or utcnow() + timedelta(seconds=self.settings.link_ttl_s)

    def _link_life_s(self, mode: SessionMode) -> float:
        """How long a link works after first use: a session's longest life, or (tracking
        until the handler stops) the longest a forgotten one is kept."""
        if invite(mode).tracking == "until_stopped":
            return self.settings.tracking_max_days * 86_400
        return self.settings.session_max_s

    async def _new_link(
        self, session_id: str, mode: SessionMode, link_expires_at: datetime
    ) -> tuple[str, str]:
        """A fresh link id for the session, kept in the store only as its hash, and the
        link's name for the evidence. The store keeps it for as long as any link can work
        (opened at the last moment, then a whole session), so a refusal can say why."""
        until = link_expires_at.timestamp() + self._link_life_s(mode)
        link = CallerLink(session_id, token_id=secrets.token_urlsafe(12))
        for _ in range(3):  # 128 random bits: a clash means a broken random source
            link_id = new_link_id()
            if await self.store.save_link(link_hash(link_id), link, until):
                return link_id, link.token_id
        raise RuntimeError("three link ids in a row were already taken")

    async def end(self, session_id: str, by: str) -> CallSession:
        session = await self.store.get(session_id)
        if session.state == "ended":
            return session
        logger.info("session %s ended by %s", session_id, by)
        session = await self._change(session_id, state="ended", ended_at=utcnow(), ended_by=by)
        media = self._media.pop(session_id, None)
        if (meter := self._meters.pop(session_id, None)) is not None:
            meter.cancel()
        if (feed := self._to_caller_feeds.pop(session_id, None)) is not None:
            feed.cancel()
        self._network.pop(session_id, None)
        if media is not None:
            await media.send_to_caller(json.dumps({"type": "ended"}))
            await media.close()  # ends the media; the recorder stays open for the record
        await self.chat.settle(session_id)  # messages still being translated are recorded
        recorder = self._recorder(session_id)
        ended: Ended = {
            "event": "ended",
            "by": by,
            "at": utcnow().isoformat(),
            "session": session.to_record(),
        }
        recorder.append_event(ended)
        self._announce(session_id, ended)
        # Kept registered while it closes: anything else for this session meets the closing
        # recorder (and fails loudly) instead of opening a second one on the same folder.
        await recorder.close()
        self._recorders.pop(session_id, None)
        self._last_fix.pop(session_id, None)
        self._bail_locks.pop(session_id, None)
        await self.cluster.release(session_id)
        return session

    async def add_viewer(
        self, session_id: str, offer: RTCSessionDescription, viewer: str, grant: str | None = None
    ) -> RTCSessionDescription:
        session = await self.store.get(session_id)
        if session.state == "ended":
            raise SessionEnded(session_id)
        check_offer(offer.sdp, required=set(), any_of={"audio", "video"})
        with refused_late():
            answer = await self._media_session(session_id).add_viewer(offer, grant)
        logger.info("session %s: live view by %s", session_id, viewer)
        self._recorder(session_id).append_event(
            {"event": "viewer_joined", "by": viewer, "at": utcnow().isoformat()}
        )
        return answer

    async def close_viewers(self, session_id: str, grant: str) -> int:
        """Cut off the viewers on this node that watch under ``grant`` (an ended share)."""
        media = self._media.get(session_id)
        return await media.close_viewers(grant) if media else 0

    async def record_event(self, session_id: str, event: EvidenceEvent) -> None:
        """An event for the session's evidential record (e.g. a disclosure to an officer).

        Once the session has ended its bundle is closed and signed: what happens after (a
        share withdrawn late) is in the audit trail, not added to the evidence.
        """
        if (await self.store.get(session_id)).state == "ended":
            logger.info("session %s has ended: %s kept in the audit trail", session_id, event)
            return
        self._recorder(session_id).append_event(event)

    async def live_recorder(self, session_id: str) -> SessionRecorder:
        """The recorder of a session that has not ended (``SessionEnded`` otherwise): files
        and stills join its bundle."""
        if (await self.store.get(session_id)).state == "ended":
            raise SessionEnded(session_id)
        return self._recorder(session_id)

    def live_media(self, session_id: str) -> MediaSession | None:
        """The session's media on this node, if a caller has connected here."""
        return self._media.get(session_id)

    def media_sessions(self) -> list[MediaSession]:
        """Every session's media on this node (metrics read their counters)."""
        return list(self._media.values())

    @property
    def fixes_rejected(self) -> int:
        """Fixes refused on this node since it started (the store counts per session)."""
        return self._rejected_fixes.total

    # -- caller ----------------------------------------------------------------------

    async def caller_session(self, token: str) -> CallSession:
        """Check a caller's link id (the SMS link's last part) against the session it opens;
        say why if it is refused. Only the id's hash is looked up."""
        link = await self.store.find_link(link_hash(token)) if well_formed(token) else None
        if link is None:
            raise LinkNotUsable("unknown link")
        try:
            session = await self.store.get(link.session_id)
        except KeyError as exc:
            raise LinkNotUsable("unknown session") from exc
        if not hmac.compare_digest(link.token_id, session.token_id):
            raise LinkNotUsable("replaced by a newer link", session.id)
        if session.state == "ended":
            raise LinkNotUsable("session ended", session.id)
        session_max = timedelta(seconds=self._link_life_s(session.mode))
        if session.opened_at is not None and utcnow() > session.opened_at + session_max:
            raise LinkNotUsable("expired", session.id)
        if session.opened_at is None and utcnow() > session.link_expires_at:
            raise LinkNotUsable("not opened in time", session.id)
        if session.appointment_at is not None and utcnow() < session.appointment_at:
            raise TooEarly(session.appointment_at, session.id)
        return session

    async def link_refused(self, refusal: LinkNotUsable) -> None:
        """A refused link that names a live session: its call handler sees it ("Link
        expired when tapped") and the evidence records it. Forged links name no session;
        an ended session's record is closed."""
        if refusal.session_id is None:
            return
        try:
            session = await self.store.get(refusal.session_id)
        except KeyError:
            return
        if session.state == "ended":
            return
        reason = str(refusal)
        self._recorder(session.id).append_event(
            {"event": "link_refused", "at": utcnow().isoformat(), "reason": reason}
        )
        if not isinstance(refusal, TooEarly):  # the link is good: nothing to resend
            await self._change(session.id, link_refused=reason)

    async def open_link(self, token: str, user_agent: str = "") -> CallSession:
        session = await self.caller_session(token)
        if session.opened_at is None:
            device = await asyncio.to_thread(caller_device, user_agent)
            opened: LinkOpened = {"event": "link_opened", "at": utcnow().isoformat(), **device}
            self._recorder(session.id).append_event(opened)
            self._announce(session.id, opened)
            session = await self._change(
                session.id, state="opened", opened_at=utcnow(), caller_device=device
            )
        return session

    async def caller_offer(
        self,
        token: str,
        offer: RTCSessionDescription,
        consent_version: str,
        user_agent: str = "",
        language: str | None = None,
    ) -> RTCSessionDescription:
        """``language``: the one the caller's page showed when they agreed (the evidence
        says which words they agreed to)."""
        session = await self.caller_session(token)
        # A video session takes whatever the caller can send (a refused microphone or
        # camera leaves the rest); a location-only one needs the data channel.
        if invite(session.mode).media == "video":
            check_offer(offer.sdp, required=set(), any_of={"application", "audio", "video"})
        else:
            check_offer(offer.sdp, required={"application"})
        if session.consent_at is None:
            device = await asyncio.to_thread(caller_device, user_agent)
            consent: ConsentGiven = {
                "event": "consent_given",
                "at": utcnow().isoformat(),
                "consent_version": consent_version,
                "user_agent": device["user_agent"],
                "browser": device["browser"],
                "device": device["device"],
            }
            if language is not None:
                consent["language"] = language
            self._recorder(session.id).append_event(consent)
            await self._change(
                session.id,
                consent_at=utcnow(),
                consent_version=consent_version,
                consent_language=language,
                caller_device=device,
            )
        media = self._media_session(session.id)
        with refused_late():
            answer = await media.accept_caller(offer)
        if media.codec != session.codec:
            await self._change(session.id, codec=media.codec)
        return answer

    async def handle_caller_message(self, session_id: str, text: str) -> None:
        """A data-channel message: a fix or the page's state. A malformed fix is counted and
        dropped, never stored; a malformed state report is logged and changes nothing."""
        try:
            if len(text.encode()) > self.settings.max_message_bytes:
                limit = self.settings.max_message_bytes
                await self._to_caller(
                    session_id, {"type": "error", "error": f"message larger than {limit} bytes"}
                )
                raise InvalidFix("message too large")
            message = parse_json(text)
        except (InvalidFix, ValueError) as exc:
            await self.fix_refused(session_id, str(exc))
            return
        if isinstance(message, dict) and message.get("type") in CALLER_CHAT_MESSAGES:
            await self._caller_chat(session_id, message)
            return
        if isinstance(message, dict) and message.get("type") == "caller_state":
            try:
                await self.caller_state(session_id, message)
            except InvalidCallerState as exc:
                logger.info("session %s: caller state refused: %s", session_id, exc)
            return
        try:
            await self.caller_fix(session_id, message)
        except InvalidFix:
            return

    async def fix_refused(self, session_id: str, reason: str) -> None:
        """Count a fix that was refused (wherever it came from) and log it, sparingly."""
        self._rejected_fixes.rejected(session_id, reason)
        await self.store.count_rejected_fix(session_id)

    async def caller_fix(self, session_id: str, message: object) -> None:
        """A fix message from the page (data channel or HTTPS): stored, or counted and
        refused with ``InvalidFix`` saying why."""
        try:
            session = await self.store.get(session_id)
            if session.state == "ended":
                raise InvalidFix("session ended")
            if not isinstance(message, dict) or message.get("type") != "fix":
                raise InvalidFix("not a fix message")
            fix = parse_fix(message, utcnow())
            previous = self._last_fix.get(session_id)
            if previous is not None and fix.same_reading(previous):
                return  # the page re-sends its last fix as a keep-alive
            check_plausible(previous, fix)
        except (InvalidFix, ValueError) as exc:
            await self.fix_refused(session_id, str(exc))
            raise InvalidFix(str(exc)) from None
        self._last_fix[session_id] = fix
        record = fix.to_json()
        await self.store.add_fix(session_id, record)
        self._recorder(session_id).append_fix(record)
        await self.store.publish(session_id, {"type": "fix", "fix": record})
        if session.required_place is not None:
            await self._bail_check(session_id, session.required_place, record)
        if self.what3words.enabled or self.geocoder.enabled:
            self._place_soon(session_id, record)

    async def _bail_check(self, session_id: str, place: RequiredPlace, fix: FixRecord) -> None:
        """Judge the fix against the required place: shown on the console at each fix,
        recorded and audited at the first and at each change of verdict (calls.bail). Fixes
        are handled concurrently, so the last result is read and replaced under a lock."""
        result = check(place, fix)
        async with self._bail_locks.setdefault(session_id, asyncio.Lock()):
            if worth_recording((await self.store.get(session_id)).bail_check, result):
                self._recorder(session_id).append_event(result)
                if self.audit is not None:
                    await self.audit.record(
                        "caller",
                        "collection.bail_check",
                        session_id,
                        verdict=result["verdict"],
                        distance_m=result["distance_m"],
                        accuracy_m=result["accuracy_m"],
                        tolerance_m=result["tolerance_m"],
                    )
            await self._change(session_id, bail_check=result)

    def _place_soon(self, session_id: str, record: FixRecord) -> None:
        """Look up the fix's words in the background, one lookup per session at a time: a
        fix arriving meanwhile waits as the session's next (a newer one replaces it)."""
        if session_id in self._place_busy:
            self._place_next[session_id] = record
            return
        self._place_busy.add(session_id)
        self._spawn(self._place(session_id, record))

    async def _place(self, session_id: str, record: FixRecord) -> None:
        try:
            while True:
                lat, lon = record["lat"], record["lon"]
                w3w, address = await asyncio.gather(
                    self.what3words.words(lat, lon), self.geocoder.address(lat, lon)
                )
                if w3w is not None or address is not None:
                    place: PlaceRecord = {
                        "type": "place",
                        "received_at": record["received_at"],
                        "w3w": w3w,
                        "address": address,
                    }
                    await self.store.add_place(session_id, place)
                    recorder = self._recorders.get(session_id)
                    if recorder is not None:
                        recorder.append_fix(place)  # its own line: location.jsonl only grows
                    await self.store.publish(session_id, {"type": "place", "place": place})
                next_record = self._place_next.pop(session_id, None)
                if next_record is None:
                    return
                record = next_record
        except Exception:
            logger.exception("place lookup for session %s", session_id)
        finally:
            self._place_busy.discard(session_id)
            self._place_next.pop(session_id, None)

    async def caller_state(self, session_id: str, message: dict[str, Any]) -> None:
        """The page's state (``InvalidCallerState`` if malformed: nothing changes). A change
        is kept on the session, shown on the consoles at once and recorded."""
        state = parse_caller_state(message)
        session = await self.store.get(session_id)
        if session.state == "ended" or session.caller_state == state:
            return
        stopped = stopped_sharing(session.caller_state, state, session.caller_stopped)
        summary = caller_summary(
            invite(session.mode).media, session.opened_at is not None, state, stopped=stopped
        )
        event: CallerStateChanged = {
            "event": "caller_state",
            "at": utcnow().isoformat(),
            **state,
            "summary": summary,
        }
        self._recorder(session_id).append_event(event)
        await self._change(session_id, caller_state=state, caller_stopped=stopped)

    # -- chat and silent mode ----------------------------------------------------------

    async def chat_send(
        self, session_id: str, sender: Sender, text: object, by: str | None, language: str | None
    ) -> ChatRecord:
        """A message from either side (``ChatRefused`` with nothing stored, or
        ``SessionEnded``); the handler's side writes in ``SCENELINK_HANDLER_LANGUAGE``."""
        if (await self.store.get(session_id)).state == "ended":
            raise SessionEnded(session_id)
        if sender == "caller":
            self.chat.caller_language(session_id, language)
        else:
            language = self.settings.handler_language
        return await self.chat.send(session_id, sender, text, by, language)

    async def chat_receipt(
        self, session_id: str, reader: Sender, ids: list[str], receipt: Receipt, by: str | None
    ) -> None:
        if (await self.store.get(session_id)).state != "ended":
            await self.chat.receipt(session_id, reader, ids, receipt, by)

    async def set_silent(self, session_id: str, on: bool, by: str) -> CallSession:
        """Silent mode on or off (``by`` is "caller" or a call handler): recorded, shown on
        the consoles and told to the caller's page."""
        session = await self.store.get(session_id)
        if session.state == "ended":
            raise SessionEnded(session_id)
        if session.silent == on:
            return session
        event: SilentMode = {"event": "silent_mode", "at": utcnow().isoformat(), "on": on, "by": by}
        self._recorder(session_id).append_event(event)
        return await self._change(session_id, silent=on)

    async def request_microphone(self, session_id: str) -> CallSession:
        """A call handler asks the caller (in silent mode) to turn the microphone on."""
        if (await self.store.get(session_id)).state == "ended":
            raise SessionEnded(session_id)
        return await self._change(session_id, microphone_request=utcnow())

    async def caller_chat_state(self, session_id: str) -> CallerChatState:
        """Everything the caller's page shows of the chat (also its answer to a poll)."""
        session = await self.store.get(session_id)
        messages = [caller_view(m) for m in await self.store.chat(session_id)]
        state: CallerChatState = {
            "type": "chat_state",
            "messages": messages,
            "silent": session.silent,
            "microphone_request": _iso(session.microphone_request),
            "version": "",
        }
        state["version"] = hashlib.sha256(json.dumps(state).encode()).hexdigest()[:16]
        return state

    async def _caller_chat(self, session_id: str, message: dict[str, Any]) -> None:
        """A chat, receipt, sync or silent-mode message on the data channel; a refused one
        is answered there (``chat_error``, naming the limit), and nothing is stored."""
        kind = message.get("type")
        try:
            if kind == "chat":
                language = check_language(message.get("language"))
                await self.chat_send(session_id, "caller", message.get("text"), None, language)
            elif kind == "chat_receipt":
                ids, receipt = message.get("message_ids"), message.get("receipt")
                if isinstance(ids, list) and receipt in ("delivered", "read"):
                    wanted = [i for i in ids if isinstance(i, str)]
                    await self.chat_receipt(session_id, "caller", wanted, receipt, None)
            elif kind == "chat_sync":
                self.chat.caller_language(session_id, check_language(message.get("language")))
                await self._to_caller(session_id, await self.caller_chat_state(session_id))
            elif kind == "silent" and isinstance(message.get("on"), bool):
                await self.set_silent(session_id, message["on"], "caller")
        except ChatRefused as exc:
            await self._to_caller(
                session_id, {"type": "chat_error", "error": exc.error, "limit": exc.limit}
            )
        except SessionEnded:
            return

    async def _to_caller(self, session_id: str, message: CallerMessage) -> None:
        media = self._media.get(session_id)
        if media is not None:
            await media.send_to_caller(json.dumps(message))

    async def _feed_caller(self, session_id: str, media: MediaSession) -> None:
        """While this node holds the caller's connection: every chat message and silent-mode
        change in the session's feed (from whichever node took it) down the data channel."""
        shown: tuple[bool, str | None] | None = None
        try:
            async with self.store.subscribe(session_id) as events:
                async for event in events:
                    if media.closed:
                        return
                    if event["type"] == "chat":
                        await self._to_caller(
                            session_id, {"type": "chat", "message": caller_view(event["message"])}
                        )
                    elif event["type"] == "state":
                        view = event["session"]
                        now = (view["silent"], view["microphone_request"])
                        if now != shown:
                            shown = now
                            await self._to_caller(
                                session_id,
                                {"type": "silent", "on": now[0], "microphone_request": now[1]},
                            )
        except Exception:
            logger.exception("session %s: chat to the caller's page stopped", session_id)

    def _record_chat(self, session_id: str, event: EvidenceEvent) -> None:
        self._recorder(session_id).append_event(event)

    # -- shared ----------------------------------------------------------------------

    async def view(self, session: CallSession) -> ConsoleSession:
        """The session as the API shows it: no full phone number, no token."""
        fix_count, last_fix = await self.store.trail_summary(session.id)
        media = self._media.get(session.id)
        recorder = self._recorders.get(session.id)
        recording = recorder.status if recorder is not None else RecordingStatus()
        return {
            "id": session.id,
            "incident_ref": session.incident_ref,
            "mode": session.mode,
            "invite": invite_view(session),
            "state": session.state,
            "created_at": session.created_at.isoformat(),
            "created_by": session.created_by,
            "opened_at": _iso(session.opened_at),
            "consent_at": _iso(session.consent_at),
            "consent_version": session.consent_version,
            "language": session.language,
            "consent_language": session.consent_language,
            "ended_at": _iso(session.ended_at),
            "ended_by": session.ended_by,
            "sms_status": session.sms_status,
            "sms_error": session.sms_error,
            "codec": session.codec,
            "rejected_fixes": session.rejected_fixes,
            "recording": {"state": recording.state, "cause": recording.cause},
            "phone_masked": mask(session.phone),
            "fix_count": fix_count,
            "last_fix": last_fix,
            "viewers": media.viewer_count if media else 0,
            "sms": {"status": session.sms_status, "error": session.sms_error},
            "caller_state": session.caller_state,
            "caller_summary": caller_summary(
                invite(session.mode).media,
                session.opened_at is not None,
                session.caller_state,
                link_refused=session.link_refused is not None,
                stopped=session.caller_stopped,
            ),
            "caller_device": (
                {"browser": device["browser"], "device": device["device"]}
                if (device := session.caller_device) is not None
                else None
            ),
            "network": self._network.get(session.id),
            "silent": session.silent,
            "microphone_request": _iso(session.microphone_request),
        }

    async def close(self) -> None:
        """Shut down this process's part of the calls without ending them: the callers'
        connections are hung up and each recorder signs what it has, but the sessions stay
        open in the state store, so a caller's page (which offers again) resumes the same
        session on the next process, whose recorder continues the same folder."""
        for session_id, media in list(self._media.items()):
            await media.close()
            await self._reconnecting(session_id)
        self._media.clear()
        for feed in self._to_caller_feeds.values():
            feed.cancel()
        self._to_caller_feeds.clear()
        await self.chat.close()
        await self.what3words.close()
        for recorder in self._recorders.values():
            await recorder.close()
        self._recorders.clear()

    async def _reconnecting(
        self, session_id: str, states: tuple[str, ...] = ("connecting", "live")
    ) -> None:
        """A session in one of ``states`` whose caller connection this worker does not
        hold: recorded, and shown, as reconnecting until the caller's page offers again."""
        try:
            session = await self.store.get(session_id)
        except KeyError:
            return
        if session.state in states:
            event: MediaStateChanged = {"event": "reconnecting", "at": utcnow().isoformat()}
            self._recorder(session_id).append_event(event)
            self._announce(session_id, event)
            await self._change(session_id, state="reconnecting")

    # -- cluster (signalling.cluster) ----------------------------------------------------

    @property
    def sessions_here(self) -> list[str]:
        """Sessions with media or a recorder on this worker."""
        return sorted(set(self._media) | set(self._recorders))

    async def hand_over(self, session_id: str) -> None:
        """Give a session up to another worker (this one drains): the caller's connection
        is closed (the page offers again and reaches the new owner through any worker), the
        recorder signs its part, and the lease goes to whichever worker meets it next."""
        if (meter := self._meters.pop(session_id, None)) is not None:
            meter.cancel()
        if (feed := self._to_caller_feeds.pop(session_id, None)) is not None:
            feed.cancel()
        self._network.pop(session_id, None)
        if (media := self._media.pop(session_id, None)) is not None:
            await media.close()
            await self._reconnecting(session_id)
        if (recorder := self._recorders.pop(session_id, None)) is not None:
            await recorder.close()
        await self.cluster.release(session_id, reason="drain")

    async def _continue_recording(self, session_id: str, from_node: str, reason: str) -> None:
        """This worker's part of a session another worker recorded: the same bundle, its
        first event ``recording_moved`` (recorder.evidence.continue_recording)."""
        if session_id in self._recorders:
            return
        try:
            if (await self.store.get(session_id)).state == "ended":
                return
        except KeyError:
            return
        self._recorders[session_id] = self.evidence.continue_recording(
            session_id,
            from_node=from_node,
            reason=reason,
            on_status=lambda status: self._recording_status(session_id, status),
        )

    async def adopt(self, session_id: str) -> bool:
        """Take over a live session whose worker has gone (its lease expired): False if
        another worker claimed it first. The new owner records it as reconnecting (the gap
        until the caller's page offers again)."""
        previous = await self.cluster.previous(session_id)
        if not await self.cluster.claim(session_id):
            return False
        logger.warning("session %s: taken over by %s", session_id, self.cluster.worker_id)
        if previous is not None and previous[0] != self.cluster.worker_id:
            await self._continue_recording(session_id, *previous)
            if previous[1] == "failover":  # its open parts, from the shared spool if any
                self._spawn(self.evidence.rescue(previous[0]))
        # The new owner's record starts with the gap (reconnecting already, when the old
        # owner said so before it went).
        await self._reconnecting(session_id, ("connecting", "live", "reconnecting"))
        return True

    async def _change(self, session_id: str, **changes: Any) -> CallSession:
        session = await self.store.update(session_id, **changes)
        await self._publish_view(session)
        return session

    async def _publish_view(self, session: CallSession) -> None:
        await self.store.publish(session.id, {"type": "state", "session": await self.view(session)})

    def _announce(self, session_id: str, event: EvidenceEvent) -> None:
        for listener in self.listeners:
            listener(session_id, event)

    def _recorder(self, session_id: str) -> SessionRecorder:
        recorder = self._recorders.get(session_id)
        if recorder is None:
            if not self.cluster.holds(session_id):
                raise NotOwner(session_id)  # its owner records it: never a second bundle
            recorder = self.evidence.recorder(
                session_id, on_status=lambda status: self._recording_status(session_id, status)
            )
            self._recorders[session_id] = recorder
        return recorder

    def _recording_status(self, session_id: str, status: RecordingStatus) -> None:
        """A failed or resumed recording reaches the consoles at once."""
        self._spawn(self._publish_state(session_id))

    async def _publish_state(self, session_id: str) -> None:
        await self._publish_view(await self.store.get(session_id))

    def _rtc_config(self, session_id: str) -> RTCConfiguration:
        """This server's side of a session's peer connections: the static ICE servers and,
        with TURN configured, a credential of its own (aiortc uses one TURN server)."""
        return RTCConfiguration(
            iceServers=[
                RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
                for s in ice_servers_for(self.settings, f"{session_id}.server")
            ]
        )

    def _media_session(self, session_id: str) -> MediaSession:
        media = self._media.get(session_id)
        if media is None:
            media = MediaSession(
                session_id,
                rtc_config=self._rtc_config(session_id),
                recorder=self._recorder(session_id),
                on_message=lambda text: self._spawn(self.handle_caller_message(session_id, text)),
                on_state=lambda state: self._spawn(self._media_state(session_id, state)),
                queue_size=self.settings.relay_queue_size,
                on_gap=lambda gap: self._media_gap(session_id, gap),
            )
            self._media[session_id] = media
            self._meters[session_id] = asyncio.ensure_future(self._measure(session_id, media))
            self._to_caller_feeds[session_id] = asyncio.ensure_future(
                self._feed_caller(session_id, media)
            )
        return media

    async def _measure(self, session_id: str, media: MediaSession) -> None:
        """Every SAMPLE_S while the media lives: the caller's network quality, shown on the
        consoles when it has changed meaningfully (so at most once per sample)."""
        meter = QualityMeter(
            lambda: media.caller_connection,
            lambda: media.video_relay.frames_in,
            lambda: media.video_relay.last_keyframe,
        )
        shown: NetworkQuality | None = None
        while not media.closed:
            await asyncio.sleep(SAMPLE_S)
            try:
                quality = await meter.sample()
                if quality is None:
                    if self._network.pop(session_id, None) is None:
                        continue  # no caller connection up, and none shown
                    shown = None
                else:
                    self._network[session_id] = quality
                    for listener in self.quality_listeners:
                        listener(session_id, quality)
                    if not changed_meaningfully(shown, quality):
                        continue
                    shown = quality
                if media.closed:
                    return
                await self._publish_state(session_id)
            except Exception:
                logger.exception("session %s: network quality not measured", session_id)

    async def _media_state(self, session_id: str, state: str) -> None:
        session = await self.store.get(session_id)
        if session.state == "ended":
            return
        match state:
            case "connecting" | "live" | "reconnecting":
                event: MediaStateChanged = {"event": state, "at": utcnow().isoformat()}
                self._recorder(session_id).append_event(event)
                self._announce(session_id, event)
                await self._change(session_id, state=state)

    def _media_gap(self, session_id: str, gap: MediaGap) -> None:
        """A gap in the caller's media, as evidence: an event when it is noticed; at its
        end an event and a chained gap entry (the manifest's ``gaps``). Synchronous, so
        that a gap cut short by the end of the call is recorded before the bundle closes."""
        recorder = self._recorders.get(session_id)
        if recorder is None or recorder.closed:
            return
        started = iso_at(gap.started_at) or ""
        if gap.ended_at is None:
            recorder.append_event(
                {
                    "event": "media_gap_started",
                    "at": utcnow().isoformat(),
                    "started_at": started,
                    "part": gap.part,
                }
            )
            return
        event: MediaGapEnded = {
            "event": "media_gap_ended",
            "at": utcnow().isoformat(),
            "started_at": started,
            "ended_at": iso_at(gap.ended_at) or "",
            "seconds": gap.seconds or 0.0,
            "resumed": gap.resumed,
            "part": gap.part,
        }
        recorder.record_gap(event, gap.started_at, gap.ended_at, gap.detected_at)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
