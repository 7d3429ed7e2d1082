"""PbxService: the one object the SIP endpoint hands events to and the REST API calls into.

It dispatches SIP events (REGISTER to the registrar, new INVITEs to the B2BUA, in-dialog traffic
to its call), answers OPTIONS, refuses what it does not serve with the right status, publishes
domain events (telephony sessions, presence, device status) to one listener (the event bus),
and implements :class:`~callwatch.pbx.control.CallControl` for the REST API. Background work:
registration expiry and the media inactivity check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from callwatch.clock import Clock
from callwatch.pbx import sessions as ts
from callwatch.pbx.b2bua import B2bua
from callwatch.pbx.call import Call, Target
from callwatch.pbx.control import Caller
from callwatch.pbx.errors import Forbidden, InvalidState, NotFound
from callwatch.pbx.events import DeviceStatusChanged, DomainEvent, PartyStatusChanged
from callwatch.pbx.legs import SipSender
from callwatch.pbx.presence import PresenceState, PresenceTracker, PresenceUpdate
from callwatch.pbx.registrar import ALLOW, SUPPORTED, Registrar
from callwatch.pbx.supervision import SupervisionRefused, approve, parse_request
from callwatch.pbx.supervisor import SupervisorLeg
from callwatch.sip.events import (
    CancelReceived,
    ConnectionClosed,
    MalformedMessage,
    RequestReceived,
    ResponseReceived,
    SipEvent,
    TransactionTimedOut,
)
from callwatch.sip.message import Response, make_response
from callwatch.store.repo import Device, Store

logger = logging.getLogger(__name__)

Publish = Callable[[DomainEvent], None]


class PbxService:
    """Call-control core: registrar, B2BUA, sessions and presence."""

    def __init__(
        self,
        *,
        store: Store,
        registrar: Registrar,
        b2bua: B2bua,
        presence: PresenceTracker,
        clock: Clock,
        publish: Publish | None = None,
        expiry_interval: float = 1.0,
        media_timeout: float = 60.0,
        answer_timeout: float = 15.0,
    ) -> None:
        self._store = store
        self.registrar = registrar
        self.b2bua = b2bua
        self.presence_tracker = presence
        self._clock = clock
        self._publish = publish or (lambda event: None)
        self._sender: SipSender | None = None
        self._expiry_interval = expiry_interval
        self._media_timeout = media_timeout
        self._answer_timeout = answer_timeout
        self._tasks: list[asyncio.Task[None]] = []
        self.counters = {"malformed": 0, "requests": 0, "refused": 0}

    def attach(self, sender: SipSender) -> None:
        """Give the service the endpoint it answers through."""
        self._sender = sender
        self.b2bua.attach(sender)

    def set_publisher(self, publish: Publish) -> None:
        """Where domain events go (the event bus)."""
        self._publish = publish

    async def start(self) -> None:
        """Start registration expiry and the media inactivity check."""
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._every(self._expiry_interval, self._expire)),
            loop.create_task(self._every(max(1.0, self._media_timeout / 4), self._idle_media)),
        ]

    async def stop(self) -> None:
        """Stop background work and hang up every call."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.b2bua.stop()

    # -- SIP ----------------------------------------------------------------

    def is_online(self, device_id: str) -> bool:
        """Device status for the REST API (``DeviceStatusProvider``)."""
        return self.registrar.is_online(device_id)

    def on_sip_event(self, event: SipEvent) -> None:
        """Handle one event from the SIP endpoint."""
        if isinstance(event, RequestReceived):
            self.counters["requests"] += 1
            self._on_request(event)
        elif isinstance(event, ResponseReceived | CancelReceived | TransactionTimedOut):
            self.b2bua.route(event)
        elif isinstance(event, ConnectionClosed):
            self.registrar.connection_closed(event.connection)
        elif isinstance(event, MalformedMessage):
            self.counters["malformed"] += 1
            logger.debug("x malformed from %s: %s", event.source, event.reason)

    def _on_request(self, event: RequestReceived) -> None:
        request = event.request
        if request.to.tag is not None or event.transaction is None:
            if not self.b2bua.route(event) and event.transaction is not None:
                self._respond(event.transaction, make_response(request, 481))
            return
        if request.method == "INVITE":
            self.b2bua.admit(event)
            return
        if request.method == "REGISTER":
            response = self.registrar.handle_register(request, event.source)
        elif request.method == "OPTIONS":
            response = make_response(
                request,
                200,
                headers=[("Allow", ALLOW), ("Accept", "application/sdp"), ("Supported", SUPPORTED)],
            )
        else:
            self.counters["refused"] += 1
            response = make_response(request, 405, headers=[("Allow", ALLOW)])
        self._respond(event.transaction, response)

    def _respond(self, transaction: str, response: Response) -> None:
        if self._sender is not None:
            self._sender.send_response(transaction, response)

    # -- domain events ----------------------------------------------------------------

    def on_session(self, session: ts.TelephonySession, events: list[PartyStatusChanged]) -> None:
        """A call changed: publish its events, then the presence they cause."""
        for event in events:
            self._publish(event)
        for presence in self.presence_tracker.on_session(session, now=self._clock.utcnow()):
            self._publish(presence)

    def on_device_status(self, device: Device, online: bool) -> None:
        """The registrar saw a device come or go."""
        logger.info("= device %s %s", device.id, "Online" if online else "Offline")
        self._publish(
            DeviceStatusChanged(
                account_id=device.account_id,
                extension_id=device.extension_id,
                device_id=device.id,
                online=online,
                event_time=self._clock.utcnow(),
            )
        )

    # -- CallControl (REST) ----------------------------------------------------------------

    def get_session(self, caller: Caller, session_id: str) -> ts.TelephonySession:
        """A live session of the caller's account."""
        return self._call(caller, session_id).session

    async def hold(self, caller: Caller, session_id: str, party_id: str) -> ts.Party:
        """Put a party on hold."""
        return await self._hold(caller, session_id, party_id, hold=True)

    async def unhold(self, caller: Caller, session_id: str, party_id: str) -> ts.Party:
        """Take a party off hold."""
        return await self._hold(caller, session_id, party_id, hold=False)

    async def update_party(
        self,
        caller: Caller,
        session_id: str,
        party_id: str,
        *,
        muted: bool | None,
        stand_alone: bool | None,
    ) -> ts.Party:
        """PATCH a party's flags."""
        call = self._call(caller, session_id)
        self._party(caller, call, party_id, act=True)

        async def run() -> ts.Party:
            session, event = ts.update_party(
                call.session,
                party_id,
                now=self._clock.utcnow(),
                muted=muted,
                stand_alone=stand_alone,
            )
            call.session = session
            if event is not None:
                self.on_session(session, [event])
            return session.party(party_id)

        party: ts.Party = await self._in_call(call, run)
        return party

    async def delete_party(self, caller: Caller, session_id: str, party_id: str) -> None:
        """Remove a party: a supervisor's stops supervision only; in a two-party call, any
        other ends the call."""
        call = self._call(caller, session_id)
        party = self._party(caller, call, party_id, act=True)

        async def run() -> None:
            if party.role is ts.PartyRole.SUPERVISOR:
                await call.stop_supervisor(party_id)
            else:
                call.hangup(reason="CallDropped")

        await self._in_call(call, run)

    async def supervise(
        self,
        caller: Caller,
        session_id: str,
        body: Mapping[str, object],
        *,
        party_id: str | None = None,
    ) -> ts.Party:
        """Add the caller as supervisor of a call (or of one party); returns the supervisor
        party once the device answered. Every refusal happens before any INVITE is sent."""
        request = parse_request(body)
        call = self._call(caller, session_id)
        if party_id is not None:
            self._party(caller, call, party_id, act=False)
        approved = approve(
            self._store, caller=caller, session=call.session, request=request,
            party_id=party_id, device_online=self.registrar.is_online(request.device_id),
        )  # fmt: skip
        target = self._device_target(approved.device.id)
        timeout = self._answer_timeout if request.auto_answer else self._answer_timeout * 3

        async def run() -> SupervisorLeg:
            return await call.add_supervisor(approved, request, target, answer_timeout=timeout)

        leg: SupervisorLeg = await self._in_call(call, run)
        return await leg.future

    def _device_target(self, device_id: str) -> Target:
        bindings = self.registrar.bindings(device_id)
        if not bindings:
            raise SupervisionRefused("SUP-103", 409, "The supervisor's device is not registered",
                                     parameter="supervisorDeviceId")  # fmt: skip
        binding = bindings[-1]  # the most recent registration
        return Target(uri=binding.contact.uri, destination=binding.destination,
                      device_id=device_id, srtp=binding.source.transport == "TLS")  # fmt: skip

    async def drop_session(self, caller: Caller, session_id: str) -> None:
        """Hang up every party."""
        call = self._call(caller, session_id)
        if not caller.is_admin and not call.session.parties_of(caller.extension_id):
            raise Forbidden("only a party of the call or an administrator may drop it")

        async def run() -> None:
            call.hangup(reason="CallDropped")

        await self._in_call(call, run)

    def presence(self, caller: Caller, extension_id: int) -> PresenceState:
        """One extension's presence."""
        extension = self._store.extensions.get(extension_id)
        if extension is None or extension.account_id != caller.account_id:
            raise NotFound(f"Extension [{extension_id}] is not found", parameter="extensionId")
        return self.presence_tracker.state(
            account_id=extension.account_id,
            extension_id=extension.id,
            extension_number=extension.number,
        )

    def account_presence(self, caller: Caller) -> list[PresenceState]:
        """Presence of every extension of the caller's account."""
        return [
            self.presence_tracker.state(
                account_id=e.account_id, extension_id=e.id, extension_number=e.number
            )
            for e in self._store.extensions.list_for_account(caller.account_id)
        ]

    def set_presence(
        self, caller: Caller, extension_id: int, update: PresenceUpdate
    ) -> PresenceState:
        """PUT presence: the extension itself or an administrator."""
        current = self.presence(caller, extension_id)
        if extension_id != caller.extension_id and not caller.is_admin:
            raise Forbidden("presence of another extension needs an administrator")
        state, event = self.presence_tracker.update(
            update,
            account_id=current.account_id,
            extension_id=extension_id,
            extension_number=current.extension_number,
            now=self._clock.utcnow(),
        )
        if event is not None:
            self._publish(event)
        return state

    # -- helpers ----------------------------------------------------------------

    def _call(self, caller: Caller, session_id: str) -> Call:
        call = self.b2bua.call_for(session_id)
        if call is None or call.ended or call.session.account_id != caller.account_id:
            raise NotFound(
                f"Telephony session [{session_id}] is not found", parameter="telephonySessionId"
            )
        return call

    def _party(self, caller: Caller, call: Call, party_id: str, *, act: bool) -> ts.Party:
        try:
            party = call.session.party(party_id)
        except KeyError:
            raise NotFound(f"Party [{party_id}] is not found", parameter="partyId") from None
        if act and party.extension_id != caller.extension_id and not caller.is_admin:
            raise Forbidden("only the party's own extension or an administrator may do this")
        return party

    async def _hold(
        self, caller: Caller, session_id: str, party_id: str, *, hold: bool
    ) -> ts.Party:
        call = self._call(caller, session_id)
        party = self._party(caller, call, party_id, act=True)
        needed = ts.PartyStatus.ANSWERED if hold else ts.PartyStatus.HOLD
        if party.status is not needed:
            verb = "held" if hold else "unheld"
            raise InvalidState(f"party {party_id} is {party.status}; it cannot be {verb}")

        async def run() -> ts.Party:
            await call.hold(party_id, hold=hold)
            return call.session.party(party_id)

        result: ts.Party = await self._in_call(call, run)
        return result

    async def _in_call(self, call: Call, run: Callable[[], Awaitable[Any]]) -> Any:
        return await call.command(run)

    async def _every(self, interval: float, work: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await work()
            except Exception:
                logger.exception("! periodic %s failed", getattr(work, "__name__", work))

    async def _expire(self) -> None:
        self.registrar.expire()

    async def _idle_media(self) -> None:
        await self.b2bua.hang_up_idle(self._media_timeout)
