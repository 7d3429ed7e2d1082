"""The user agent's SIP plumbing: one stack and endpoint, and a queue per request it sent.

Theory of operation: :class:`SipChannel` owns a :class:`~callwatch.sip.stack.SipStack` behind a
:class:`~callwatch.sip.aio.endpoint.SipEndpoint` listening on UDP and TCP (port 0), and opens
TLS client connections on demand. Sending a request returns an :class:`Exchange`: the responses,
timeout or transport error of that one client transaction arrive on its queue, so a coroutine
can ``await exchange.final()`` without callbacks. Everything else the stack reports (new
requests, CANCELs, server-transaction timeouts, closed connections) goes to the one consumer
given at construction — the :class:`~callwatch.client.ua.UserAgent`.

The ACK to a 2xx is not part of any transaction (RFC 3261 §13.2.2.4): the channel remembers the
ACK sent for each (Call-ID, CSeq number) and sends it again whenever that 2xx is retransmitted.
Tasks the user agent starts are owned here and cancelled by :meth:`SipChannel.close`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from callwatch.sip.aio.endpoint import SipEndpoint
from callwatch.sip.aio.tls import client_context
from callwatch.sip.events import (
    Address,
    IdSource,
    ResponseReceived,
    SipEvent,
    TransactionTimedOut,
    TransportError,
)
from callwatch.sip.message import Request, Response
from callwatch.sip.stack import SipStack

__all__ = ["Exchange", "Final", "Outcome", "SipChannel"]

logger = logging.getLogger(__name__)

Outcome = ResponseReceived | TransactionTimedOut | TransportError
"""What a client transaction can end with (or, for 1xx, report on the way)."""
Consumer = Callable[[SipEvent], None]
_T = TypeVar("_T")
MAX_REMEMBERED_ACKS = 1024
"""2xx ACKs kept for retransmitted 2xx responses; the oldest are forgotten first."""


@dataclass(frozen=True, slots=True)
class Final:
    """How a client transaction ended."""

    status: int
    """Final status; 408 for a timeout and 503 for a transport error (RFC 3261 §8.1.3.1)."""
    reason: str
    response: Response | None
    """The final response; None when the failure was local."""


def final_of(outcome: Outcome) -> Final | None:
    """The :class:`Final` an outcome amounts to, or None for a provisional response."""
    if isinstance(outcome, ResponseReceived):
        response = outcome.response
        return None if response.status < 200 else Final(response.status, response.reason, response)
    if isinstance(outcome, TransactionTimedOut):
        return Final(408, "Request Timeout (no response)", None)
    return Final(503, "Service Unavailable (transport error)", None)


class Exchange:
    """One request we sent and what came back for it, in order."""

    def __init__(self, key: str, request: Request, destination: Address) -> None:
        self.key = key
        """The client transaction key."""
        self.request = request
        """The request as we built it (the stack adds the Via to its copy)."""
        self.destination = destination
        self.provisional: list[Response] = []
        """1xx responses consumed by :meth:`final`."""
        self._queue: asyncio.Queue[Outcome] = asyncio.Queue()

    def deliver(self, outcome: Outcome) -> None:
        """Queue an outcome (called by the channel)."""
        self._queue.put_nowait(outcome)

    async def next(self) -> Outcome:
        """The next response, timeout or transport error."""
        return await self._queue.get()

    async def final(self) -> Final:
        """Wait for the final outcome, keeping 1xx responses in :attr:`provisional`."""
        while True:
            outcome = await self.next()
            final = final_of(outcome)
            if final is not None:
                return final
            assert isinstance(outcome, ResponseReceived)
            self.provisional.append(outcome.response)


class SipChannel:
    """A SIP stack on real sockets, with per-request queues (see the module docstring).

    Args:
        consumer: gets every event that is not a response to an :class:`Exchange`.
        ids: branch, tag and Call-ID source.
        t1: RFC 3261 T1 in seconds (timeouts are 64·T1).
        user_agent: the User-Agent/Server header value.
        tls_client: context for TLS connections; the default accepts any certificate.
    """

    def __init__(
        self,
        consumer: Consumer,
        *,
        ids: IdSource,
        t1: float = 0.5,
        user_agent: str = "callwatch-ua",
        tls_client: ssl.SSLContext | None = None,
    ) -> None:
        self._consumer = consumer
        self.stack = SipStack(ids, t1=t1, t2=max(4.0, t1), user_agent=user_agent)
        self._tls = tls_client or client_context()
        self._endpoint: SipEndpoint | None = None
        self._exchanges: dict[str, Exchange] = {}
        self._acks: dict[tuple[str, int], tuple[Request, Address]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.ports: dict[str, int] = {}
        """Bound port per transport (``UDP``, ``TCP``; ``TLS`` shares the TCP one in Vias)."""

    async def start(self, host: str) -> None:
        """Listen on ``host`` (UDP and TCP, ports chosen by the OS)."""
        endpoint = SipEndpoint(self.stack, self._on_event, tls_client=self._tls)
        self._endpoint = endpoint
        self.ports["UDP"] = await endpoint.listen_udp(host, 0)
        self.ports["TCP"] = await endpoint.listen_stream("TCP", host, 0)
        self.ports["TLS"] = self.ports["TCP"]
        self.stack.set_local_address("TLS", host, self.ports["TLS"])

    @property
    def endpoint(self) -> SipEndpoint:
        """The running endpoint.

        Raises:
            RuntimeError: :meth:`start` was not called.
        """
        if self._endpoint is None:
            raise RuntimeError("SIP channel not started")
        return self._endpoint

    # -- sending ----------------------------------------------------------------------------

    def request(self, request: Request, destination: Address) -> Exchange:
        """Send ``request`` in a new client transaction."""
        key = self.endpoint.send_request(request, destination)
        exchange = Exchange(key, request, destination)
        self._exchanges[key] = exchange
        return exchange

    def respond(self, transaction: str, response: Response) -> None:
        """Answer server transaction ``transaction``."""
        self.endpoint.send_response(transaction, response)

    def send_ack(self, ack: Request, destination: Address) -> None:
        """Send the ACK for a 2xx and remember it for that 2xx's retransmissions."""
        self._acks[(ack.call_id, ack.cseq.seq)] = (ack, destination)
        while len(self._acks) > MAX_REMEMBERED_ACKS:
            del self._acks[next(iter(self._acks))]
        self.endpoint.send_stateless(ack, destination)

    def cancel(self, transaction: str) -> None:
        """CANCEL the INVITE client transaction ``transaction`` (sent once it is Proceeding)."""
        self.endpoint.cancel(transaction)

    def spawn(self, coro: Coroutine[Any, Any, _T]) -> asyncio.Task[_T]:
        """Run ``coro`` as a task owned by the channel (cancelled by :meth:`close`)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("! user agent task failed", exc_info=task.exception())

    async def close(self) -> None:
        """Cancel owned tasks and close every socket."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._endpoint is not None:
            await self._endpoint.close()

    # -- receiving --------------------------------------------------------------------------

    def _on_event(self, event: SipEvent) -> None:
        if isinstance(event, ResponseReceived | TransactionTimedOut | TransportError):
            key = event.transaction
            exchange = self._exchanges.get(key) if key is not None else None
            if exchange is not None:
                if final_of(event) is not None:
                    del self._exchanges[exchange.key]
                exchange.deliver(event)
                return
            if isinstance(event, ResponseReceived) and self._reack(event.response):
                return
        self._consumer(event)

    def _reack(self, response: Response) -> bool:
        if not 200 <= response.status < 300 or response.cseq.method != "INVITE":
            return False
        remembered = self._acks.get((response.call_id, response.cseq.seq))
        if remembered is None:
            return False
        self.endpoint.send_stateless(*remembered)
        return True
