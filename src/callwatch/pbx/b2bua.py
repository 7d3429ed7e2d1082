"""The back-to-back user agent: admits new calls, routes in-dialog traffic to their Call.

Admission (RFC 3261 §8.2, §22): a new INVITE comes from a registered device (its From user is
a device's SIP user name; digest-authenticated with 407) or through a trunk (its source address
is one of the trunk's; no authentication). The Request-URI's user part names an extension of the
caller's account (404 otherwise); every live contact of that extension's devices is rung (480
when there is none). Everything after admission happens in the :class:`~callwatch.pbx.call.Call`.

Routing: requests inside a dialog are matched by Call-ID and our tag (never the Request-URI),
responses by Call-ID (each leg has its own), CANCELs and time-outs by transaction key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from callwatch.clock import Clock
from callwatch.ids import IdGenerator
from callwatch.media.control import MediaControl, MediaError
from callwatch.pbx import sessions as ts
from callwatch.pbx.call import Call, CallDeps, SessionListener, Target
from callwatch.pbx.legs import ContactFor, Leg, SipSender
from callwatch.pbx.registrar import Registrar
from callwatch.sip.events import (
    Address,
    CancelReceived,
    RequestReceived,
    ResponseReceived,
    TransactionTimedOut,
)
from callwatch.sip.message import Request, Response, make_response
from callwatch.sip.uri import NameAddr, SipUri
from callwatch.store.repo import Device, Extension, Store

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Callee:
    """Who a new call is for: an extension, or a number out of the trunk."""

    number: str
    name: str | None
    extension: Extension | None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who places a new call."""

    account_id: int
    number: str
    name: str | None
    extension: Extension | None
    device: Device | None


class _TrackingSender:
    """The endpoint, remembering which call each client transaction belongs to."""

    def __init__(self, sender: SipSender, track: Callable[[str], None]) -> None:
        self._sender = sender
        self._track = track

    def send_request(self, request: Request, destination: Address) -> str:
        key = self._sender.send_request(request, destination)
        self._track(key)
        return key

    def send_response(self, transaction: str, response: Response) -> None:
        self._sender.send_response(transaction, response)

    def send_stateless(self, message: Request | Response, destination: Address) -> None:
        self._sender.send_stateless(message, destination)

    def cancel(self, transaction: str) -> str | None:
        key = self._sender.cancel(transaction)
        if key is not None:
            self._track(key)
        return key


