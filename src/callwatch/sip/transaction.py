"""SIP transactions: INVITE and non-INVITE, client and server (RFC 3261 §17, RFC 6026).

Theory of operation
-------------------
A transaction is a pure object: it is fed one input at a time — a message from the peer, a
response from the transaction user (TU), a timer that expired, a transport error — together with
``now``, and returns :class:`Effects`: datagrams to send and events for the TU. It never reads a
clock, never sleeps and never touches a socket; :class:`~callwatch.sip.stack.SipStack` owns the
transactions, routes messages to them by key and asks them for their next deadline.

Each of the four machines is a transition table, ``(state, input) -> Step(new state, actions)``,
copied from the RFC figures and kept together here; :class:`Transaction` runs a table, and
``transaction_client`` / ``transaction_server`` add what each side does for an action:

- :data:`INVITE_CLIENT_TRANSITIONS` — RFC 3261 Figure 5 as amended by RFC 6026 Figure 5: a 2xx
  moves the transaction to *Accepted*, where further 2xx are passed up (each fork's 2xx must be
  ACKed by the TU) until Timer M fires. Non-2xx finals are ACKed by the transaction itself with
  the INVITE's branch (§17.1.1.3).
- :data:`NON_INVITE_CLIENT_TRANSITIONS` — RFC 3261 Figure 6.
- :data:`INVITE_SERVER_TRANSITIONS` — RFC 3261 Figure 7 as amended by RFC 6026 Figure 7.
- :data:`NON_INVITE_SERVER_TRANSITIONS` — RFC 3261 Figure 8.

Rules shared by all four:

- Entering a state drops the timers that do not survive it and arms the state's own
  (:attr:`Transaction.ENTRY_TIMERS`). A timer with a zero duration (D, I, J, K on reliable
  transports) fires within the same call.
- A message from the peer that has no entry in the table is absorbed (a retransmission, or a
  late response); a TU input with no entry raises :class:`LocalProtocolError` naming the state.
- Retransmission timers (A, E, G) are armed only on unreliable transports (§17.1.1.2). Timer A
  doubles without bound (Figure 5); E and G double up to T2, and E stays at T2 once Proceeding.
- Timer durations: B, F, H, L, M = 64·T1; D = 32 s on UDP, 0 otherwise; I, K = T4 on UDP, 0
  otherwise; J = 64·T1 on UDP, 0 otherwise.

Documented choices:

- **100 Trying.** The INVITE server transaction sends 100 if the TU has not sent a response
  200 ms after the INVITE arrived (§17.2.1), or at once when the INVITE is retransmitted before
  then (the client is clearly waiting).
- **2xx retransmission.** RFC 6026 leaves the periodic retransmission of a 2xx to the TU
  (§13.3.1.4); here the INVITE server transaction does it while *Accepted*: on unreliable
  transports it re-sends the 2xx at T1, 2·T1 … capped at T2, until the stack hands it the ACK
  (matched by Call-ID, From tag and CSeq number, since the ACK to a 2xx carries a new branch). If
  no ACK arrived 64·T1 after the 2xx, Timer H reports :class:`TransactionTimedOut` so the TU can
  send BYE (§13.3.1.4). Retransmitted INVITEs are absorbed in *Accepted* (RFC 6026 Figure 7).
- **CANCEL guard.** After a CANCEL was sent for a Proceeding INVITE, Timer B is re-armed: if no
  final response arrives within 64·T1 the INVITE transaction times out (§9.1).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import ClassVar, NamedTuple

from callwatch.sip.errors import LocalProtocolError
from callwatch.sip.events import Address, Outgoing, SipEvent, TransactionTimedOut, TransportError
from callwatch.sip.message import Request, Response

MAGIC_COOKIE = "z9hG4bK"
"""Branch prefix of RFC 3261 transactions (§8.1.1.7)."""
TIMER_D_UNRELIABLE = 32.0
"""Timer D on unreliable transports: "at least 32 seconds" (RFC 3261 §17.1.1.2)."""
TRYING_DELAY = 0.2
"""The 200 ms after which the INVITE server transaction sends 100 Trying (RFC 3261 §17.2.1)."""


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """RFC 3261 §17.1.1.1 timer values (Table 4), in seconds."""

    t1: float = 0.5
    """Round-trip time estimate."""
    t2: float = 4.0
    """Maximum retransmission interval for non-INVITE requests and INVITE responses."""
    t4: float = 5.0
    """Maximum time a message stays in the network."""

    @property
    def timeout(self) -> float:
        """64·T1: Timers B, F, H, J (UDP), L and M."""
        return 64 * self.t1


class TransactionState(Enum):
    """States of the four machines (RFC 3261 Figures 5–8, RFC 6026)."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class Input(Enum):
    """What a transaction reacts to. Timers are listed in firing order for equal deadlines."""

    REQUEST = "request retransmission"
    ACK = "ACK"
    PROVISIONAL = "1xx"
    SUCCESS = "2xx"
    FAILURE = "300-699"
    TU_PROVISIONAL = "1xx from TU"
    TU_SUCCESS = "2xx from TU"
    TU_FAILURE = "300-699 from TU"
    TRANSPORT_ERROR = "transport error"
    TIMER_TRYING = "Timer 100 Trying"
    TIMER_A = "Timer A"
    TIMER_B = "Timer B"
    TIMER_D = "Timer D"
    TIMER_E = "Timer E"
    TIMER_F = "Timer F"
    TIMER_G = "Timer G"
    TIMER_H = "Timer H"
    TIMER_I = "Timer I"
    TIMER_J = "Timer J"
    TIMER_K = "Timer K"
    TIMER_L = "Timer L"
    TIMER_M = "Timer M"


