"""What a user agent's call is and shows: states, end reasons, the SIP trace, and
:class:`CallView` — the state, SDP, RTP and futures a caller reads and awaits, kept apart from
the SIP flows of :class:`~callwatch.client.ua_call.UaCall` that change them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

from callwatch.client.channel import Final
from callwatch.client.errors import CallFailed
from callwatch.client.media_session import MediaSession
from callwatch.client.negotiation import StreamMedia
from callwatch.client.rtp_session import RtpSession
from callwatch.sip.dialog import Dialog
from callwatch.sip.events import Address
from callwatch.sip.headers import Headers
from callwatch.sip.message import Request, Response
from callwatch.sip.sdp import SessionDescription

__all__ = ["ALLOW", "SDP", "CallState", "CallView", "EndReason", "SipTrace", "resolve"]

SDP = "application/sdp"
"""Content type of offers and answers."""
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO"
"""Methods the user agent handles (RFC 3261 §20.5)."""
_T = TypeVar("_T")


class CallState(Enum):
    """Where a call is (see :mod:`callwatch.client.ua_call`)."""

    CALLING = "calling"
    """Our INVITE is out, no final response yet."""
    RINGING = "ringing"
    """An incoming INVITE, not answered yet."""
    ESTABLISHED = "established"
    ENDED = "ended"


class EndReason(Enum):
    """Why a call ended."""

    LOCAL_BYE = "local-bye"
    REMOTE_BYE = "remote-bye"
    LOCAL_CANCEL = "local-cancel"
    REMOTE_CANCEL = "remote-cancel"
    REJECTED = "rejected"
    """We refused an incoming INVITE."""
    FAILED = "failed"
    """Our INVITE got a non-2xx final response, timed out or its answer was unusable; or an
    in-dialog request got 481/408."""
    NO_ACK = "no-ack"
    """Our 200 was never ACKed (Timer H)."""
    CLOSED = "closed"
    """The user agent closed with the call still up."""


@dataclass(frozen=True, slots=True)
class SipTrace:
    """One SIP message a call sent or received."""

    incoming: bool
    message: Request | Response
    """As received; as built when sent (the stack adds the Via to its copy)."""
    at: float
    """Loop time."""


def resolve(future: asyncio.Future[_T], value: _T) -> None:
    """Set ``future``'s result unless it is already done (the first outcome wins)."""
    if not future.done():
        future.set_result(value)


async def _first_of(*futures: asyncio.Future[Any]) -> None:
    """Wait until one of ``futures`` is done, without cancelling the others."""
    await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)


class CallView:
    """The observable side of a call: state, dialog, media, SIP trace, and futures to await."""

    def __init__(
        self, *, media: MediaSession, invite: Request, next_hop: Address, incoming: bool
    ) -> None:
        self.media = media
        """RTP sockets and offer/answer state."""
        self.invite = invite
        """The INVITE that created the call (received, or the last one we sent)."""
        self.next_hop = next_hop
        """Where in-dialog requests go."""
        self.incoming = incoming
        self.events: list[SipTrace] = []
        """Every SIP message sent or received for this call, in order."""
        self.end_reason: EndReason | None = None
        self._loop = asyncio.get_running_loop()
        self._state = CallState.RINGING if incoming else CallState.CALLING
        self._dialog: Dialog | None = None
        self._ringing: asyncio.Future[Response] = self._loop.create_future()
        self._final: asyncio.Future[Final] = self._loop.create_future()
        self._confirmed: asyncio.Future[None] = self._loop.create_future()
        self._ended: asyncio.Future[EndReason] = self._loop.create_future()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.call_id} {self._state.value}>"

    # -- read-only views ------------------------------------------------------------------------

    @property
    def state(self) -> CallState:
        """The call's state."""
        return self._state

    @property
    def call_id(self) -> str:
        """The Call-ID."""
        return self.invite.call_id

    @property
    def dialog(self) -> Dialog:
        """The dialog (incoming calls have one from the start, outgoing ones once answered).

        Raises:
            RuntimeError: an outgoing call not answered yet.
        """
        if self._dialog is None:
            raise RuntimeError(f"{self!r} has no dialog yet")
        return self._dialog

    @property
    def request_headers(self) -> Headers:
        """Headers of the INVITE (as received for incoming calls)."""
        return self.invite.headers

    @property
    def rtp(self) -> RtpSession:
        """The first (usually only) RTP session."""
        return self.media.sessions[0]

    @property
    def streams(self) -> list[StreamMedia]:
        """What each media section negotiated to."""
        return self.media.streams

    @property
    def local_sdp(self) -> SessionDescription | None:
        """Our latest SDP."""
        return self.media.local_sdp

    @property
    def remote_sdp(self) -> SessionDescription | None:
        """The peer's latest SDP."""
        return self.media.remote_sdp

    @property
    def responses(self) -> list[Response]:
        """Responses received, in order."""
        return [t.message for t in self.events if t.incoming and isinstance(t.message, Response)]

    @property
    def requests(self) -> list[Request]:
        """Requests received, in order (the INVITE first for incoming calls)."""
        return [t.message for t in self.events if t.incoming and isinstance(t.message, Request)]

    # -- waiting --------------------------------------------------------------------------------

    async def answered(self) -> None:
        """Wait until the call is answered: 200 received and ACKed (outgoing), 200 sent
        (incoming).

        Raises:
            CallFailed: the INVITE ended with a non-2xx, a timeout (408), a transport error
                (503), or an answer we could not use (488); or the call ended first.
        """
        final = await asyncio.shield(self._final)
        if final.status >= 300:
            raise CallFailed(final.status, final.reason, final.response)

    async def ringing(self) -> Response:
        """The first 180/183 of an outgoing call, or its 2xx if it was answered without one.

        Raises:
            CallFailed: the INVITE failed before any 18x.
        """
        await _first_of(self._ringing, self._final)
        if self._ringing.done():
            return self._ringing.result()
        await self.answered()
        final = self._final.result()
        assert final.response is not None
        return final.response

    async def confirmed(self) -> None:
        """Wait until the call is confirmed: our 200 ACKed (incoming), answered (outgoing).

        Raises:
            CallFailed: the call ended first (status 487).
        """
        await _first_of(self._confirmed, self._ended)
        if not self._confirmed.done():
            raise CallFailed(487, f"call ended ({self._ended.result().value})")

    async def ended(self) -> EndReason:
        """Wait until the call ends, however it ends (BYE, CANCEL, failure, hang-up)."""
        return await asyncio.shield(self._ended)

    # -- media helpers --------------------------------------------------------------------------

    async def send_payloads(
        self, payloads: Sequence[bytes], *, paced: bool = True, stream: int = 0
    ) -> None:
        """Send ``payloads`` on stream ``stream`` with its negotiated payload type and clock."""
        media = self.streams[stream]
        await self.media.sessions[stream].send_payloads(
            payloads,
            payload_type=media.payload_type,
            clock_step=media.clock_step,
            ptime=media.ptime,
            paced=paced,
        )

    def _trace(self, incoming: bool, message: Request | Response) -> None:
        self.events.append(SipTrace(incoming, message, self._loop.time()))
