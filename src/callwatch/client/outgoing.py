"""Driving our initial INVITE: provisional responses, one digest answer, CANCEL, the final.

Theory of operation: an :class:`OutgoingInvite` sends the INVITE through the channel and hands
its caller, one at a time, each 1xx (a :class:`Response`) and finally a
:class:`~callwatch.client.channel.Final`. A 401/407 is answered once, with the same Call-ID and
From tag and the next CSeq number (RFC 3261 §8.1.3.5, §22.2) — unless a CANCEL was asked for,
then the challenge is the final outcome. :meth:`OutgoingInvite.cancel` asks the stack to CANCEL
the current INVITE (sent once a provisional response arrived, RFC 3261 §9.1). The ACK to a 2xx
belongs to the dialog and is sent by the call.
"""

from __future__ import annotations

from collections.abc import Callable

from callwatch.client.channel import Exchange, Final, SipChannel, final_of
from callwatch.client.digest import Credentials, authorization, with_header
from callwatch.ids import IdGenerator
from callwatch.sip.events import Address, ResponseReceived
from callwatch.sip.message import Request, Response

__all__ = ["OutgoingInvite"]

Trace = Callable[[bool, Request | Response], None]


class OutgoingInvite:
    """Our INVITE and its retry (see the module docstring)."""

    def __init__(
        self,
        *,
        channel: SipChannel,
        invite: Request,
        next_hop: Address,
        credentials: Credentials | None,
        ids: IdGenerator,
        trace: Trace,
    ) -> None:
        self._channel = channel
        self.invite = invite
        """The INVITE in flight (the retry once a challenge was answered)."""
        self._next_hop = next_hop
        self._credentials = credentials
        self._ids = ids
        self._trace = trace
        self._exchange: Exchange | None = None
        self._challenged = False
        self.cancelling = False
        """True once :meth:`cancel` was called."""

    def start(self) -> None:
        """Send the INVITE."""
        self._exchange = self._send(self.invite)

    async def next(self) -> Response | Final:
        """The next provisional response, or the final outcome."""
        assert self._exchange is not None, "start() first"
        while True:
            outcome = await self._exchange.next()
            final = final_of(outcome)
            if final is None:
                assert isinstance(outcome, ResponseReceived)
                self._trace(True, outcome.response)
                return outcome.response
            if final.response is not None:
                self._trace(True, final.response)
            retry = self._retry(final)
            if retry is None:
                return final
            self.invite = retry
            self._exchange = self._send(retry)

    def cancel(self) -> None:
        """CANCEL the INVITE in flight (a no-op once it has a final response)."""
        self.cancelling = True
        if self._exchange is not None:
            self._channel.cancel(self._exchange.key)

    def _retry(self, final: Final) -> Request | None:
        response, credentials = final.response, self._credentials
        if response is None or credentials is None or final.status not in (401, 407):
            return None
        if self._challenged or self.cancelling:
            return None
        header = authorization(self.invite, response, credentials, cnonce=self._ids.token(16))
        if header is None:
            return None
        self._challenged = True
        return with_header(self.invite, header, next_cseq=True)

    def _send(self, request: Request) -> Exchange:
        self._trace(False, request)
        return self._channel.request(request, self._next_hop)