_NETWORK_INPUTS = frozenset(
    {Input.REQUEST, Input.ACK, Input.PROVISIONAL, Input.SUCCESS, Input.FAILURE}
)
_TU_INPUTS = frozenset({Input.TU_PROVISIONAL, Input.TU_SUCCESS, Input.TU_FAILURE})
_TIMER_ORDER = {inp: index for index, inp in enumerate(Input)}


class Action(Enum):
    """What a transition does besides changing state."""

    SEND = "send the TU's response"
    RESEND = "re-send the last response (or 100 Trying)"
    RETRANSMIT = "retransmit and back off the retransmission timer"
    SEND_TRYING = "send 100 Trying unless the TU has answered"
    SEND_ACK = "ACK the non-2xx final response"
    PASS_UP = "pass the message to the TU"
    STOP_RETRANSMISSIONS = "stop 2xx retransmissions and the ACK timeout"
    TIMEOUT = "tell the TU the transaction timed out"
    TRANSPORT_ERROR = "tell the TU the transport failed"


class Step(NamedTuple):
    """One table entry: the next state and the actions to perform, in order."""

    state: TransactionState
    actions: tuple[Action, ...] = ()


Table = Mapping[tuple[TransactionState, Input], Step]
_S = TransactionState
_A = Action

INVITE_CLIENT_TRANSITIONS: Table = {
    (_S.CALLING, Input.TIMER_A): Step(_S.CALLING, (_A.RETRANSMIT,)),
    (_S.CALLING, Input.TIMER_B): Step(_S.TERMINATED, (_A.TIMEOUT,)),
    (_S.CALLING, Input.PROVISIONAL): Step(_S.PROCEEDING, (_A.PASS_UP,)),
    (_S.CALLING, Input.SUCCESS): Step(_S.ACCEPTED, (_A.PASS_UP,)),
    (_S.CALLING, Input.FAILURE): Step(_S.COMPLETED, (_A.SEND_ACK, _A.PASS_UP)),
    (_S.CALLING, Input.TRANSPORT_ERROR): Step(_S.TERMINATED, (_A.TRANSPORT_ERROR,)),
    (_S.PROCEEDING, Input.PROVISIONAL): Step(_S.PROCEEDING, (_A.PASS_UP,)),
    (_S.PROCEEDING, Input.SUCCESS): Step(_S.ACCEPTED, (_A.PASS_UP,)),
    (_S.PROCEEDING, Input.FAILURE): Step(_S.COMPLETED, (_A.SEND_ACK, _A.PASS_UP)),
    (_S.PROCEEDING, Input.TIMER_B): Step(_S.TERMINATED, (_A.TIMEOUT,)),  # CANCEL guard, §9.1
    (_S.PROCEEDING, Input.TRANSPORT_ERROR): Step(_S.TERMINATED, (_A.TRANSPORT_ERROR,)),
    (_S.COMPLETED, Input.FAILURE): Step(_S.COMPLETED, (_A.SEND_ACK,)),
    (_S.COMPLETED, Input.TRANSPORT_ERROR): Step(_S.TERMINATED, (_A.TRANSPORT_ERROR,)),
    (_S.COMPLETED, Input.TIMER_D): Step(_S.TERMINATED),
    (_S.ACCEPTED, Input.SUCCESS): Step(_S.ACCEPTED, (_A.PASS_UP,)),
    (_S.ACCEPTED, Input.TIMER_M): Step(_S.TERMINATED),
}
"""RFC 3261 Figure 5 with RFC 6026 §8.4 (Accepted, Timer M)."""

