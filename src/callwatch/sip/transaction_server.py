"""Server transactions: INVITE (RFC 3261 §17.2.1, RFC 6026 §8.7) and non-INVITE (§17.2.2).

Theory of operation: the stack creates a server transaction for each new request, feeds it
retransmissions (:meth:`ServerTransaction.receive_request`), ACKs
(:meth:`InviteServerTransaction.receive_ack`) and the TU's responses
(:meth:`ServerTransaction.send_response`). The machines are the tables
:data:`~callwatch.sip.transaction.INVITE_SERVER_TRANSITIONS` (Figure 7 with RFC 6026) and
:data:`~callwatch.sip.transaction.NON_INVITE_SERVER_TRANSITIONS` (Figure 8); see
:mod:`callwatch.sip.transaction` for the shared rules, the 100 Trying timer and the choice to
retransmit 2xx responses here rather than in the TU.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from callwatch.sip.events import Address, RequestReceived
from callwatch.sip.message import Request, Response, make_response
from callwatch.sip.transaction import (
    INVITE_SERVER_TRANSITIONS,
    NON_INVITE_SERVER_TRANSITIONS,
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


class ServerTransaction(Transaction):
    """A server transaction: created by a request, answered by the TU through it.

    ``destination`` is where responses go (RFC 3261 §18.2.2, computed by the stack).
    """

    def __init__(
        self, key: str, request: Request, destination: Address, *, config: TimerConfig
    ) -> None:
        initial = _S.PROCEEDING if request.method == "INVITE" else _S.TRYING
        super().__init__(key, request.method, destination, initial=initial, config=config)
        self.request = request
        self.last_response: Response | None = None

    def start(self, now: float) -> Effects:
        """Arm the initial timers (the 100 Trying timer for INVITE)."""
        self._enter(self._state, now)
        return Effects()

    def receive_request(self, request: Request, source: Address, now: float) -> Effects:
        """A retransmission of the request that created the transaction."""
        return self._input(Input.REQUEST, StepContext(now, message=request, source=source))

    def send_response(self, response: Response, now: float) -> Effects:
        """Send a response from the TU.

        Raises:
            LocalProtocolError: the state allows no such response (e.g. a second final).
        """
        inp = response_input(response.status, from_tu=True)
        return self._input(inp, StepContext(now, message=response))

    def _send(self, response: Response, ctx: StepContext) -> None:
        self.last_response = response
        self._wire = response.serialize()
        self._deadlines.pop(Input.TIMER_TRYING, None)
        ctx.send(self._wire, self.destination)

    def _perform(self, action: Action, ctx: StepContext) -> None:
        match action:
            case Action.SEND:
                self._send(ctx.response(), ctx)
            case Action.RESEND if self._wire is not None:
                ctx.send(self._wire, self.destination)
            case Action.RESEND:
                pass
            case _:
                super()._perform(action, ctx)


class InviteServerTransaction(ServerTransaction):
    """RFC 3261 §17.2.1 with RFC 6026: the INVITE server transaction."""

    TRANSITIONS = INVITE_SERVER_TRANSITIONS
    ENTRY_TIMERS: ClassVar[Mapping[TransactionState, tuple[Input, ...]]] = {
        _S.PROCEEDING: (Input.TIMER_TRYING,),
        _S.COMPLETED: (Input.TIMER_G, Input.TIMER_H),
        _S.CONFIRMED: (Input.TIMER_I,),
        _S.ACCEPTED: (Input.TIMER_G, Input.TIMER_H, Input.TIMER_L),
    }
    RETRANSMIT_TIMER = Input.TIMER_G

    def receive_ack(self, ack: Request, source: Address, now: float) -> Effects:
        """An ACK for this INVITE: to a non-2xx (same branch) or to our 2xx (matched by the
        stack on Call-ID, From tag and CSeq number)."""
        return self._input(Input.ACK, StepContext(now, message=ack, source=source))

    def _perform(self, action: Action, ctx: StepContext) -> None:
        match action:
            case Action.SEND_TRYING | Action.RESEND if self._wire is None:
                self._send(make_response(self.request, 100), ctx)
            case Action.SEND_TRYING:
                pass
            case Action.PASS_UP:
                assert isinstance(ctx.message, Request) and ctx.source is not None
                event = RequestReceived(request=ctx.message, source=ctx.source, transaction=None)
                ctx.effects.events.append(event)
            case Action.STOP_RETRANSMISSIONS:
                self._deadlines.pop(Input.TIMER_G, None)
                self._deadlines.pop(Input.TIMER_H, None)
            case _:
                super()._perform(action, ctx)


class NonInviteServerTransaction(ServerTransaction):
    """RFC 3261 §17.2.2: the non-INVITE server transaction (also used for CANCEL)."""

    TRANSITIONS = NON_INVITE_SERVER_TRANSITIONS
    ENTRY_TIMERS: ClassVar[Mapping[TransactionState, tuple[Input, ...]]] = {
        _S.COMPLETED: (Input.TIMER_J,),
    }