class B2bua:
    """Calls between devices and trunks, bridged through the relay."""

    def __init__(
        self,
        *,
        store: Store,
        registrar: Registrar,
        media: MediaControl,
        ids: IdGenerator,
        clock: Clock,
        domain: str,
        contact: ContactFor,
        ring_timeout: float,
        on_session: SessionListener,
        trunk_gateway: Address | None = None,
        min_session_expires: int = 90,
    ) -> None:
        self._store = store
        self._min_se = min_session_expires
        self._gateway = trunk_gateway
        self._registrar = registrar
        self._media = media
        self._ids = ids
        self._clock = clock
        self._domain = domain
        self._contact = contact
        self._ring_timeout = ring_timeout
        self._on_session = on_session
        self._sender: SipSender | None = None
        self.calls: dict[str, Call] = {}
        """Live calls by telephony session id."""
        self._by_call_id: dict[str, Call] = {}
        self._by_transaction: dict[str, Call] = {}
        self.counters = {"calls": 0, "refused": 0}

    def attach(self, sender: SipSender) -> None:
        """Give the B2BUA the SIP endpoint."""
        self._sender = sender

    async def stop(self) -> None:
        """Hang up every call and wait for them to finish."""
        tasks = [c.task for c in self.calls.values() if c.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- routing ----------------------------------------------------------------

    def route(
        self, event: RequestReceived | ResponseReceived | CancelReceived | TransactionTimedOut
    ) -> bool:
        """Hand ``event`` to its call; False if no call claims it."""
        call: Call | None
        if isinstance(event, RequestReceived | ResponseReceived):
            message = event.request if isinstance(event, RequestReceived) else event.response
            call = self._by_call_id.get(message.call_id)
        else:
            call = self._by_transaction.get(event.transaction)
        if call is None or (call.ended and not isinstance(event, ResponseReceived)):
            return False
        call.feed(event)
        return True

    def call_for(self, session_id: str) -> Call | None:
        """The live call of a telephony session."""
        return self.calls.get(session_id)

    # -- admission ----------------------------------------------------------------

    def admit(self, event: RequestReceived) -> None:
        """A new INVITE (no To tag): refuse it, or start a call."""
        assert event.transaction is not None and self._sender is not None
        request = event.request
        caller = self._identify(request, event.source, event.transaction)
        if caller is None:
            return
        dialled = request.uri.user or ""
        extension = self._store.extensions.find_by_number(caller.account_id, dialled)
        if extension is not None:
            callee = Callee(extension.number, extension.name, extension)
            targets = self._targets(extension, exclude=caller.device)
        elif caller.device is not None and self._gateway is not None and _is_phone(dialled):
            callee = Callee(dialled, None, None)  # out of the trunk (RFC 3261 §16.6-style)
            gateway = SipUri(host=self._gateway.host, port=self._gateway.port, user=dialled)
            targets = [Target(uri=gateway, destination=self._gateway, device_id=None, srtp=False)]
        else:
            self._refuse(event.transaction, request, 404)
            return
        if not targets:
            self._refuse(event.transaction, request, 480)
            return
        self._start(event, caller, callee, targets)

    def _identify(self, request: Request, source: Address, transaction: str) -> Caller | None:
        assert self._sender is not None
        user = request.from_.uri.user or ""
        trunk = None
        if self._store.devices.find_by_sip_username(user) is None:
            trunk = self._store.trunks.find_by_source(source.host)
        if trunk is not None:
            name = request.from_.display_name
            return Caller(trunk.account_id, user, name, None, None)
        outcome = self._registrar.authenticate(request, user=user, proxy=True)
        if isinstance(outcome, Response):
            self._sender.send_response(transaction, outcome)
            return None
        extension = self._store.extensions.get(outcome.extension_id)
        if extension is None:
            self._refuse(transaction, request, 403)
            return None
        return Caller(outcome.account_id, extension.number, extension.name, extension, outcome)

    def _targets(self, callee: Extension, *, exclude: Device | None) -> list[Target]:
        targets: list[Target] = []
        for device in self._store.devices.list_for_extension(callee.id):
            if exclude is not None and device.id == exclude.id:
                continue
            for binding in self._registrar.bindings(device.id):
                targets.append(
                    Target(
                        uri=binding.contact.uri,
                        destination=binding.destination,
                        device_id=device.id,
                        srtp=binding.source.transport == "TLS",
                    )
                )
        return targets

    def _refuse(self, transaction: str, request: Request, status: int) -> None:
        assert self._sender is not None
        self.counters["refused"] += 1
        self._sender.send_response(
            transaction, make_response(request, status, to_tag=self._ids.tag())
        )

    # -- calls ----------------------------------------------------------------

    def _start(
        self, event: RequestReceived, caller: Caller, callee: Callee, targets: list[Target]
    ) -> None:
        assert event.transaction is not None and self._sender is not None
        now = self._clock.utcnow()
        session = ts.new_session(
            hex_id=self._ids.hex(16),
            session_id=self._ids.digits(12),
            account_id=caller.account_id,
            now=now,
        )
        request = event.request
        caller_end = ts.Endpoint(
            phone_number=caller.number,
            name=caller.name,
            extension_id=caller.extension.id if caller.extension else None,
            extension_number=caller.extension.number if caller.extension else None,
            device_id=caller.device.id if caller.device else None,
        )
        ext = callee.extension
        callee_end = ts.Endpoint(
            phone_number=callee.number,
            name=callee.name,
            extension_id=ext.id if ext else None,
            extension_number=ext.number if ext else None,
        )
        a_sip = ts.SipData(call_id=request.call_id, from_tag=request.from_.tag or "")
        session, caller_party, first = ts.add_party(
            session,
            role=ts.PartyRole.CALLER,
            direction=ts.Direction.OUTBOUND,
            from_=caller_end,
            to=callee_end,
            now=now,
            extension_id=caller.extension.id if caller.extension else None,
            device_id=caller.device.id if caller.device else None,
            sip=a_sip,
        )
        session, callee_party, second = ts.add_party(
            session,
            role=ts.PartyRole.CALLEE,
            direction=ts.Direction.INBOUND,
            from_=caller_end,
            to=callee_end,
            now=now,
            extension_id=ext.id if ext else None,
        )
        a = Leg(
            name="A",
            uas=True,
            destination=event.source,
            invite=request,
            transaction=event.transaction,
            local_tag=self._ids.tag(),
            party_id=caller_party.id,
            device_id=caller.device.id if caller.device else None,
        )
        holder: list[Call] = []
        deps = CallDeps(
            sender=_TrackingSender(self._sender, lambda key: self._track(holder[0], key)),
            media=self._media,
            ids=self._ids,
            clock=self._clock,
            contact=self._contact,
            ring_timeout=self._ring_timeout,
            on_session=self._on_session,
            route=self._route_leg,
            finished=self._finished,
            min_session_expires=self._min_se,
        )
        b_from = NameAddr(
            SipUri(host=self._domain, user=self._presented(caller, callee)), caller.name
        )
        b_to = NameAddr(SipUri(host=self._domain, user=callee.number), callee.name)
        call = Call(
            deps,
            session=session,
            a=a,
            caller_party=caller_party.id,
            callee_party=callee_party.id,
            b_from=b_from,
            b_to=b_to,
            targets=targets,
        )
        holder.append(call)
        self.calls[session.id] = call
        self._route_leg(call, a)
        self._by_transaction[a.transaction] = call
        self.counters["calls"] += 1
        self._on_session(session, [first, second])
        call.task = asyncio.get_running_loop().create_task(call.run(), name=session.id)

    def _presented(self, caller: Caller, callee: Callee) -> str:
        """The caller's number as the callee sees it: out of the trunk, the trunk's number."""
        if callee.extension is None:
            trunks = self._store.trunks.list_for_account(caller.account_id)
            if trunks:
                return trunks[0].number
        return caller.number

    def _route_leg(self, call: Call, leg: Leg) -> None:
        self._by_call_id[leg.call_id] = call

    def _track(self, call: Call, key: str) -> None:
        self._by_transaction[key] = call

    def _finished(self, call: Call) -> None:
        self.calls.pop(call.session.id, None)
        for table in (self._by_call_id, self._by_transaction):
            for key in [k for k, c in table.items() if c is call]:
                del table[key]

    # -- media supervision ----------------------------------------------------------------

    async def hang_up_idle(self, timeout: float) -> int:
        """End calls whose media has been silent for ``timeout`` seconds; return how many."""
        try:
            idle = set(await self._media.idle(timeout))
        except MediaError:
            return 0
        ended = 0
        for call in list(self.calls.values()):
            streams = {leg.endpoint.stream_id for leg in call.legs if leg.endpoint is not None}
            on_hold = any(p.status is ts.PartyStatus.HOLD for p in call.session.parties)
            if call.b is not None and streams and streams <= idle and not on_hold:
                await call.command(_hangup(call))
                ended += 1
        return ended


def _hangup(call: Call) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        call.hangup(reason="CallDropped")

    return run


def _is_phone(text: str) -> bool:
    """An E.164 or national number (what goes out of the trunk), not an extension number."""
    digits = text[1:] if text.startswith("+") else text
    return digits.isascii() and digits.isdigit() and 7 <= len(digits) <= 15