NON_INVITE_CLIENT_TRANSITIONS: Table = {
    (_S.TRYING, Input.TIMER_E): Step(_S.TRYING, (_A.RETRANSMIT,)),
    (_S.TRYING, Input.TIMER_F): Step(_S.TERMINATED, (_A.TIMEOUT,)),
    (_S.TRYING, Input.PROVISIONAL): Step(_S.PROCEEDING, (_A.PASS_UP,)),
    (_S.TRYING, Input.SUCCESS): Step(_S.COMPLETED, (_A.PASS_UP,)),
    (_S.TRYING, Input.FAILURE): Step(_S.COMPLETED, (_A.PASS_UP,)),
    (_S.TRYING, Input.TRANSPORT_ERROR): Step(_S.TERMINATED, (_A.TRANSPORT_ERROR,)),
    (_S.PROCEEDING, Input.TIMER_E): Step(_S.PROCEEDING, (_A.RETRANSMIT,)),
    (_S.PROCEEDING, Input.TIMER_F): Step(_S.TERMINATED, (_A.TIMEOUT,)),
    (_S.PROCEEDING, Input.PROVISIONAL): Step(_S.PROCEEDING, (_A.PASS_UP,)),
    (_S.PROCEEDING, Input.SUCCESS): Step(_S.COMPLETED, (_A.PASS_UP,)),
    (_S.PROCEEDING, Input.FAILURE): Step(_S.COMPLETED, (_A.PASS_UP,)),
    (_S.PROCEEDING, Input.TRANSPORT_ERROR): Step(_S.TERMINATED, (_A.TRANSPORT_ERROR,)),
    (_S.COMPLETED, Input.TIMER_K): Step(_S.TERMINATED),
}
"""RFC 3261 Figure 6."""

