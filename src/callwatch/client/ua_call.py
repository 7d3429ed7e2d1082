"""One call of the user agent: its dialog, its media and the SIP flows that move it.

Theory of operation
-------------------
A :class:`UaCall` is created by the :class:`~callwatch.client.ua.UserAgent` for an INVITE it
sends (``CALLING``) or receives (``RINGING``) and moves through::

    CALLING ──2xx (ACKed)──► ESTABLISHED ──BYE sent/received, no ACK──► ENDED
       └──non-2xx final, CANCEL (487)────────────────────────────────────┘
    RINGING ──answer(): 200──► ESTABLISHED
       └──reject(), CANCEL received (487), BYE in the early dialog─────► ENDED

Outgoing INVITEs are driven by one task owned by the user agent's channel: it records 1xx,
answers one 401/407 with credentials, ACKs the 2xx (RFC 3261 §13.2.2.4) and applies the SDP
answer. Incoming calls are answered from a media session prepared when the INVITE arrived.
In-dialog requests (BYE, re-INVITE, OPTIONS, INFO, ACK) are handed over by the user agent.

In-dialog requests go to :attr:`UaCall.next_hop` — the server an outgoing call was sent to, or
the sender of an incoming INVITE — with the Request-URI and Route set of the dialog: the
outbound-proxy model of softphones (RFC 5626 flows), which works against any proxy or B2BUA.

Every SIP message the call sends or receives is appended to :attr:`UaCall.events`. Nothing here
sleeps: callers await futures (:meth:`UaCall.answered`, :meth:`UaCall.ended` …) and wrap them in
timeouts where they want one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from callwatch.client.call_model import ALLOW, SDP, CallState, CallView, EndReason, resolve
from callwatch.client.channel import Final, SipChannel
from callwatch.client.digest import Credentials
from callwatch.client.errors import CallFailed
from callwatch.client.in_dialog import DialogRequests
from callwatch.client.incoming import invite_response, refusal_status, sdp_for_invite
from callwatch.client.media_session import MediaSession, OfferRejected
from callwatch.client.outgoing import OutgoingInvite
from callwatch.ids import IdGenerator
from callwatch.sip.dialog import Dialog
from callwatch.sip.errors import ParseError, SipError
from callwatch.sip.events import Address, RequestReceived
from callwatch.sip.message import Request, Response, make_response
from callwatch.sip.sdp import Direction, SessionDescription
from callwatch.sip.uri import SipUri

__all__ = ["UaCall"]

logger = logging.getLogger(__name__)

_OK_IN_DIALOG = frozenset({"OPTIONS", "INFO"})


class UaCall(CallView):
    """A call of a :class:`~callwatch.client.ua.UserAgent` (build through the user agent).

    What it shows — state, dialog, SDP, RTP, the SIP trace — and the futures to wait on are
    documented on :class:`~callwatch.client.call_model.CallView`.
    """

    def __init__(
        self,
        *,
        channel: SipChannel,
        media: MediaSession,
        ids: IdGenerator,
        contact: SipUri,
        invite: Request,
        next_hop: Address,
        incoming: bool,
        transaction: str | None = None,
        credentials: Credentials | None = None,
    ) -> None:
        super().__init__(media=media, invite=invite, next_hop=next_hop, incoming=incoming)
        self._channel = channel
        self._ids = ids
        self._contact = contact
        self._invite_tx = transaction
        self._credentials = credentials
        self._outgoing: OutgoingInvite | None = None
        self._requests: DialogRequests | None = None
        self._local_tag = ids.tag()
        self._reinviting = False
        self._answer_timer: asyncio.TimerHandle | None = None
        self._prepared: asyncio.Future[None] = self._loop.create_future()
        if incoming:
            self._trace(True, invite)
            self._dialog = Dialog.from_uas(
                invite, self._local_tag, local_target=contact, early=True
            )
        else:
            self._outgoing = OutgoingInvite(
                channel=channel,
                invite=invite,
                next_hop=next_hop,
                credentials=credentials,
                ids=ids,
                trace=self._trace,
            )

    # -- incoming calls -------------------------------------------------------------------------

    def ring(self) -> None:
        """Send 180 Ringing (creates the early dialog at the caller)."""
        if self._state is CallState.RINGING:
            self._respond_invite(180)

    async def prepare(self) -> None:
        """Bind RTP sockets and build our SDP for the 200; rejects the call with 488 (400 for
        bad SDP) if that fails."""
        try:
            await sdp_for_invite(self.media, self.invite)
        except (ParseError, OfferRejected) as exc:
            logger.info("! %s: cannot answer the offer: %s", self.call_id, exc)
            self.reject(refusal_status(exc))
        finally:
            if self._state is CallState.ENDED:
                self.media.close()
            if not self._prepared.done():
                self._prepared.set_result(None)

    async def answer(self) -> None:
        """Answer an incoming call with 200 and our SDP (once its media is prepared).

        Raises:
            CallFailed: the call is no longer ringing (cancelled, rejected, answered).
        """
        await asyncio.shield(self._prepared)
        if self._state is not CallState.RINGING:
            raise CallFailed(481, f"cannot answer a call in state {self._state.value}")
        self._answer_now()

    def answer_after(self, delay: float) -> None:
        """Answer ``delay`` seconds from now, unless the call ends first."""
        self._answer_timer = self._loop.call_later(delay, self._answer_now)

    def _answer_now(self) -> None:
        self._answer_timer = None
        if self._state is not CallState.RINGING or self.media.local_sdp is None:
            return
        self._respond_invite(200, bytes(self.media.local_sdp))
        self._state = CallState.ESTABLISHED
        resolve(self._final, Final(200, "OK", None))

    def reject(self, status: int = 486) -> None:
        """Refuse an incoming call that is still ringing with a final ``status`` (≥ 300)."""
        if self._state is CallState.RINGING:
            self._respond_invite(status)
            resolve(self._final, Final(status, "", None))
            self._end(EndReason.REJECTED)

    def on_cancel(self) -> None:
        """The caller sent CANCEL (the stack already answered it 200): 487 the INVITE."""
        if self._state is CallState.RINGING:
            self._respond_invite(487)
            resolve(self._final, Final(487, "Request Terminated", None))
            self._end(EndReason.REMOTE_CANCEL)

    def on_ack(self, ack: Request) -> None:
        """An ACK to our 2xx; it carries the answer when the INVITE had no offer."""
        self._trace(True, ack)
        if ack.body and self.media.offer_pending:
            try:
                self.media.take_answer(SessionDescription.parse(ack.body))
            except ValueError as exc:
                logger.info("! %s: unusable answer in ACK: %s", self.call_id, exc)
        resolve(self._confirmed, None)

    def on_ack_timeout(self) -> None:
        """Our 200 was never ACKed: end the call with BYE (RFC 3261 §13.3.1.4)."""
        if self._state is CallState.ESTABLISHED and not self._confirmed.done():
            self._requests_in_dialog.bye()
            self._end(EndReason.NO_ACK)

    def _respond_invite(self, status: int, body: bytes = b"") -> None:
        assert self._invite_tx is not None and self._dialog is not None
        response = invite_response(
            self.invite, status, local_tag=self._local_tag, contact=self._contact, body=body
        )
        self._channel.respond(self._invite_tx, response)
        self._trace(False, response)
        self._dialog.send_response(response)

    # -- outgoing calls -------------------------------------------------------------------------

    def start(self) -> None:
        """Send the INVITE and drive it in a task owned by the channel."""
        assert self._outgoing is not None
        self._outgoing.start()
        self._channel.spawn(self._run_invite())

    async def _run_invite(self) -> None:
        assert self._outgoing is not None
        while isinstance(item := await self._outgoing.next(), Response):
            self._on_provisional(item)
        self.invite = self._outgoing.invite
        if item.status < 300 and item.response is not None:
            self._on_accepted(item.response)
        else:
            self._fail(item)

    def _on_provisional(self, response: Response) -> None:
        if response.status in (180, 183):
            resolve(self._ringing, response)
        if response.body and response.to.tag and self.media.offer_pending:
            try:  # early media: the answer in a 183 points our sockets at the peer
                self.media.take_answer(SessionDescription.parse(response.body))
            except ValueError:
                logger.debug("x %s: unusable SDP in %s", self.call_id, response.status)

    def _on_accepted(self, response: Response) -> None:
        try:
            self._dialog = Dialog.from_uac(self.invite, response)
        except SipError as exc:
            self._fail(Final(502, f"bad 2xx: {exc}", response))
            return
        self._requests_in_dialog.ack(self.invite.cseq.seq)
        if self._cancelling or self._state is CallState.ENDED:  # the 200 crossed our CANCEL
            resolve(self._final, Final(response.status, response.reason, response))
            self._requests_in_dialog.bye()
            self._end(EndReason.LOCAL_CANCEL)
            return
        try:
            if response.body or self.media.offer_pending:
                self.media.take_answer(SessionDescription.parse(response.body))
        except ValueError as exc:
            self._requests_in_dialog.bye()
            self._fail(Final(488, f"unusable answer: {exc}", response))
            return
        self._state = CallState.ESTABLISHED
        resolve(self._final, Final(response.status, response.reason, response))
        resolve(self._confirmed, None)

    def _fail(self, final: Final) -> None:
        resolve(self._final, final)
        self._end(EndReason.LOCAL_CANCEL if self._cancelling else EndReason.FAILED)

    async def cancel(self) -> int:
        """CANCEL an outgoing call that is not answered yet (sent once a 1xx arrived).

        Returns:
            The INVITE's final status: 487 normally, 200 if the answer crossed the CANCEL (the
            call is then hung up at once).
        """
        if self._state is CallState.CALLING and self._outgoing is not None:
            self._outgoing.cancel()
        return (await asyncio.shield(self._final)).status

    @property
    def _cancelling(self) -> bool:
        return self._outgoing is not None and self._outgoing.cancelling

    # -- in-dialog requests ---------------------------------------------------------------------

    def owns(self, request: Request) -> bool:
        """True when ``request`` belongs to this call's dialog."""
        return self._dialog is not None and self._dialog.matches(request)

    def on_request(self, event: RequestReceived) -> None:
        """An in-dialog request other than ACK (the user agent routes it here)."""
        request, tx = event.request, event.transaction
        assert tx is not None
        self._trace(True, request)
        try:
            self.dialog.receive_request(request)
        except SipError as exc:
            self._reply(request, tx, exc.status_hint or 400)
            return
        if request.method == "BYE":
            self._reply(request, tx, 200)
            if self._state is CallState.RINGING:  # a BYE in the early dialog ends the INVITE
                self._respond_invite(487)
            self._end(EndReason.REMOTE_BYE)
        elif request.method == "INVITE":
            self._channel.spawn(self._on_reinvite(request, tx))
        else:
            self._reply(request, tx, 200 if request.method in _OK_IN_DIALOG else 501)

    def _reply(
        self, request: Request, tx: str, status: int, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        response = make_response(request, status, headers=[("Allow", ALLOW), *headers])
        self._channel.respond(tx, response)
        self._trace(False, response)

    async def _on_reinvite(self, request: Request, tx: str) -> None:
        if self._reinviting or self._state is not CallState.ESTABLISHED:
            self._reply(request, tx, 491 if self._reinviting else 481)
            return
        try:
            sdp = await sdp_for_invite(self.media, request)
        except (ParseError, OfferRejected) as exc:
            logger.info("! %s: re-INVITE refused: %s", self.call_id, exc)
            self._reply(request, tx, refusal_status(exc))
            return
        local_tag = self.dialog.local_tag
        response = invite_response(
            request, 200, local_tag=local_tag, contact=self._contact, body=bytes(sdp)
        )
        self._channel.respond(tx, response)
        self._trace(False, response)

    async def reinvite(self, direction: Direction | str = Direction.SENDRECV) -> Response:
        """Send a re-INVITE offering our streams with ``direction`` (``sendonly`` = hold).

        Returns:
            The 2xx (already ACKed; the answer is applied to the media).
        Raises:
            CallFailed: the re-INVITE was refused or timed out; the call stays up (RFC 3261
                §14.1) unless the status was 481 or 408.
            RuntimeError: the call is not established, or another re-INVITE is pending.
        """
        if self._state is not CallState.ESTABLISHED or self._reinviting:
            raise RuntimeError(f"cannot re-INVITE {self!r} now")
        self._reinviting = True
        try:
            offer = self.media.make_offer(Direction(direction))
            final = await self.send_request("INVITE", body=bytes(offer), content_type=SDP)
        finally:
            self._reinviting = False
        if final.response is None or final.status >= 300:
            raise CallFailed(final.status, final.reason, final.response)
        self._requests_in_dialog.ack(final.response.cseq.seq)
        self.media.take_answer(SessionDescription.parse(final.response.body))
        return final.response

    async def send_request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Final:
        """Send an in-dialog request (INFO, OPTIONS …; one 401/407 is answered) and return
        its final outcome; a 481 or 408 ends the call."""
        final = await self._requests_in_dialog.request(
            method, body=body, content_type=content_type, headers=headers
        )
        if final.status in (408, 481):
            self._end(EndReason.FAILED)
        return final

    async def hangup(self, *, timeout: float = 2.0) -> int | None:
        """End the call: BYE when established, CANCEL when calling, 603 when ringing.

        The call is ENDED at once; the peer's answer is awaited at most ``timeout`` seconds.

        Returns:
            The final status of the BYE or INVITE, or None when it did not come in time or the
            call had already ended.
        """
        if self._state is CallState.CALLING:
            try:
                async with asyncio.timeout(timeout):
                    return await self.cancel()
            except TimeoutError:
                self._end(EndReason.LOCAL_CANCEL)
                return None
        if self._state is CallState.RINGING:
            self.reject(603)
            return 603
        if self._state is not CallState.ESTABLISHED:
            return None
        exchange = self._requests_in_dialog.bye()
        self._end(EndReason.LOCAL_BYE)
        try:
            async with asyncio.timeout(timeout):
                return (await exchange.final()).status
        except TimeoutError:
            return None

    @property
    def _requests_in_dialog(self) -> DialogRequests:
        if self._requests is None or self._requests.dialog is not self._dialog:
            self._requests = DialogRequests(
                channel=self._channel,
                dialog=self.dialog,
                next_hop=self.next_hop,
                credentials=self._credentials,
                ids=self._ids,
                trace=self._trace,
            )
        return self._requests

    # -- bookkeeping ----------------------------------------------------------------------------

    def close(self) -> None:
        """End the call at once (the user agent is closing): BYE if established, without
        waiting for its answer."""
        if self._state is CallState.ESTABLISHED:
            self._requests_in_dialog.bye()
        self._end(EndReason.CLOSED)

    def _end(self, reason: EndReason) -> None:
        if self._state is CallState.ENDED:
            return
        self._state = CallState.ENDED
        self.end_reason = reason
        if self._answer_timer is not None:
            self._answer_timer.cancel()
        if self._dialog is not None:
            self._dialog.terminate()
        self.media.close()
        resolve(self._final, Final(487, "call ended", None))
        resolve(self._ended, reason)
