"""One bridged call: the caller's leg (A), the forks that ring the callee, and the winner (B).

Theory of operation. A :class:`Call` owns one task that consumes its inputs in order (SIP
events routed to it by the B2BUA, timer expiries and REST commands), so the call's state has
one writer and media commands can be awaited without races. The flow (RFC 3261 §13, RFC 3264):

1. ``start``: the A offer is mapped to a relay stream; a second stream faces the callee; each
   registered contact of the callee gets its own INVITE (own Call-ID) with the same relay SDP.
2. Provisionals are relayed to A as 180 (183 with SDP when a fork sends early media).
3. The first 2xx wins: it is ACKed, the other forks are CANCELled (a late 2xx is ACKed and
   BYEd), the relay streams are bridged and A gets 200 with the relay's SDP.
4. All forks failing, the ring timer (408) or A's CANCEL (487) end the call before answer.
5. In a confirmed call, BYE from either side ends both; a re-INVITE/UPDATE with SDP is
   forwarded to the other side with relay SDP (``sendonly``/``inactive`` marks the offerer's
   party Hold); one without SDP is a session refresh answered locally.

Telephony state changes go through :mod:`callwatch.pbx.sessions` and are reported with
``on_session``. A 200 to our BYE is never awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from callwatch.clock import Clock
from callwatch.ids import IdGenerator
from callwatch.media.control import MediaControl, MediaError
from callwatch.pbx import sessions as ts
from callwatch.pbx.errors import InvalidState
from callwatch.pbx.events import PartyStatusChanged
from callwatch.pbx.legs import (
    ContactFor,
    Leg,
    LegState,
    SipSender,
    answer,
    build_invite,
    point_at,
)
from callwatch.pbx.media_sdp import (
    SdpError,
    audio_index,
    is_hold,
    leg_media,
    parse_sdp,
    relay_sdp,
)
from callwatch.pbx.reinvite import ReinviteRelay
from callwatch.pbx.session_timer import IntervalTooSmall, SessionTimer, negotiate
from callwatch.pbx.supervision import (
    Approved,
    SuperviseRequest,
    SupervisionRefused,
    check_not_supervised,
)
from callwatch.pbx.supervisor import MonitoredStream, SupervisorLeg
from callwatch.sip.dialog import Dialog
from callwatch.sip.events import (
    Address,
    CancelReceived,
    RequestReceived,
    ResponseReceived,
    TransactionTimedOut,
)
from callwatch.sip.message import Request, Response, make_response
from callwatch.sip.sdp import Direction, RtpMap, SessionDescription
from callwatch.sip.uri import NameAddr, SipUri

logger = logging.getLogger(__name__)

LINGER = 4.0
"""Seconds an ended call keeps answering late responses."""

SessionListener = Callable[[ts.TelephonySession, list[PartyStatusChanged]], None]


@dataclass(frozen=True, slots=True)
class Target:
    """One contact to ring: where to send, and what to put in the Request-URI."""

    uri: SipUri
    destination: Address
    device_id: str | None
    srtp: bool


@dataclass(frozen=True, slots=True)
class CallDeps:
    """What every call needs from the platform."""

    sender: SipSender
    media: MediaControl
    ids: IdGenerator
    clock: Clock
    contact: ContactFor
    ring_timeout: float
    on_session: SessionListener
    route: Callable[[Call, Leg], None]
    """Make the B2BUA route this leg's dialog and transactions to the call."""
    finished: Callable[[Call], None]
    min_session_expires: int = 90
    """RFC 4028 Min-SE: shorter session intervals get 422."""


@dataclass(frozen=True, slots=True)
class RingTimeout:
    """The callee did not answer in time."""


@dataclass(frozen=True, slots=True)
class SessionExpired:
    """The caller did not refresh the session in time (RFC 4028 §10)."""


@dataclass(frozen=True, slots=True)
class SupervisorTimeout:
    """A supervisor's device did not answer in time."""

    supervisor: SupervisorLeg