INVITE_SERVER_TRANSITIONS: Table = {
    (_S.PROCEEDING, Input.REQUEST): Step(_S.PROCEEDING, (_A.RESEND,)),
    (_S.PROCEEDING, Input.TIMER_TRYING): Step(_S.PROCEEDING, (_A.SEND_TRYING,)),
    (_S.PROCEEDING, Input.TU_PROVISIONAL): Step(_S.PROCEEDING, (_A.SEND,)),
    (_S.PROCEEDING, Input.TU_SUCCESS): Step(_S.ACCEPTED, (_A.SEND,)),
    (_S.PROCEEDING, Input.TU_FAILURE): Step(_S.COMPLETED, (_A.SEND,)),
    (_S.PROCEEDING, Input.TRANSPORT_ERROR): Step(_S.TERMINATED, (_A.TRANSPORT_ERROR,)),
    (_S.COMPLETED, Input.REQUEST): Step(_S.COMPLETED, (_A.RESEND,)),
    (_S.COMPLETED, Input.TIMER_G): Step(_S.COMPLETED, (_A.RETRANSMIT,)),
    (_S.COMPLETED, Input.ACK): Step(_S.CONFIRMED),
    (_S.COMPLETED, Input.TIMER_H): Step(_S.TERMINATED, (_A.TIMEOUT,)),
    (_S.COMPLETED, Input.TRANSPORT_ERROR): Step(_S.TERMINATED, (_A.TRANSPORT_ERROR,)),
    (_S.CONFIRMED, Input.TIMER_I): Step(_S.TERMINATED),
    (_S.ACCEPTED, Input.TU_SUCCESS): Step(_S.ACCEPTED, (_A.SEND,)),
    (_S.ACCEPTED, Input.TIMER_G): Step(_S.ACCEPTED, (_A.RETRANSMIT,)),
    (_S.ACCEPTED, Input.ACK): Step(_S.ACCEPTED, (_A.PASS_UP, _A.STOP_RETRANSMISSIONS)),
    (_S.ACCEPTED, Input.TIMER_H): Step(_S.ACCEPTED, (_A.TIMEOUT,)),  # 2xx never ACKed
    (_S.ACCEPTED, Input.TIMER_L): Step(_S.TERMINATED),
    (_S.ACCEPTED, Input.TRANSPORT_ERROR): Step(_S.ACCEPTED, (_A.TRANSPORT_ERROR,)),
}
"""RFC 3261 Figure 7 with RFC 6026 §8.7 (Accepted, Timer L) and 2xx retransmission."""

NON_INVITE_SERVER_TRANSITIONS: Table = {
    (_S.TRYING, Input.TU_PROVISIONAL): Step(_S.PROCEEDING, (_A.SEND,)),
    (_S.TRYING, Input.TU_SUCCESS): Step(_S.COMPLETED, (_A.SEND,)),
    (_S.TRYING, Input.TU_FAILURE): Step(_S.COMPLETED, (_A.SEND,)),
    (_S.PROCEEDING, Input.REQUEST): Step(_S.PROCEEDING, (_A.RESEND,)),
    (_S.PROCEEDING, Input.TU_PROVISIONAL): Step(_S.PROCEEDING, (_A.SEND,)),
    (_S.PROCEEDING, Input.TU_SUCCESS): Step(_S.COMPLETED, (_A.SEND,)),
    (_S.PROCEEDING, Input.TU_FAILURE): Step(_S.COMPLETED, (_A.SEND,)),
    (_S.PROCEEDING, Input.TRANSPORT_ERROR): Step(_S.TERMINATED, (_A.TRANSPORT_ERROR,)),
    (_S.COMPLETED, Input.REQUEST): Step(_S.COMPLETED, (_A.RESEND,)),
    (_S.COMPLETED, Input.TIMER_J): Step(_S.TERMINATED),
    (_S.COMPLETED, Input.TRANSPORT_ERROR): Step(_S.TERMINATED, (_A.TRANSPORT_ERROR,)),
}
"""RFC 3261 Figure 8 (a retransmission in Trying is absorbed: it has no entry)."""


def client_key(branch: str, method: str) -> str:
    """The key of a client transaction: its branch and CSeq method (RFC 3261 §17.1.3)."""
    return f"{branch}|{method}"


def response_key(response: Response) -> str | None:
    """The client transaction key a response belongs to, or None without a branch."""
    branch = response.top_via.branch
    return client_key(branch, response.cseq.method) if branch else None


def server_key(request: Request, *, method: str | None = None) -> str:
    """The key of the server transaction ``request`` belongs to (RFC 3261 §17.2.3).

    Branch, sent-by and method, with ACK mapped to INVITE; ``method`` overrides the method (a
    CANCEL looks up its INVITE with ``method="INVITE"``). Requests whose branch lacks the magic
    cookie (RFC 2543) are keyed by Call-ID, From tag, CSeq number, method, top Via sent-by and
    Request-URI — the §17.2.3 rule without the To tag.
    """
    via = request.top_via
    if method is None:
        method = "INVITE" if request.method == "ACK" else request.method
    sent_by = f"{via.transport} {via.host.lower()}:{via.port or ''}"
    branch = via.branch
    if branch and branch.startswith(MAGIC_COOKIE):
        return f"{branch}|{sent_by}|{method}"
    seq = request.cseq.seq
    return f"2543|{request.call_id}|{request.from_.tag}|{seq}|{method}|{sent_by}|{request.uri}"


