"""Client transactions: INVITE (RFC 3261 §17.1.1, RFC 6026 §8.4) and non-INVITE (§17.1.2).

Theory of operation: a client transaction is created by the stack when the TU sends a request;
:meth:`ClientTransaction.start` emits the request and arms Timers A/B (INVITE) or E/F, and each
matching response is fed to :meth:`ClientTransaction.receive_response`. The machines are the
tables :data:`~callwatch.sip.transaction.INVITE_CLIENT_TRANSITIONS` (Figure 5 with RFC 6026) and
:data:`~callwatch.sip.transaction.NON_INVITE_CLIENT_TRANSITIONS` (Figure 6); see
:mod:`callwatch.sip.transaction` for the shared rules. This module adds the actions only a client
performs: passing responses up, and building the ACK for a non-2xx final and the CANCEL (§9.1),
both on the INVITE's branch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from callwatch.sip.events import Address, Outgoing, ResponseReceived
from callwatch.sip.headers import CSeq, Headers
from callwatch.sip.message import Request, Response
from callwatch.sip.transaction import (
    INVITE_CLIENT_TRANSITIONS,
    NON_INVITE_CLIENT_TRANSITIONS,
    Action,
    Effects,
    Input,
    StepContext,
    TimerConfig,
    Transaction,
    TransactionState,
    response_input,
)

_S = TransactionState


class ClientTransaction(Transaction):
    """A client transaction: sends ``request`` to ``destination`` and matches its responses."""

    def __init__(
        self, key: str, request: Request, destination: Address, *, config: TimerConfig
    ) -> None:
        initial = _S.CALLING if request.method == "INVITE" else _S.TRYING
        super().__init__(key, request.method, destination, initial=initial, config=config)
        self.request = request
        self._data = request.serialize()
        self._wire = self._data

    def start(self, now: float) -> Effects:
        """Send the request and arm the initial timers."""
        self._enter(self._state, now)
        return Effects(sends=[Outgoing(data=self._data, destination=self.destination)])

    def receive_response(self, response: Response, source: Address, now: float) -> Effects:
        """A response matched this transaction (RFC 3261 §17.1.3)."""
        inp = response_input(response.status, from_tu=False)
        return self._input(inp, StepContext(now, message=response, source=source))

    def _perform(self, action: Action, ctx: StepContext) -> None:
        if action is Action.PASS_UP:
            assert ctx.source is not None
            event = ResponseReceived(
                response=ctx.response(), source=ctx.source, transaction=self.key
            )
            ctx.effects.events.append(event)
        else:
            super()._perform(action, ctx)


class InviteClientTransaction(ClientTransaction):
    """RFC 3261 §17.1.1 with RFC 6026: the INVITE client transaction."""

    TRANSITIONS = INVITE_CLIENT_TRANSITIONS
    ENTRY_TIMERS: ClassVar[Mapping[TransactionState, tuple[Input, ...]]] = {
        _S.CALLING: (Input.TIMER_A, Input.TIMER_B),
        _S.COMPLETED: (Input.TIMER_D,),
        _S.ACCEPTED: (Input.TIMER_M,),
    }
    RETRANSMIT_TIMER = Input.TIMER_A

    def build_ack(self, response: Response) -> Request:
        """The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): same branch and route."""
        headers = self._base_headers("ACK")
        headers.set("To", response.headers.get("to") or "")
        return Request(headers=headers, method="ACK", uri=self.request.uri)

    def build_cancel(self) -> Request:
        """A CANCEL for this INVITE (RFC 3261 §9.1): same Request-URI, Call-ID, From, To,
        CSeq number, top Via and Route set."""
        return Request(headers=self._base_headers("CANCEL"), method="CANCEL", uri=self.request.uri)

    def arm_cancel_guard(self, now: float) -> None:
        """A CANCEL was sent: give up on a final response after 64·T1 (RFC 3261 §9.1)."""
        if self._state is _S.PROCEEDING:
            self._deadlines[Input.TIMER_B] = now + self._config.timeout

    def _next_interval(self) -> float:
        return 2 * self._interval

    def _base_headers(self, method: str) -> Headers:
        original = self.request.headers
        headers = Headers()
        headers.add("Via", original.get_all("via")[0])
        for route in original.get_all("route"):
            headers.add("Route", route)
        headers.add("Max-Forwards", "70")
        headers.add("From", original.get("from") or "")
        headers.add("To", original.get("to") or "")
        headers.add("Call-ID", self.request.call_id)
        headers.add("CSeq", str(CSeq(self.request.cseq.seq, method)))
        return headers

    def _perform(self, action: Action, ctx: StepContext) -> None:
        if action is Action.SEND_ACK:
            ctx.send(self.build_ack(ctx.response()).serialize(), self.destination)
        else:
            super()._perform(action, ctx)


class NonInviteClientTransaction(ClientTransaction):
    """RFC 3261 §17.1.2: the non-INVITE client transaction (also used for CANCEL)."""

    TRANSITIONS = NON_INVITE_CLIENT_TRANSITIONS
    ENTRY_TIMERS: ClassVar[Mapping[TransactionState, tuple[Input, ...]]] = {
        _S.TRYING: (Input.TIMER_E, Input.TIMER_F),
        _S.COMPLETED: (Input.TIMER_K,),
    }
    KEPT_TIMERS: ClassVar[Mapping[TransactionState, frozenset[Input]]] = {
        _S.PROCEEDING: frozenset({Input.TIMER_E, Input.TIMER_F}),
    }
    RETRANSMIT_TIMER = Input.TIMER_E

    def _next_interval(self) -> float:
        if self._state is _S.PROCEEDING:
            return self._config.t2
        return super()._next_interval()
