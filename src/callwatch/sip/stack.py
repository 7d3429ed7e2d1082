"""The SIP endpoint: transactions behind STYLE.md §2.1's five verbs (RFC 3261 §8, §17, §18).

Theory of operation
-------------------
:class:`SipStack` is sans-I/O. The adapter feeds it every datagram or framed stream message
with :meth:`~SipStack.receive`, drains :meth:`~SipStack.next_event` to the transaction user
(TU), sends :meth:`~SipStack.messages_to_send`, and re-arms one timer at
:meth:`~SipStack.get_timer`, calling :meth:`~SipStack.handle_timer` when it expires. The TU acts
with :meth:`~SipStack.send_request`, :meth:`~SipStack.send_response`,
:meth:`~SipStack.send_stateless` and :meth:`~SipStack.cancel`. Time is always the ``now``
argument; branches and tags come from the injected :class:`IdSource`.

Receiving (RFC 3261 §18.2.1, §17.2.3, RFC 3581):

- An empty or whitespace-only datagram is a keep-alive and is ignored (counted).
- Unparseable bytes give :class:`MalformedMessage`; when the start line is a request (not ACK)
  and Via, From, To, Call-ID and CSeq can be salvaged, a stateless error response (the parse
  error's status hint, the reason in the phrase) is queued; otherwise the bytes are dropped.
- A request's top Via is stamped with ``received`` (source host differs from sent-by, or
  ``rport`` was asked for) and an empty ``rport`` is filled with the source port; responses
  built from the request carry that Via. Responses go back on the same connection on stream
  transports, otherwise to ``received``:``rport`` (§18.2.2).
- A retransmitted request is absorbed by its server transaction, which re-sends its last
  response. CANCEL is answered by the stack (200, or 481 without a matching INVITE) and a live
  INVITE yields :class:`CancelReceived`. ACK for a non-2xx is absorbed; ACK for a 2xx (new branch)
  stops the 2xx retransmissions of the INVITE it matches by Call-ID, From tag and CSeq number
  and is passed up as ``RequestReceived(transaction=None)``.
- A response with more than one Via is dropped (§8.1.3.3); one matching no client transaction
  is dropped too, except a 2xx to INVITE, passed up with transaction key ``""`` so the TU can
  ACK and BYE it.

``counters`` holds: received, keepalives, malformed, dropped, retransmissions_absorbed,
retransmissions_sent, stray_2xx, timeouts, transport_errors, overload, events_dropped.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable

from callwatch.sip.errors import LocalProtocolError, ParseError, SipError
from callwatch.sip.events import (
    Address,
    CancelReceived,
    IdSource,
    MalformedMessage,
    Outgoing,
    RequestReceived,
    ResponseReceived,
    SipEvent,
    TransactionTimedOut,
    TransportError,
)
from callwatch.sip.headers import Headers, Via
from callwatch.sip.message import REASON_PHRASES, Request, Response, make_response, parse_message
from callwatch.sip.routing import response_destination, salvage_headers, same_peer, stamp_via
from callwatch.sip.transaction import (
    Effects,
    TimerConfig,
    Transaction,
    TransactionSchedule,
    TransactionState,
    client_key,
    response_key,
    server_key,
)
from callwatch.sip.transaction_client import (
    ClientTransaction,
    InviteClientTransaction,
    NonInviteClientTransaction,
)
from callwatch.sip.transaction_server import (
    InviteServerTransaction,
    NonInviteServerTransaction,
    ServerTransaction,
)
from callwatch.sip.uri import NameAddr

__all__ = ["COUNTERS", "MAX_PENDING_EVENTS", "SipStack"]

logger = logging.getLogger(__name__)

MAX_PENDING_EVENTS = 10_000
"""Events kept for a TU that does not drain them; more are dropped and counted."""
MAX_REASON_LENGTH = 120
"""Longest parse-error text put in a reason phrase."""
COUNTERS = (
    "received",
    "keepalives",
    "malformed",
    "dropped",
    "retransmissions_absorbed",
    "retransmissions_sent",
    "stray_2xx",
    "timeouts",
    "transport_errors",
    "overload",
    "events_dropped",
)
_AckIndex = tuple[str, str, int]


def _reason_text(error: ValueError) -> str:
    text = "".join(ch if ch.isprintable() else " " for ch in str(error))
    return text[:MAX_REASON_LENGTH]


def _ack_index(request: Request) -> _AckIndex:
    return (request.call_id, (request.from_.tag or "").lower(), request.cseq.seq)


def _copy_request(request: Request) -> Request:
    headers = request.headers.copy()
    return Request(headers=headers, body=request.body, method=request.method, uri=request.uri)


def _check_request(request: Request) -> None:
    try:
        if request.cseq.method != request.method:
            raise LocalProtocolError(f"CSeq method {request.cseq.method} != {request.method}")
        _ = (request.from_, request.to, request.call_id, request.vias)
    except ParseError as exc:
        raise LocalProtocolError(f"cannot send {request.method}: {exc}") from None


class SipStack:
    """A SIP endpoint's transaction and transport layers, sans-I/O (see the module docstring).

    Args:
        ids: branch and tag generator.
        t1, t2, t4: RFC 3261 timer values in seconds.
        user_agent: value of the User-Agent (requests) and Server (responses) headers added
            when missing; None adds neither.
        max_message_size: larger messages are rejected with 513.
        max_transactions: new requests beyond this many server transactions get 503.
    """

    def __init__(
        self,
        ids: IdSource,
        *,
        t1: float = 0.5,
        t2: float = 4.0,
        t4: float = 5.0,
        user_agent: str | None = "callwatch",
        max_message_size: int = 65535,
        max_transactions: int = 10_000,
    ) -> None:
        self._ids = ids
        self._config = TimerConfig(t1=t1, t2=t2, t4=t4)
        self._user_agent = user_agent
        self._max_size = max_message_size
        self._max_transactions = max_transactions
        self._local: dict[str, tuple[str, int]] = {}
        self._clients: dict[str, ClientTransaction] = {}
        self._servers: dict[str, ServerTransaction] = {}
        self._accepted: dict[_AckIndex, str] = {}
        self._pending_cancels: dict[str, Request] = {}
        self._schedule = TransactionSchedule()
        self._events: deque[SipEvent] = deque()
        self._outgoing: list[Outgoing] = []
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        """Statistics, keyed by the names listed in the module docstring."""

    @property
    def transaction_count(self) -> int:
        """Live client plus server transactions."""
        return len(self._clients) + len(self._servers)

    def set_local_address(self, transport: str, host: str, port: int) -> None:
        """Set the sent-by (``host:port``) of the Vias we add on ``transport``."""
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        self._local[transport.upper()] = (host, port)

    # -- the five verbs ---------------------------------------------------------------------

    def receive(self, data: bytes, source: Address, now: float) -> None:
        """Process one datagram, or one framed message from a stream (never raises)."""
        self.counters["received"] += 1
        if not data.strip():
            self.counters["keepalives"] += 1
            return
        try:
            message = parse_message(data, stream=source.reliable, max_size=self._max_size)
        except ValueError as exc:  # ParseError; a bare ValueError would be a parser defect
            self._malformed(data, source, exc)
            return
        if isinstance(message, Request):
            self._receive_request(message, source, now)
        else:
            self._receive_response(message, source, now)

    def next_event(self) -> SipEvent | None:
        """The oldest pending event, or None."""
        return self._events.popleft() if self._events else None

    def send_request(self, request: Request, destination: Address, now: float) -> str:
        """Send ``request`` in a new client transaction and return its key.

        A copy is sent: with a top Via (``destination``'s transport, our sent-by, a new branch,
        ``rport``) unless the request has one with a branch, Max-Forwards 70 and User-Agent
        when missing. A CANCEL without a Via reuses its INVITE's (RFC 3261 §9.1) and waits for
        a provisional response like :meth:`cancel`.

        Raises:
            LocalProtocolError: the request is an ACK (use :meth:`send_stateless`), lacks a
                mandatory header, has no local address for the transport, or a CANCEL matches
                no INVITE we sent.
        """
        if request.method == "ACK":
            raise LocalProtocolError("ACK has no transaction: use send_stateless")
        _check_request(request)
        if request.method == "CANCEL" and not request.headers.get_all("via"):
            invite = self._invite_for(request)
            cancel = _copy_request(request)
            cancel.headers.prepend("Via", invite.request.headers.get_all("via")[0])
            return self._submit_cancel(invite, self._prepare(cancel, destination), now)
        return self._start_client(self._prepare(request, destination), destination, now)

    def send_response(self, transaction: str, response: Response, now: float) -> None:
        """Send ``response`` (a copy, with Server added) through server transaction
        ``transaction``.

        Raises:
            LocalProtocolError: the transaction is unknown or terminated, or its state allows
                no such response.
        """
        tx = self._servers.get(transaction)
        if tx is None:
            raise LocalProtocolError(f"no server transaction {transaction!r}")
        self._apply(tx, tx.send_response(self._prepare_response(response), now))
        if isinstance(tx, InviteServerTransaction) and 200 <= response.status < 300:
            self._accepted[_ack_index(tx.request)] = tx.key

    def send_stateless(self, message: Request | Response, destination: Address) -> None:
        """Send outside any transaction: an ACK for a 2xx (given a Via like send_request) or a
        response that has no transaction."""
        if isinstance(message, Request):
            _check_request(message)
            message = self._prepare(message, destination)
        else:
            message = self._prepare_response(message)
        self._outgoing.append(Outgoing(data=message.serialize(), destination=destination))

    def cancel(
        self, transaction: str, now: float, *, headers: Iterable[tuple[str, str]] = ()
    ) -> str | None:
        """Cancel the pending INVITE client transaction ``transaction`` (RFC 3261 §9.1).

        The CANCEL goes out once a provisional response has arrived (at once if one has).
        ``headers`` are added to it (e.g. Reason). Returns the CANCEL's transaction key, or
        None when there is nothing left to cancel (final response received, or unknown key).

        Raises:
            LocalProtocolError: ``transaction`` is not an INVITE client transaction.
        """
        tx = self._clients.get(transaction)
        if tx is None:
            return None
        if not isinstance(tx, InviteClientTransaction):
            raise LocalProtocolError(f"{transaction!r} is not an INVITE client transaction")
        if tx.state not in (TransactionState.CALLING, TransactionState.PROCEEDING):
            return None
        request = tx.build_cancel()
        for name, value in headers:
            request.headers.add(name, value)
        return self._submit_cancel(tx, self._prepare(request, tx.destination), now)

    def messages_to_send(self, now: float) -> list[Outgoing]:
        """Take the datagrams queued for sending, oldest first."""
        out, self._outgoing = self._outgoing, []
        return out

    def get_timer(self) -> float | None:
        """The earliest transaction deadline, or None."""
        return self._schedule.earliest()

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``."""
        while (tx := self._schedule.pop_due(now)) is not None:
            self._apply(tx, tx.handle_timer(now))

    def connection_failed(self, destination: Address, now: float) -> None:
        """The adapter could not send to ``destination`` or its connection closed.

        Every transaction bound to it is told (RFC 3261 §17.1.4, §17.2.4) and emits
        :class:`TransportError`; if none did, one ``TransportError(transaction=None)`` is
        emitted so the TU learns of the lost flow.
        """
        self.counters["transport_errors"] += 1
        informed = False
        transactions: list[Transaction] = [*self._clients.values(), *self._servers.values()]
        for tx in transactions:
            if same_peer(tx.destination, destination):
                effects = tx.transport_error(now)
                informed |= any(isinstance(e, TransportError) for e in effects.events)
                self._apply(tx, effects)
        if not informed:
            self._emit(TransportError(transaction=None, destination=destination))

    # -- receiving --------------------------------------------------------------------------

    def _receive_request(self, request: Request, source: Address, now: float) -> None:
        via = stamp_via(request.top_via, source)
        request.headers.remove_first("via")
        request.headers.prepend("Via", str(via))
        if request.method == "ACK":
            self._receive_ack(request, source, now)
            return
        tx = self._servers.get(server_key(request))
        if tx is not None:
            self._apply(tx, tx.receive_request(request, source, now))
        elif len(self._servers) >= self._max_transactions:
            self.counters["overload"] += 1
            self._respond_stateless(make_response(request, 503, to_tag=self._ids.tag()), source)
        elif request.method == "CANCEL":
            self._receive_cancel(request, source, now)
        else:
            tx = self._new_server(request, source)
            self._emit(RequestReceived(request=request, source=source, transaction=tx.key))
            self._apply(tx, tx.start(now))

    def _receive_ack(self, ack: Request, source: Address, now: float) -> None:
        tx = self._servers.get(server_key(ack))
        if tx is None and (key := self._accepted.get(_ack_index(ack))) is not None:
            tx = self._servers.get(key)
        if isinstance(tx, InviteServerTransaction):
            self._apply(tx, tx.receive_ack(ack, source, now))
        else:
            self._emit(RequestReceived(request=ack, source=source, transaction=None))

    def _receive_cancel(self, cancel: Request, source: Address, now: float) -> None:
        invite = self._servers.get(server_key(cancel, method="INVITE"))
        last = invite.last_response if invite is not None else None
        tag = (last.to.tag if last is not None else None) or self._ids.tag()
        tx = self._new_server(cancel, source)
        self._apply(tx, tx.start(now))
        response = make_response(cancel, 481 if invite is None else 200, to_tag=tag)
        self._apply(tx, tx.send_response(self._prepare_response(response), now))
        if invite is not None and invite.state is TransactionState.PROCEEDING:
            self._emit(CancelReceived(request=cancel, source=source, transaction=invite.key))

    def _receive_response(self, response: Response, source: Address, now: float) -> None:
        if len(response.headers.get_all("via")) != 1:
            self._drop("response with more than one Via", source)
            return
        key = response_key(response)
        tx = self._clients.get(key) if key is not None else None
        if tx is not None:
            self._apply(tx, tx.receive_response(response, source, now))
            if isinstance(tx, InviteClientTransaction):
                self._release_cancel(tx, now)
        elif 200 <= response.status < 300 and response.cseq.method == "INVITE":
            self.counters["stray_2xx"] += 1
            self._emit(ResponseReceived(response=response, source=source, transaction=""))
        else:
            self._drop(f"{response.status} matches no transaction", source)

    def _malformed(self, data: bytes, source: Address, error: ValueError) -> None:
        self.counters["malformed"] += 1
        reason = _reason_text(error)
        status = error.status_hint if isinstance(error, SipError) else 400
        status = status if 400 <= status <= 699 else 400
        self._emit(MalformedMessage(source=source, reason=reason, status_hint=status))
        headers = salvage_headers(data)
        if headers is None:
            self._drop(f"unparseable ({reason})", source)
            return
        self._add_to_tag(headers)
        via = stamp_via(Via.parse(headers.get_all("via")[0]), source)
        headers.remove_first("via")
        headers.prepend("Via", str(via))
        phrase = f"{REASON_PHRASES.get(status, 'Bad Request')} ({reason})"
        self._respond_stateless(Response(headers=headers, status=status, reason=phrase), source)

    def _add_to_tag(self, headers: Headers) -> None:
        try:
            to = NameAddr.parse(headers.get("to") or "")
        except ParseError:
            return
        if to.tag is None:
            headers.set("To", str(to.with_tag(self._ids.tag())))

    def _drop(self, why: str, source: Address) -> None:
        self.counters["dropped"] += 1
        logger.debug("x %s from %s:%s", why, source.host, source.port)

    # -- sending ----------------------------------------------------------------------------

    def _prepare(self, request: Request, destination: Address) -> Request:
        out = _copy_request(request)
        vias = out.headers.get_all("via")
        if not vias:
            out.headers.prepend("Via", str(self._new_via(destination)))
        elif Via.parse(vias[0]).branch is None:
            top = Via.parse(vias[0]).with_params(branch=self._ids.branch())
            out.headers.remove_first("via")
            out.headers.prepend("Via", str(top))
        if "max-forwards" not in out.headers:
            out.headers.add("Max-Forwards", "70")
        if self._user_agent is not None and "user-agent" not in out.headers:
            out.headers.add("User-Agent", self._user_agent)
        return out

    def _prepare_response(self, response: Response) -> Response:
        headers = response.headers.copy()
        if self._user_agent is not None and "server" not in headers:
            headers.add("Server", self._user_agent)
        return Response(
            headers=headers, body=response.body, status=response.status, reason=response.reason
        )

    def _new_via(self, destination: Address) -> Via:
        transport = destination.transport.upper()
        if transport not in self._local:
            raise LocalProtocolError(f"no local address for {transport}: call set_local_address")
        host, port = self._local[transport]
        params: dict[str, str | None] = {"branch": self._ids.branch(), "rport": None}
        return Via(transport=transport, host=host, port=port, params=params)

    def _respond_stateless(self, response: Response, source: Address) -> None:
        destination = response_destination(response.top_via, source)
        self.send_stateless(response, destination)

    def _start_client(self, request: Request, destination: Address, now: float) -> str:
        key = client_key(request.top_via.branch or "", request.method)
        if key in self._clients:
            raise LocalProtocolError(f"client transaction {key!r} already exists")
        kind = InviteClientTransaction if request.method == "INVITE" else NonInviteClientTransaction
        tx = kind(key, request, destination, config=self._config)
        self._clients[key] = tx
        self._apply(tx, tx.start(now))
        return key

    def _invite_for(self, cancel: Request) -> InviteClientTransaction:
        wanted = _ack_index(cancel)
        for tx in self._clients.values():
            if isinstance(tx, InviteClientTransaction) and _ack_index(tx.request) == wanted:
                return tx
        raise LocalProtocolError("CANCEL matches no INVITE client transaction")

    def _submit_cancel(self, invite: InviteClientTransaction, cancel: Request, now: float) -> str:
        """Send ``cancel`` now, or once the INVITE is Proceeding; its key either way."""
        key = client_key(cancel.top_via.branch or "", "CANCEL")
        if key in self._clients or invite.key in self._pending_cancels:
            return key
        if invite.state is TransactionState.CALLING:
            self._pending_cancels[invite.key] = cancel
            return key
        self._start_client(cancel, invite.destination, now)
        invite.arm_cancel_guard(now)
        self._schedule.update(invite)
        return key

    def _release_cancel(self, invite: InviteClientTransaction, now: float) -> None:
        if invite.state is TransactionState.CALLING:
            return
        cancel = self._pending_cancels.pop(invite.key, None)
        if cancel is not None and invite.state is TransactionState.PROCEEDING:
            self._submit_cancel(invite, cancel, now)

    def _new_server(self, request: Request, source: Address) -> ServerTransaction:
        kind = InviteServerTransaction if request.method == "INVITE" else NonInviteServerTransaction
        destination = response_destination(request.top_via, source)
        tx = kind(server_key(request), request, destination, config=self._config)
        self._servers[tx.key] = tx
        return tx

    # -- bookkeeping ------------------------------------------------------------------------

    def _apply(self, tx: Transaction, effects: Effects) -> None:
        self._outgoing.extend(effects.sends)
        self.counters["retransmissions_sent"] += effects.retransmissions
        if effects.absorbed:
            self.counters["retransmissions_absorbed"] += 1
        for event in effects.events:
            if isinstance(event, TransactionTimedOut):
                self.counters["timeouts"] += 1
            self._emit(event)
        if tx.terminated:
            self._forget(tx)
        else:
            self._schedule.update(tx)

    def _forget(self, tx: Transaction) -> None:
        self._schedule.discard(tx)
        if isinstance(tx, ClientTransaction):
            self._clients.pop(tx.key, None)
            self._pending_cancels.pop(tx.key, None)
            return
        if isinstance(tx, ServerTransaction):
            self._servers.pop(tx.key, None)
            index = _ack_index(tx.request)
            if self._accepted.get(index) == tx.key:
                del self._accepted[index]

    def _emit(self, event: SipEvent) -> None:
        if len(self._events) >= MAX_PENDING_EVENTS:
            self.counters["events_dropped"] += 1
            logger.warning("! event queue full, dropped %s", type(event).__name__)
            return
        self._events.append(event)