@dataclass(slots=True)
class Effects:
    """What one input produced."""

    sends: list[Outgoing] = field(default_factory=list)
    """Datagrams or stream messages to send, in order."""
    events: list[SipEvent] = field(default_factory=list)
    """Events for the TU, in order."""
    absorbed: bool = False
    """A message from the peer was handled without being passed to the TU."""
    retransmissions: int = 0
    """How many of ``sends`` are timer-driven retransmissions."""


@dataclass(slots=True)
class StepContext:
    """The input being processed: its time, the message and source it came with, the output.

    Internal to the transaction modules.
    """

    now: float
    effects: Effects = field(default_factory=Effects)
    message: Request | Response | None = None
    source: Address | None = None

    def send(self, data: bytes, destination: Address) -> None:
        self.effects.sends.append(Outgoing(data=data, destination=destination))

    def response(self) -> Response:
        assert isinstance(self.message, Response)
        return self.message


class Transaction:
    """What the four machines share: state, deadlines and the table-driven step.

    ``key`` is the transaction key, ``method`` the request method and ``destination`` where
    this transaction sends (the request's next hop, or where responses go per §18.2.2).
    """

    TRANSITIONS: ClassVar[Table]
    ENTRY_TIMERS: ClassVar[Mapping[TransactionState, tuple[Input, ...]]]
    KEPT_TIMERS: ClassVar[Mapping[TransactionState, frozenset[Input]]] = {}
    RETRANSMIT_TIMER: ClassVar[Input | None] = None

    def __init__(
        self,
        key: str,
        method: str,
        destination: Address,
        *,
        initial: TransactionState,
        config: TimerConfig,
    ) -> None:
        self.key = key
        self.method = method
        self.destination = destination
        self._config = config
        self._reliable = destination.reliable
        self._state = initial
        self._deadlines: dict[Input, float] = {}
        self._interval = config.t1
        self._wire: bytes | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key} {self._state.value}>"

    @property
    def state(self) -> TransactionState:
        """The current state."""
        return self._state

    @property
    def terminated(self) -> bool:
        """True once the transaction reached Terminated and can be forgotten."""
        return self._state is TransactionState.TERMINATED

    @property
    def next_deadline(self) -> float | None:
        """The earliest armed timer's deadline, or None."""
        return min(self._deadlines.values(), default=None)

    def handle_timer(self, now: float) -> Effects:
        """Fire every timer whose deadline is ``now`` or earlier."""
        ctx = StepContext(now)
        self._expire(ctx)
        return ctx.effects

    def transport_error(self, now: float) -> Effects:
        """The transport could not deliver this transaction's message (RFC 3261 §17.1.4)."""
        return self._input(Input.TRANSPORT_ERROR, StepContext(now))

    def _input(self, inp: Input, ctx: StepContext) -> Effects:
        self._step(inp, ctx)
        self._expire(ctx)
        return ctx.effects

    def _step(self, inp: Input, ctx: StepContext) -> None:
        step = self.TRANSITIONS.get((self._state, inp))
        if step is None:
            if inp in _TU_INPUTS:
                raise LocalProtocolError(
                    f"{type(self).__name__} {self.key!r} in state {self._state.value}: "
                    f"{inp.value} is not allowed"
                )
            ctx.effects.absorbed = inp in _NETWORK_INPUTS
            return
        if step.state is not self._state:
            self._state = step.state
            self._enter(step.state, ctx.now)
        for action in step.actions:
            self._perform(action, ctx)
        ctx.effects.absorbed = inp in _NETWORK_INPUTS and Action.PASS_UP not in step.actions

    def _expire(self, ctx: StepContext) -> None:
        while not self.terminated:
            due = [(d, _TIMER_ORDER[t], t) for t, d in self._deadlines.items() if d <= ctx.now]
            if not due:
                return
            timer = min(due)[2]
            del self._deadlines[timer]
            self._step(timer, ctx)

    def _enter(self, state: TransactionState, now: float) -> None:
        kept = self.KEPT_TIMERS.get(state, frozenset())
        self._deadlines = {t: d for t, d in self._deadlines.items() if t in kept}
        for timer in self.ENTRY_TIMERS.get(state, ()):
            duration = self._duration(timer)
            if duration is None:
                continue
            if timer is self.RETRANSMIT_TIMER:
                self._interval = duration
            self._deadlines[timer] = now + duration

    def _duration(self, timer: Input) -> float | None:
        config, unreliable = self._config, not self._reliable
        match timer:
            case Input.TIMER_A | Input.TIMER_E | Input.TIMER_G:
                return config.t1 if unreliable else None
            case Input.TIMER_D:
                return TIMER_D_UNRELIABLE if unreliable else 0.0
            case Input.TIMER_I | Input.TIMER_K:
                return config.t4 if unreliable else 0.0
            case Input.TIMER_J:
                return config.timeout if unreliable else 0.0
            case Input.TIMER_TRYING:
                return TRYING_DELAY
            case _:
                return config.timeout

    def _next_interval(self) -> float:
        return min(2 * self._interval, self._config.t2)

    def _retransmit(self, ctx: StepContext) -> None:
        if self._wire is not None:
            ctx.send(self._wire, self.destination)
            ctx.effects.retransmissions += 1
        if self.RETRANSMIT_TIMER is not None:
            self._interval = self._next_interval()
            self._deadlines[self.RETRANSMIT_TIMER] = ctx.now + self._interval

    def _perform(self, action: Action, ctx: StepContext) -> None:
        events = ctx.effects.events
        match action:
            case Action.RETRANSMIT:
                self._retransmit(ctx)
            case Action.TIMEOUT:
                events.append(TransactionTimedOut(transaction=self.key, method=self.method))
            case Action.TRANSPORT_ERROR:
                events.append(TransportError(transaction=self.key, destination=self.destination))
            case _:
                raise LocalProtocolError(f"{type(self).__name__} cannot {action.value}")


