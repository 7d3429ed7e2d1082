"""Requests inside one dialog (RFC 3261 §12.2.1), sent the way the user agent's calls need.

A :class:`DialogRequests` builds each request with the dialog (Request-URI, Route set, next
CSeq), sends it to the call's next hop, answers one 401/407 with a fresh request carrying the
credentials (a new CSeq, RFC 3261 §22.2), and feeds final responses back to the dialog so a
481/408 or the answer to our BYE terminates it. The ACK to a 2xx is built by the dialog too and
remembered by the channel for retransmitted 2xx responses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from callwatch.client.channel import Exchange, Final, SipChannel
from callwatch.client.digest import Credentials, authorization, with_header
from callwatch.ids import IdGenerator
from callwatch.sip.dialog import Dialog
from callwatch.sip.events import Address
from callwatch.sip.message import Request, Response

__all__ = ["DialogRequests"]

Trace = Callable[[bool, Request | Response], None]


class DialogRequests:
    """Sends requests in ``dialog`` to ``next_hop`` (see the module docstring)."""

    def __init__(
        self,
        *,
        channel: SipChannel,
        dialog: Dialog,
        next_hop: Address,
        credentials: Credentials | None,
        ids: IdGenerator,
        trace: Trace,
    ) -> None:
        self._channel = channel
        self.dialog = dialog
        self._next_hop = next_hop
        self._credentials = credentials
        self._ids = ids
        self._trace = trace

    def send(self, request: Request) -> Exchange:
        """Send a request built by the dialog; its outcome arrives on the exchange."""
        self._trace(False, request)
        return self._channel.request(request, self._next_hop)

    def bye(self) -> Exchange:
        """Send BYE."""
        return self.send(self.dialog.create_request("BYE"))

    def ack(self, invite_cseq: int, body: bytes = b"", content_type: str | None = None) -> None:
        """ACK the 2xx to the INVITE numbered ``invite_cseq``."""
        ack = self.dialog.create_ack(invite_cseq, body, content_type)
        self._channel.send_ack(ack, self._next_hop)
        self._trace(False, ack)

    async def request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Final:
        """Send ``method`` in the dialog, answer one challenge, return the final outcome."""
        extra = list(headers)
        request = self.dialog.create_request(
            method, headers=extra, body=body, content_type=content_type
        )
        final = await self._complete(request)
        retry = self._authorized(request, final, extra)
        return final if retry is None else await self._complete(retry)

    async def _complete(self, request: Request) -> Final:
        final = await self.send(request).final()
        if final.response is not None:
            self._trace(True, final.response)
            self.dialog.receive_response(final.response)
        return final

    def _authorized(
        self, request: Request, final: Final, headers: list[tuple[str, str]]
    ) -> Request | None:
        response, credentials = final.response, self._credentials
        if response is None or credentials is None or final.status not in (401, 407):
            return None
        retry = self.dialog.create_request(
            request.method,
            headers=headers,
            body=request.body,
            content_type=request.headers.get("content-type"),
        )
        header = authorization(retry, response, credentials, cnonce=self._ids.token(16))
        return None if header is None else with_header(retry, header, next_cseq=False)
