"""A real SIP user agent over loopback sockets, for tests, the call simulator and the softphone.

Theory of operation
-------------------
A :class:`UserAgent` owns a :class:`~callwatch.client.channel.SipChannel` (one sans-I/O
:class:`~callwatch.sip.stack.SipStack` on UDP and TCP listeners, TLS client connections on
demand) and decides what to do with every request the channel does not route to a waiting
coroutine:

- a new INVITE becomes a ringing :class:`~callwatch.client.ua_call.UaCall` handed out by
  :meth:`UserAgent.next_call`, handled by the answer policy: ``reject_with`` answers at once;
  otherwise 180 is sent, the RTP sockets are bound and the answer SDP is built, and
  ``auto_answer_after`` (seconds) sends the 200 — None (or ``never_answer``) leaves it to
  :meth:`~callwatch.client.ua_call.UaCall.answer`;
- requests inside a dialog (BYE, re-INVITE, OPTIONS, INFO, ACK) go to their call; a CANCEL
  ends a ringing call with 487; requests for unknown dialogs get 481;
- OPTIONS outside a dialog gets 200, other methods 405.

Outgoing requests — REGISTER (:meth:`UserAgent.register`) and INVITE (:meth:`UserAgent.dial`,
:meth:`UserAgent.call`) — answer one digest challenge (401/407) with the given credentials.
For TLS the registration uses RFC 5626 outbound (``;ob``, ``reg-id``, ``+sip.instance``) so a
server reaches us back over our own connection. This module never imports the server side
(``callwatch.pbx``, ``api``, ``store``, ``app``): it must work against any compatible server.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType

from callwatch.client.call_model import ALLOW, SDP, CallState
from callwatch.client.channel import SipChannel
from callwatch.client.digest import Credentials, authorization, with_header
from callwatch.client.errors import RegistrationFailed
from callwatch.client.media_session import MediaSession
from callwatch.client.ua_call import UaCall
from callwatch.ids import IdGenerator
from callwatch.sip.errors import SipError
from callwatch.sip.events import (
    Address,
    CancelReceived,
    ConnectionClosed,
    RequestReceived,
    SipEvent,
    TransactionTimedOut,
)
from callwatch.sip.headers import Headers
from callwatch.sip.message import Request, Response, make_response
from callwatch.sip.offer_answer import PCMU, TELEPHONE_EVENT, CodecSpec
from callwatch.sip.sdp import SessionDescription
from callwatch.sip.uri import NameAddr, SipUri

__all__ = ["UserAgent"]

logger = logging.getLogger(__name__)

DEFAULT_CODECS = (PCMU, TELEPHONE_EVENT)
"""What a user agent offers and accepts unless told otherwise."""
MAX_CLOSED_FLOWS = 64
"""Closed connections kept for :meth:`UserAgent.next_closed_flow`; later ones are dropped."""


def _rewritten(
    media: MediaSession, rewrite: Callable[[SessionDescription], SessionDescription] | None
) -> SessionDescription:
    offer = media.make_offer()
    if rewrite is not None:
        offer = media.local_sdp = rewrite(offer)
    return offer


@dataclass(slots=True)
class _Registration:
    server: Address
    credentials: Credentials
    domain: str
    call_id: str
    cseq: int = 0


class UserAgent:
    """A SIP user agent with real sockets (see the module docstring).

    Args:
        username: user part of our address and Contact (``register`` replaces it).
        host: address to bind and to advertise in SIP and SDP.
        domain: domain of our address (From of calls); defaults to ``host``.
        codecs: codec preference for offers and answers.
        offer_order: answer incoming offers with the offer's most preferred codec among
            ``codecs`` rather than our most preferred one it lists.
        auto_answer_after: answer incoming calls this many seconds after ringing; None
            leaves answering to ``UaCall.answer()``.
        reject_with: refuse incoming calls with this status (e.g. 486) instead.
        never_answer: only ever ring (180), even if ``auto_answer_after`` is set.
        t1: RFC 3261 T1; transactions time out after 64·T1.
        ids: identifier source (seed it for reproducible tags).
        tls_context: client context for TLS; the default accepts any certificate.
    """

    def __init__(
        self,
        *,
        username: str = "ua",
        host: str = "127.0.0.1",
        domain: str | None = None,
        codecs: Sequence[CodecSpec] = DEFAULT_CODECS,
        offer_order: bool = False,
        auto_answer_after: float | None = None,
        reject_with: int | None = None,
        never_answer: bool = False,
        t1: float = 0.5,
        ids: IdGenerator | None = None,
        tls_context: ssl.SSLContext | None = None,
        user_agent: str = "callwatch-ua",
    ) -> None:
        self.username = username
        self.host = host
        self.domain = domain or host
        self.codecs = tuple(codecs)
        self.offer_order = offer_order
        self.auto_answer_after = auto_answer_after
        self.reject_with = reject_with
        self.never_answer = never_answer
        self._ids = ids or IdGenerator()
        self.instance_id = f"urn:uuid:{uuid.UUID(self._ids.hex(16))}"
        """RFC 5626 ``+sip.instance`` of this user agent."""
        self._channel = SipChannel(
            self._on_event, ids=self._ids, t1=t1, user_agent=user_agent, tls_client=tls_context
        )
        self._incoming: asyncio.Queue[UaCall] = asyncio.Queue()
        self._closed_flows: asyncio.Queue[Address] = asyncio.Queue(maxsize=MAX_CLOSED_FLOWS)
        self._calls: list[UaCall] = []
        self._invites: dict[str, UaCall] = {}
        self._registration: _Registration | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the UDP and TCP listeners (ports chosen by the OS)."""
        await self._channel.start(self.host)

    async def close(self) -> None:
        """Hang up live calls (BYE, not awaited), then close every socket and task."""
        for call in self._calls:
            call.close()
        await self._channel.close()

    async def __aenter__(self) -> UserAgent:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- addresses ------------------------------------------------------------------------------

    def port(self, transport: str = "UDP") -> int:
        """Our listening port for ``transport`` (TLS shares the TCP one in Vias)."""
        return self._channel.ports[transport.upper()]

    def address(self, transport: str = "UDP") -> Address:
        """Where peers reach us on ``transport`` (what another UA passes as ``server``)."""
        return Address(transport.upper(), self.host, self.port(transport))

    def uri(self, transport: str = "UDP", *, user: str | None = None) -> str:
        """A URI that reaches this UA directly, e.g. ``sip:b@127.0.0.1:40000;transport=tcp``."""
        return str(self.contact_uri(transport, user=user).without_params("ob"))

    @property
    def contact(self) -> SipUri:
        """Our UDP Contact URI."""
        return self.contact_uri("UDP")

    def contact_uri(self, transport: str = "UDP", *, user: str | None = None) -> SipUri:
        """Our Contact URI on ``transport`` (``;transport=`` for TCP/TLS, ``;ob`` for TLS)."""
        transport = transport.upper()
        params: dict[str, str | None] = {}
        if transport != "UDP":
            params["transport"] = transport.lower()
        if transport == "TLS":
            params["ob"] = None
        return SipUri(
            host=self.host, user=user or self.username, port=self.port(transport), params=params
        )

    @property
    def calls(self) -> list[UaCall]:
        """Calls not ended yet."""
        return [call for call in self._calls if call.state is not CallState.ENDED]

    # -- registration ---------------------------------------------------------------------------

    async def register(
        self,
        server: Address,
        *,
        username: str,
        auth_username: str,
        password: str,
        domain: str,
        expires: int = 3600,
    ) -> Response:
        """Register ``sip:username@domain`` at ``server`` with our Contact (again: a refresh).

        Returns:
            The 2xx response.
        Raises:
            RegistrationFailed: a non-2xx final (after at most one digest answer), 408 on
                timeout, 503 on a transport error.
        """
        self.username, self.domain = username, domain
        previous = self._registration
        refresh = previous is not None and (previous.server, previous.domain) == (server, domain)
        self._registration = _Registration(  # a refresh keeps Call-ID and CSeq (RFC 3261 §10.2.4)
            server=server,
            credentials=Credentials(username, auth_username, password),
            domain=domain,
            call_id=previous.call_id if previous and refresh else self._ids.call_id(self.host),
            cseq=previous.cseq if previous and refresh else 0,
        )
        return await self._register(expires)

    async def unregister(self) -> Response | None:
        """Remove our binding (Expires: 0); None if we never registered."""
        if self._registration is None:
            return None
        return await self._register(0)

    async def _register(self, expires: int) -> Response:
        reg = self._registration
        assert reg is not None
        reg.cseq += 1
        request = self._register_request(reg, expires)
        final = await self._channel.request(request, reg.server).final()
        if final.response is not None and final.status in (401, 407):
            header = authorization(
                request, final.response, reg.credentials, cnonce=self._ids.token(16)
            )
            if header is not None:
                request = with_header(request, header, next_cseq=True)
                reg.cseq = request.cseq.seq
                final = await self._channel.request(request, reg.server).final()
        if final.response is None or final.status >= 300:
            raise RegistrationFailed(final.status, final.reason, final.response)
        return final.response

    def _register_request(self, reg: _Registration, expires: int) -> Request:
        aor = SipUri(host=reg.domain, user=reg.credentials.username)
        contact = NameAddr(self.contact_uri(reg.server.transport))
        if reg.server.transport.upper() == "TLS":  # RFC 5626 §4.2: a flow-bound registration
            contact = NameAddr(
                contact.uri, params={"reg-id": "1", "+sip.instance": f'"<{self.instance_id}>"'}
            )
        headers = Headers()
        headers.add("From", str(NameAddr(aor).with_tag(self._ids.tag())))
        headers.add("To", str(NameAddr(aor)))
        headers.add("Call-ID", reg.call_id)
        headers.add("CSeq", f"{reg.cseq} REGISTER")
        headers.add("Contact", str(contact))
        headers.add("Expires", str(expires))
        headers.add("Allow", ALLOW)
        return Request(headers=headers, method="REGISTER", uri=SipUri(host=reg.domain))

    # -- outgoing calls -------------------------------------------------------------------------

    async def dial(
        self,
        target_uri: str,
        server: Address,
        *,
        auth: Credentials | tuple[str, str, str] | None = None,
        codecs: Sequence[CodecSpec] | None = None,
        srtp: bool = False,
        headers: Iterable[tuple[str, str]] = (),
        from_uri: str | None = None,
        streams: int = 1,
        rewrite_offer: Callable[[SessionDescription], SessionDescription] | None = None,
    ) -> UaCall:
        """Send an INVITE with our SDP offer to ``target_uri`` via ``server`` and return the
        call at once (state CALLING): ``await call.answered()``, ``await call.ringing()``,
        ``await call.cancel()``.

        Args:
            target_uri: the Request-URI and To, e.g. ``sip:102@sip.example.com``.
            server: where the INVITE and every in-dialog request go.
            auth: ``(username, auth_username, password)`` to answer one 401/407.
            codecs: codec preference for the offer (default: the UA's).
            srtp: offer ``RTP/SAVP`` with an SDES key.
            headers: extra headers for the INVITE.
            from_uri: our From (default ``sip:<auth username or username>@<domain>``).
            streams: number of audio sections to offer.
            rewrite_offer: edits our offer before it is sent (e.g. a test server adding
                RingCentral's ``i=`` and ``a=label`` lines); the result is our offer.
        """
        credentials = Credentials.of(auth) if auth is not None else None
        media = MediaSession(host=self.host, codecs=codecs or self.codecs, ids=self._ids)
        await media.open(streams, srtp=srtp)
        user = credentials.username if credentials else self.username
        invite = self._invite_request(
            SipUri.parse(target_uri),
            from_uri=SipUri.parse(from_uri) if from_uri else SipUri(self.domain, user=user),
            contact=self.contact_uri(server.transport),
            body=bytes(_rewritten(media, rewrite_offer)),
            headers=headers,
        )
        call = self._new_call(
            media=media,
            invite=invite,
            next_hop=server,
            incoming=False,
            transport=server.transport,
            credentials=credentials,
        )
        call.start()
        return call

    async def call(
        self,
        target_uri: str,
        server: Address,
        *,
        auth: Credentials | tuple[str, str, str] | None = None,
        codecs: Sequence[CodecSpec] | None = None,
        srtp: bool = False,
        headers: Iterable[tuple[str, str]] = (),
        from_uri: str | None = None,
        streams: int = 1,
    ) -> UaCall:
        """:meth:`dial` and wait for the answer.

        Raises:
            CallFailed: the INVITE ended with a non-2xx (after at most one digest answer),
                timed out (408) or hit a transport error (503).
        """
        call = await self.dial(
            target_uri,
            server,
            auth=auth,
            codecs=codecs,
            srtp=srtp,
            headers=headers,
            from_uri=from_uri,
            streams=streams,
        )
        await call.answered()
        return call

    def _invite_request(
        self,
        target: SipUri,
        *,
        from_uri: SipUri,
        contact: SipUri,
        body: bytes,
        headers: Iterable[tuple[str, str]],
    ) -> Request:
        fields = Headers()
        fields.add("From", str(NameAddr(from_uri).with_tag(self._ids.tag())))
        fields.add("To", str(NameAddr(target)))
        fields.add("Call-ID", self._ids.call_id(self.host))
        fields.add("CSeq", "1 INVITE")
        fields.add("Contact", f"<{contact}>")
        fields.add("Allow", ALLOW)
        fields.add("Content-Type", SDP)
        for name, value in headers:
            fields.add(name, value)
        return Request(headers=fields, body=body, method="INVITE", uri=target)

    # -- incoming requests ----------------------------------------------------------------------

    async def next_closed_flow(self) -> Address:
        """The next TCP/TLS connection (flow) that closed, e.g. the one a registration was
        made over: re-register then (RFC 5626 §4.4). Its ``connection`` names the flow."""
        return await self._closed_flows.get()

    async def next_call(self) -> UaCall:
        """The next incoming call, once its INVITE was handled by the answer policy (wrap in a
        timeout)."""
        return await self._incoming.get()

    def _on_event(self, event: SipEvent) -> None:
        if isinstance(event, RequestReceived):
            if event.transaction is None:
                self._on_ack(event.request)
            else:
                self._on_request(event, event.transaction)
        elif isinstance(event, CancelReceived):
            call = self._invites.get(event.transaction)
            if call is not None:
                call.on_cancel()
        elif isinstance(event, TransactionTimedOut) and event.method == "INVITE":
            call = self._invites.get(event.transaction)
            if call is not None:
                call.on_ack_timeout()
        elif isinstance(event, ConnectionClosed):
            if not self._closed_flows.full():
                self._closed_flows.put_nowait(event.peer)
        else:
            logger.debug("= %s", event)

    def _on_ack(self, ack: Request) -> None:
        call = self._find(ack)
        if call is not None:
            call.on_ack(ack)

    def _on_request(self, event: RequestReceived, tx: str) -> None:
        request = event.request
        call = self._find(request)
        if call is not None:
            call.on_request(event)
        elif request.to.tag is not None:
            self._respond(request, tx, 481)
        elif request.method == "INVITE":
            self._on_invite(event, tx)
        else:
            self._respond(request, tx, 200 if request.method == "OPTIONS" else 405)

    def _respond(self, request: Request, tx: str, status: int) -> None:
        headers = [("Allow", ALLOW), ("Accept", SDP)]
        tag = self._ids.tag()
        self._channel.respond(tx, make_response(request, status, to_tag=tag, headers=headers))

    def _on_invite(self, event: RequestReceived, tx: str) -> None:
        try:
            call = self._new_call(
                media=MediaSession(
                    host=self.host, codecs=self.codecs, ids=self._ids, offer_order=self.offer_order
                ),
                invite=event.request,
                next_hop=event.source,
                incoming=True,
                transport=event.source.transport,
                transaction=tx,
            )
        except SipError as exc:  # no From tag or Contact: no dialog can be made
            logger.info("! refused INVITE: %s", exc)
            self._respond(event.request, tx, 400)
            return
        if self.reject_with is not None:
            call.reject(self.reject_with)
            self._incoming.put_nowait(call)
            return
        call.ring()
        self._channel.spawn(self._admit(call))

    async def _admit(self, call: UaCall) -> None:
        await call.prepare()
        self._incoming.put_nowait(call)
        delay = self.auto_answer_after
        if call.state is CallState.RINGING and delay is not None and not self.never_answer:
            call.answer_after(delay)

    def _new_call(
        self,
        *,
        media: MediaSession,
        invite: Request,
        next_hop: Address,
        incoming: bool,
        transport: str,
        transaction: str | None = None,
        credentials: Credentials | None = None,
    ) -> UaCall:
        call = UaCall(
            channel=self._channel,
            media=media,
            ids=self._ids,
            contact=self.contact_uri(transport),
            invite=invite,
            next_hop=next_hop,
            incoming=incoming,
            transaction=transaction,
            credentials=credentials,
        )
        self._calls = [*self.calls, call]
        self._invites = {key: c for key, c in self._invites.items() if c in self._calls}
        if transaction is not None:
            self._invites[transaction] = call
        return call

    def _find(self, request: Request) -> UaCall | None:
        return next((call for call in self._calls if call.owns(request)), None)