def response_input(status: int, *, from_tu: bool) -> Input:
    if status < 200:
        return Input.TU_PROVISIONAL if from_tu else Input.PROVISIONAL
    if status < 300:
        return Input.TU_SUCCESS if from_tu else Input.SUCCESS
    return Input.TU_FAILURE if from_tu else Input.FAILURE


class TransactionSchedule:
    """Which transaction's timer fires next: deadlines in a heap with lazy deletion (an entry
    counts only while it is the deadline last recorded for its transaction)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Transaction]] = []
        self._armed: dict[Transaction, float] = {}
        self._seq = itertools.count()

    def update(self, tx: Transaction) -> None:
        """Record ``tx``'s current next deadline (call after every input to ``tx``)."""
        deadline = tx.next_deadline
        if deadline is None:
            self._armed.pop(tx, None)
        elif self._armed.get(tx) != deadline:
            self._armed[tx] = deadline
            heapq.heappush(self._heap, (deadline, next(self._seq), tx))

    def discard(self, tx: Transaction) -> None:
        """Forget ``tx`` (it terminated)."""
        self._armed.pop(tx, None)

    def earliest(self) -> float | None:
        """The earliest live deadline, or None."""
        while self._heap:
            deadline, _, tx = self._heap[0]
            if self._armed.get(tx) == deadline:
                return deadline
            heapq.heappop(self._heap)
        return None

    def pop_due(self, now: float) -> Transaction | None:
        """A transaction whose deadline is ``now`` or earlier, removed from the schedule."""
        deadline = self.earliest()
        if deadline is None or deadline > now:
            return None
        tx = heapq.heappop(self._heap)[2]
        del self._armed[tx]
        return tx