@dataclass(frozen=True, slots=True)
class Command:
    """A REST command run inside the call's task; its result resolves ``future``."""

    run: Callable[[], Awaitable[Any]]
    future: asyncio.Future[Any]


CallInput = RequestReceived | ResponseReceived | CancelReceived | TransactionTimedOut
QueueItem = CallInput | RingTimeout | SupervisorTimeout | SessionExpired | Command


class Call:
    """A two-party call through the B2BUA and the relay."""

    def __init__(
        self,
        deps: CallDeps,
        *,
        session: ts.TelephonySession,
        a: Leg,
        caller_party: str,
        callee_party: str,
        b_from: NameAddr,
        b_to: NameAddr,
        targets: list[Target],
    ) -> None:
        self._deps = deps
        self.session = session
        self.a = a
        self.b: Leg | None = None
        self.forks: list[Leg] = []
        self.caller_party = caller_party
        self.callee_party = callee_party
        self._b_from = b_from
        self._b_to = b_to
        self._targets = targets
        self._b_endpoint_srtp = any(t.srtp for t in targets)
        self._fork_statuses: list[int] = []
        self._queue: asyncio.Queue[QueueItem] = asyncio.Queue()
        self._ring_timer: asyncio.TimerHandle | None = None
        self._reinvites = ReinviteRelay(self)
        self.supervisors: list[SupervisorLeg] = []
        self._session_timer: SessionTimer | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self.ended = False
        self.task: asyncio.Task[None] | None = None

    # -- inputs ----------------------------------------------------------------

    def feed(self, item: QueueItem) -> None:
        """Queue an input for the call's task."""
        self._queue.put_nowait(item)

    def feed_timeout(self, supervisor: SupervisorLeg) -> None:
        """Timer callback: a supervisor's device did not answer."""
        self.feed(SupervisorTimeout(supervisor))

    async def command(self, run: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``run`` inside the call's task and return its result."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.feed(Command(run, future))
        return await future

    @property
    def legs(self) -> list[Leg]:
        """Every leg of the call."""
        return [self.a, *self.forks]

    @property
    def deps(self) -> CallDeps:
        """The platform services."""
        return self._deps

    def partner(self, leg: Leg) -> Leg | None:
        """The other side of ``leg`` in the bridge."""
        if leg is self.a:
            return self.b
        return self.a if leg is self.b else None

    # -- the task ----------------------------------------------------------------

    async def run(self) -> None:
        """Set the call up, then process inputs until it ends."""
        try:
            await self._start()
            while not self.ended:
                await self._dispatch(await self._queue.get())
            await self._linger(LINGER)
        except asyncio.CancelledError:
            self._hangup_all(reason="CallDropped")
            raise
        except Exception:
            logger.exception("! call %s failed", self.session.id)
            self._hangup_all(reason="InternalError")
        finally:
            await self._release()

    async def _linger(self, seconds: float) -> None:
        """After the end, keep absorbing late final responses for a while: a fork that
        answers after its CANCEL still gets its 2xx ACKed and BYEd (RFC 3261 §9.1)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            try:
                item = await asyncio.wait_for(self._queue.get(), left)
            except TimeoutError:
                return
            if isinstance(item, ResponseReceived):
                await self._on_response(item)
            elif isinstance(item, Command) and not item.future.done():
                item.future.set_exception(InvalidState("the call has ended"))

    async def _dispatch(self, item: QueueItem) -> None:
        if isinstance(item, Command):
            await self._run_command(item)
        elif isinstance(item, RingTimeout):
            self._ring_timeout()
        elif isinstance(item, SupervisorTimeout):
            item.supervisor.timed_out()
        elif isinstance(item, SessionExpired):
            self._hangup_all(reason="CallDropped")
        elif isinstance(item, CancelReceived):
            self._cancelled()
        elif isinstance(item, ResponseReceived):
            await self._on_response(item)
        elif isinstance(item, RequestReceived):
            await self._on_request(item)
        else:
            self._on_timeout(item)

    async def _run_command(self, item: Command) -> None:
        try:
            result = await item.run()
        except Exception as exc:  # the REST caller gets the error, the call goes on
            if not item.future.done():
                item.future.set_exception(exc)
            return
        if not item.future.done():
            item.future.set_result(result)

    # -- set-up ---------------------------------------------------------------------------------

    async def _start(self) -> None:
        a = self.a
        try:
            self._session_timer = negotiate(a.invite, min_se=self._deps.min_session_expires)
        except IntervalTooSmall as exc:
            self._respond_a(
                make_response(a.invite, 422, to_tag=a.local_tag, headers=[("Min-SE", str(exc))])
            )
            self._end(reason="Rejected")
            return
        try:
            offer = parse_sdp(a.invite.body)
            media = leg_media(offer)
        except SdpError as exc:
            self._fail_setup(exc.status, str(exc), reason="InternalError")
            return
        a.remote_sdp, a.srtp, a.crypto_tag = offer, media.srtp, media.crypto_tag
        try:
            a.endpoint = await self._deps.media.allocate(
                remote=media.address,
                remote_rtcp=media.rtcp,
                rtcp_mux=media.rtcp_mux,
                srtp=media.srtp,
                remote_key=media.key,
                clock_rate=media.clock_rate,
                label=f"{self.session.id} A",
            )
            b_endpoint = await self._deps.media.allocate(
                remote=None,
                srtp=self._b_endpoint_srtp,
                clock_rate=media.clock_rate,
                label=f"{self.session.id} B",
            )
        except MediaError as exc:
            self._fail_setup(exc.status_hint, str(exc), reason="InternalError")
            return
        for index, target in enumerate(self._targets):
            self._ring(index, target, offer, b_endpoint)
        self._set(self.callee_party, ts.PartyStatus.PROCEEDING)
        loop = asyncio.get_running_loop()
        self._ring_timer = loop.call_later(self._deps.ring_timeout, self.feed, RingTimeout())

    def _ring(self, index: int, target: Target, offer: SessionDescription, endpoint: Any) -> None:
        ids = self._deps.ids
        leg = Leg(
            name=f"B{index + 1}",
            uas=False,
            destination=target.destination,
            invite=Request(),
            transaction="",
            local_tag=ids.tag(),
            endpoint=endpoint,
            srtp=target.srtp,
            sdp_session_id=ids.integer(10**9, 10**10),
            device_id=target.device_id,
        )
        sdp = relay_sdp(
            offer,
            endpoint,
            session_id=leg.sdp_session_id,
            version=leg.next_sdp_version(),
            srtp=target.srtp,
        )
        leg.local_sdp = sdp
        leg.invite = build_invite(
            target=target.uri,
            from_=self._b_from.with_tag(leg.local_tag),
            to=self._b_to,
            call_id=ids.call_id(self._deps.contact(target.destination.transport).host),
            contact=self._deps.contact(target.destination.transport),
            body=sdp.serialize(),
        )
        leg.transaction = self._deps.sender.send_request(leg.invite, target.destination)
        self.forks.append(leg)
        self._deps.route(self, leg)

    def _fail_setup(self, status: int, text: str, *, reason: str) -> None:
        logger.info("x call %s refused: %s %s", self.session.id, status, text)
        self._respond_a(make_response(self.a.invite, status, to_tag=self.a.local_tag))
        self._end(reason=reason)

    # -- responses ----------------------------------------------------------------

    async def _on_response(self, event: ResponseReceived) -> None:
        supervisor = self._supervisor_for(event.response.call_id)
        if supervisor is not None:
            if event.response.cseq.method == "INVITE":
                await supervisor.on_invite_response(event.response)
            return
        leg = self._leg_for_transaction(event.transaction, event.response)
        if leg is None:
            return
        response = event.response
        method = response.cseq.method
        if method == "INVITE" and event.transaction in ("", leg.transaction):
            await self._on_invite_response(leg, response)
        elif event.transaction in leg.pending:
            if response.status >= 200:
                leg.pending.pop(event.transaction, None)
            if method in ("INVITE", "UPDATE"):
                await self._reinvites.on_response(leg, event.transaction, response)

    def _leg_for_transaction(self, key: str, response: Response) -> Leg | None:
        for leg in self.legs:
            if key and (key == leg.transaction or key in leg.pending):
                return leg
            if not key and response.call_id == leg.call_id:
                return leg
        return None

    async def _on_invite_response(self, leg: Leg, response: Response) -> None:
        if response.status < 200:
            if response.status > 100:
                await self._provisional(leg, response)
            return
        if response.status >= 300:
            self._fork_failed(leg, response.status)
            return
        if self.b is not None or self.ended:
            self._ack(leg, response)
            if leg is not self.b:
                self._bye(leg)
            return
        await self._won(leg, response)

    async def _provisional(self, leg: Leg, response: Response) -> None:
        if leg.state is LegState.CALLING:
            leg.state = LegState.EARLY
        if self.a.state is not LegState.CALLING:
            return
        self.a.state = LegState.EARLY
        self._set(self.caller_party, ts.PartyStatus.PROCEEDING)
        self._respond_a(answer(self.a.invite, self.a.local_tag, 180, self._contact(self.a)))

    async def _won(self, leg: Leg, response: Response) -> None:
        self._stop_ring_timer()
        self.b = leg
        leg.party_id = self.callee_party
        leg.state = LegState.CONFIRMED
        self._ack(leg, response)
        for other in self.forks:
            if other is not leg and other.state in (LegState.CALLING, LegState.EARLY):
                self._deps.sender.cancel(other.transaction)
                other.state = LegState.ENDED
        try:
            await point_at(self._deps.media, leg, response.body)
            assert leg.endpoint is not None and self.a.endpoint is not None
            await self._deps.media.bridge(self.a.endpoint.stream_id, leg.endpoint.stream_id)
        except (SdpError, MediaError) as exc:
            logger.info("x answer from %s unusable: %s", leg.name, exc)
            self._bye(leg)
            self._fail_setup(488, str(exc), reason="InternalError")
            return
        assert leg.remote_sdp is not None
        self._answer_a(leg.remote_sdp)
        self._identify_legs(leg, response)
        self._set(self.callee_party, ts.PartyStatus.ANSWERED)
        self._set(self.caller_party, ts.PartyStatus.ANSWERED)

    def _identify_legs(self, b: Leg, response: Response) -> None:
        """Record both legs' SIP identities and the answering device (no event of their own:
        the Answered transitions that follow carry them)."""
        now = self._deps.clock.utcnow()
        a_sip = ts.SipData(self.a.call_id, self.a.invite.from_.tag or "", self.a.local_tag)
        b_sip = ts.SipData(b.call_id, b.local_tag, response.to.tag)
        session, _ = ts.update_party(self.session, self.caller_party, now=now, sip=a_sip)
        session, _ = ts.update_party(
            session, self.callee_party, now=now, sip=b_sip, device_id=b.device_id
        )
        self.session = session

    def _answer_a(self, remote: SessionDescription) -> None:
        a = self.a
        assert a.endpoint is not None
        a.sdp_session_id = a.sdp_session_id or self._deps.ids.integer(10**9, 10**10)
        sdp = relay_sdp(
            remote,
            a.endpoint,
            session_id=a.sdp_session_id,
            version=a.next_sdp_version(),
            srtp=a.srtp,
            crypto_tag=a.crypto_tag,
        )
        a.local_sdp = sdp
        contact = self._contact(a)
        a.dialog = Dialog.from_uas(a.invite, a.local_tag, local_target=contact)
        a.state = LegState.CONFIRMED
        response = answer(a.invite, a.local_tag, 200, contact, body=sdp.serialize())
        if self._session_timer is not None:
            for name, value in self._session_timer.headers():
                response.headers.add(name, value)
            self._refreshed()
        self._respond_a(response)

    def _fork_failed(self, leg: Leg, status: int) -> None:
        leg.state = LegState.ENDED
        leg.pending.clear()
        self._fork_statuses.append(status)
        if self.b is not None or self.ended:
            return
        live = [f for f in self.forks if f.state in (LegState.CALLING, LegState.EARLY)]
        if live:
            return
        self._stop_ring_timer()
        final = _failure_status(self._fork_statuses)
        reason = "TargetBusy" if final in (486, 600) else "Rejected"
        self._respond_a(make_response(self.a.invite, final, to_tag=self.a.local_tag))
        self._end(reason=reason)

    def _ack(self, leg: Leg, response: Response) -> None:
        if leg.dialog is None:
            leg.dialog = Dialog.from_uac(leg.invite, response)
            leg.dialog.local_target = self._contact(leg)
        ack = leg.dialog.create_ack(leg.invite.cseq.seq)
        self._deps.sender.send_stateless(ack, leg.destination)

    # -- requests in a dialog ----------------------------------------------------------------

    async def _on_request(self, event: RequestReceived) -> None:
        request = event.request
        supervisor = self._supervisor_for(request.call_id)
        if supervisor is not None:
            if event.transaction is not None:
                await supervisor.on_request(event.transaction, request)
            return
        leg = self._leg_for_request(request)
        if leg is None or event.transaction is None:
            return  # ACK: nothing to do (a 2xx we sent was confirmed)
        if leg.dialog is not None:
            try:
                leg.dialog.receive_request(request)
            except Exception as exc:  # CSeq out of order
                status = getattr(exc, "status_hint", 500)
                self._deps.sender.send_response(event.transaction, make_response(request, status))
                return
        method = request.method
        if method in ("INVITE", "UPDATE") and leg is self.a:
            self._refreshed()  # any re-INVITE or UPDATE from the caller refreshes (RFC 4028)
        if method == "BYE":
            self._deps.sender.send_response(event.transaction, make_response(request, 200))
            leg.state = LegState.ENDED
            other = self.partner(leg)
            if other is not None:
                self._bye(other)
            self._end(reason="CallFinished")
        elif method in ("INVITE", "UPDATE") and request.body:
            await self._reinvites.on_offer(leg, event.transaction, request)
        elif method in ("INVITE", "UPDATE"):
            body = leg.local_sdp.serialize() if leg.local_sdp and method == "INVITE" else b""
            self._deps.sender.send_response(
                event.transaction,
                answer(request, leg.local_tag, 200, self._contact(leg), body=body),
            )
        else:
            self._deps.sender.send_response(event.transaction, make_response(request, 200))

    def _supervisor_for(self, call_id: str) -> SupervisorLeg | None:
        for supervisor in self.supervisors:
            if supervisor.leg is not None and supervisor.leg.call_id == call_id:
                return supervisor
        return None

    def _leg_for_request(self, request: Request) -> Leg | None:
        to_tag = request.to.tag
        for leg in self.legs:
            if request.call_id == leg.call_id and to_tag == leg.local_tag:
                return leg
        return None

    # -- endings ----------------------------------------------------------------

    def _cancelled(self) -> None:
        if self.a.state is LegState.CONFIRMED or self.ended:
            return
        self._stop_ring_timer()
        self._cancel_forks()
        self._respond_a(make_response(self.a.invite, 487, to_tag=self.a.local_tag))
        self._end(reason="Cancelled")

    def _ring_timeout(self) -> None:
        if self.b is not None or self.ended:
            return
        self._cancel_forks()
        self._respond_a(make_response(self.a.invite, 408, "No Answer", to_tag=self.a.local_tag))
        self._end(reason="NoAnswer")

    def _on_timeout(self, event: TransactionTimedOut) -> None:
        for leg in self.forks:
            if event.transaction == leg.transaction and self.b is None:
                self._fork_failed(leg, 408)
                return
        if event.transaction == self.a.transaction and event.method == "INVITE":
            self._hangup_all(reason="CallDropped")  # our 200 was never ACKed
            return
        for leg in self.legs:
            if leg.pending.pop(event.transaction, None) == "INVITE":
                self._reinvites.timed_out(leg, event.transaction)

    def _cancel_forks(self) -> None:
        for leg in self.forks:
            if leg.state in (LegState.CALLING, LegState.EARLY):
                self._deps.sender.cancel(leg.transaction)
                leg.state = LegState.ENDED

    def hangup(self, reason: str = "CallDropped") -> None:
        """End the call from our side (REST drop, media timeout): BYE every confirmed leg."""
        self._hangup_all(reason=reason)

    def _hangup_all(self, *, reason: str) -> None:
        if self.ended:
            return
        if self.a.state is not LegState.CONFIRMED and self.a.state is not LegState.ENDED:
            self._respond_a(make_response(self.a.invite, 480, to_tag=self.a.local_tag))
        self._cancel_forks()
        for leg in self.legs:
            if leg.state is LegState.CONFIRMED:
                self._bye(leg)
        self._end(reason=reason)

    def _bye(self, leg: Leg) -> None:
        if leg.dialog is None or (leg.state is LegState.ENDED and leg is not self.b):
            leg.state = LegState.ENDED
            return
        leg.state = LegState.ENDED
        try:
            request = leg.dialog.create_request("BYE")
        except Exception:  # dialog already terminated
            return
        key = self._deps.sender.send_request(request, leg.destination)
        leg.pending[key] = "BYE"

    def _end(self, *, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        self._stop_ring_timer()
        if self._expiry is not None:
            self._expiry.cancel()
        for supervisor in self.supervisors:
            supervisor.end_with_call()
        session, events = ts.disconnect_all(
            self.session, now=self._deps.clock.utcnow(), reason=reason
        )
        self.session = session
        self._deps.on_session(session, events)

    async def _release(self) -> None:
        endpoints = {leg.endpoint.stream_id for leg in self.legs if leg.endpoint is not None}
        endpoints |= {e.stream_id for s in self.supervisors for e in s.streams}
        for stream_id in endpoints:
            with contextlib.suppress(MediaError):
                await self._deps.media.delete(stream_id)
        self._deps.finished(self)

    # -- helpers ----------------------------------------------------------------

    def set_party(self, party_id: str, status: ts.PartyStatus, reason: str | None = None) -> None:
        """Move a party and report the change."""
        self._set(party_id, status, reason)

    def _set(self, party_id: str, status: ts.PartyStatus, reason: str | None = None) -> None:
        try:
            session, event = ts.set_status(
                self.session, party_id, status, now=self._deps.clock.utcnow(), reason=reason
            )
        except ts.IllegalTransition as exc:
            logger.debug("= %s", exc)
            return
        self.session = session
        if event is not None:
            self._deps.on_session(session, [event])

    def _respond_a(self, response: Response) -> None:
        try:
            self._deps.sender.send_response(self.a.transaction, response)
        except Exception as exc:  # the transaction ended (e.g. CANCEL raced an answer)
            logger.debug("x response to A not sent: %s", exc)

    def _contact(self, leg: Leg) -> SipUri:
        return self._deps.contact(leg.destination.transport)

    def _refreshed(self) -> None:
        """The caller refreshed the session (RFC 4028 §10): restart its expiry."""
        if self._session_timer is None or self.ended:
            return
        if self._expiry is not None:
            self._expiry.cancel()
        loop = asyncio.get_running_loop()
        self._expiry = loop.call_later(self._session_timer.interval, self.feed, SessionExpired())

    def _stop_ring_timer(self) -> None:
        if self._ring_timer is not None:
            self._ring_timer.cancel()
            self._ring_timer = None

    async def add_supervisor(
        self,
        approved: Approved,
        request: SuperviseRequest,
        target: Target,
        *,
        answer_timeout: float,
    ) -> SupervisorLeg:
        """Add a supervisor party and INVITE its device (runs in the call's task; the caller
        awaits the returned leg's ``future`` for the answer)."""
        check_not_supervised(self.session, approved.supervisor, approved.monitored)
        if self.b is None or self.b.endpoint is None or self.a.endpoint is None:
            raise SupervisionRefused("SUP-106", 409, "The call is not answered")
        sup, agent, device = approved.supervisor, approved.agent, approved.device
        session, party, event = ts.add_party(
            self.session,
            role=ts.PartyRole.SUPERVISOR,
            direction=ts.Direction.OUTBOUND,
            from_=ts.Endpoint(
                phone_number=sup.number,
                name=sup.name,
                extension_id=sup.id,
                extension_number=sup.number,
                device_id=device.id,
            ),
            to=ts.Endpoint(
                phone_number=agent.number,
                name=agent.name,
                extension_id=agent.id,
                extension_number=agent.number,
            ),
            now=self._deps.clock.utcnow(),
            extension_id=sup.id,
            device_id=device.id,
            monitored=approved.monitored,
        )
        self.session = session
        self._deps.on_session(session, [event])
        codec = self._negotiated_codec()
        sources = {
            self.caller_party: self.a.endpoint.stream_id,
            self.callee_party: self.b.endpoint.stream_id,
        }
        leg = SupervisorLeg(
            self,
            party_id=party.id,
            target=target,
            sip_user=device.sip_username,
            monitored=[MonitoredStream(p, sources[p], codec) for p in approved.monitored],
            auto_answer=request.auto_answer,
            direction=request.direction,
            answer_timeout=answer_timeout,
        )
        self.supervisors.append(leg)
        self._set(party.id, ts.PartyStatus.PROCEEDING)
        await leg.start()
        return leg

    async def stop_supervisor(self, party_id: str) -> None:
        """End one supervisor's listening (REST DELETE of its party)."""
        for leg in self.supervisors:
            if leg.party_id == party_id:
                await leg.stop(reason="CallFinished")

    def _negotiated_codec(self) -> RtpMap:
        """The codec both parties use (the callee's answer's first format)."""
        assert self.b is not None and self.b.remote_sdp is not None
        media = self.b.remote_sdp.media[audio_index(self.b.remote_sdp)]
        rtpmaps = media.rtpmaps
        for fmt in media.formats:
            if fmt.isdigit() and int(fmt) in rtpmaps:
                return rtpmaps[int(fmt)]
        return RtpMap(0, "PCMU", 8000)

    async def hold(self, party_id: str, *, hold: bool) -> None:
        """Hold (or resume) a party from the network side: its peer gets a re-INVITE with
        ``sendonly`` (``sendrecv`` to resume), and the party is reported Hold (Answered).

        Raises:
            InvalidState: the party has no confirmed leg, or an offer is already in flight.
        """
        leg = next((x for x in (self.a, self.b) if x is not None and x.party_id == party_id), None)
        other = self.partner(leg) if leg is not None else None
        if other is None or other.dialog is None or other.local_sdp is None:
            raise InvalidState(f"party {party_id} has no answered leg to hold")
        direction = Direction.SENDONLY if hold else Direction.SENDRECV
        if not self._reinvites.local_offer(other, direction):
            raise InvalidState("another offer is in progress; try again")
        self._set(party_id, ts.PartyStatus.HOLD if hold else ts.PartyStatus.ANSWERED)

    def direction_changed(self, leg: Leg, direction: Direction) -> None:
        """A leg's offer changed its direction: its party goes on or off hold."""
        party = leg.party_id
        if party is None:
            return
        held = self.session.party(party).status is ts.PartyStatus.HOLD
        if is_hold(direction) and not held:
            self._set(party, ts.PartyStatus.HOLD)
        elif not is_hold(direction) and held:
            self._set(party, ts.PartyStatus.ANSWERED)


def _failure_status(statuses: list[int]) -> int:
    """The status A gets when every fork failed (RFC 3261 §16.7 step 6, simplified)."""
    if any(s in (486, 600) for s in statuses):
        return 486
    best = min(statuses)
    return best if best not in (401, 407) else 480
