"""The supervisor's softphone: registers a device, answers monitoring INVITEs, hands out audio.

Theory of operation
-------------------
A :class:`Softphone` is the SDK's stand-in for RingCentral's official softphone SDK
(ringcentral-api.md §6.2), without its bugs. It owns a :class:`~callwatch.client.ua.UserAgent`
(the SIP and RTP plumbing), a :class:`~callwatch.client.registration.RegistrationKeeper` and one
:class:`~callwatch.client.playout.PlayoutClock`:

1. :meth:`Softphone.start` resolves the outbound proxy, binds the SIP and RTP sockets on the
   local address that reaches it, and registers over UDP, TCP or TLS (digest with the
   authorization id; TLS as an RFC 5626 flow, so INVITEs come back over our own connection).
   The registration is then kept alive: refreshed every ``refresh_interval`` seconds at most and
   renewed at once when its connection drops.
2. Each incoming INVITE is rung (180), its streams answered by the user agent — the best codec
   of ``codecs`` per offered stream (Opus 48k, Opus 16k, G.722, PCMU, PCMA by default), or with
   ``offer_order`` the first offered codec among ``codecs`` (the server lists the monitored
   party's own codec first, so its fork forwards the packets untouched, no transcoding), SRTP
   (SDES) whenever offered, any number of ``m=audio`` lines, any number of parallel INVITEs —
   and wrapped in a :class:`~callwatch.client.supervised_call.SupervisedCall` with one
   :class:`~callwatch.client.streams.PartyAudio` per monitored party. The auto-answer policy
   answers it at once or leaves it to the application; either way it is yielded by
   :meth:`Softphone.calls`.
3. Calls of one telephony session (the two INVITEs of dual channel) share one timeline origin,
   so their parties' frames line up by timestamp. Re-INVITEs, BYE and CANCEL are handled by the
   user agent and reflected in the call (new codec, new streams, streams ended).

Unlike the official SDK, each call has its own SRTP keys, INVITEs without SDP are answered with
an offer, header names are matched case-insensitively, and ``p-rc-api-monitoring-ids`` is read
by parameter name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any

from callwatch.client.call_model import CallState
from callwatch.client.errors import CallFailed, UaError
from callwatch.client.monitoring import AutoAnswerPolicy
from callwatch.client.playout import PlayoutClock
from callwatch.client.registration import RegistrationKeeper, RegistrationStatus
from callwatch.client.sip_account import (
    TRANSPORTS,
    SipAccount,
    SipCredentials,
    local_address_for,
    parse_proxy,
)
from callwatch.client.streams import DEFAULT_MAX_QUEUED
from callwatch.client.supervised_call import SupervisedCall
from callwatch.client.ua import UserAgent
from callwatch.client.ua_call import UaCall
from callwatch.ids import IdGenerator
from callwatch.sip.events import Address
from callwatch.sip.offer_answer import (
    G722,
    OPUS,
    OPUS_16000,
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    CodecSpec,
)

__all__ = [
    "DEFAULT_CODECS",
    "AutoAnswerPolicy",
    "SipAccount",
    "SipCredentials",
    "Softphone",
    "parse_proxy",
]

logger = logging.getLogger(__name__)

DEFAULT_CODECS = (OPUS, OPUS_16000, G722, PCMU, PCMA, TELEPHONE_EVENT)
"""Answer preference: Opus 48k (PT 111), RingCentral's Opus 16k (PT 109), G.722, G.711."""
MAX_WAITING_CALLS = 64
"""Calls yielded by :meth:`Softphone.calls` but not read yet; more are hung up."""
UNREGISTER_TIMEOUT = 2.0
"""Seconds :meth:`Softphone.close` waits for the registrar to confirm the removal."""


class Softphone:
    """A supervisor device (see the module docstring).

    Args:
        sip_info: credentials and outbound proxy (:class:`SipCredentials` or the REST client's
            ``SipInfo``).
        auto_answer: which INVITEs are answered without the application.
        codecs: answer preference, best first.
        offer_order: answer each stream with the offer's first codec among ``codecs`` instead
            (the party's own codec from callwatch or RingCentral: a zero-copy fork).
        sample_rate: rate of every party's frames (8000, 16000, 48000; None: the codec's).
        host: local address to bind and advertise; default: the one that reaches the proxy.
        expires: registration expiry asked for, in seconds.
        refresh_interval: longest time between two REGISTERs (RingCentral's SDK: 30 s).
        retry_interval: first wait after a failed REGISTER (doubles up to a minute).
        max_queued: frames each party's reader may fall behind before frames are dropped.
        tls_context: TLS client context; the default accepts any certificate (the proxy is
            reached by IP address, so a verifying context must not check the host name).
        ids: identifier source (seed it for reproducible tests).
        user_agent: the ``User-Agent`` header.

    Raises:
        ValueError: an unsupported transport or a malformed outbound proxy.
    """

    def __init__(
        self,
        sip_info: SipAccount,
        *,
        auto_answer: AutoAnswerPolicy = AutoAnswerPolicy.WITH_HEADERS,
        codecs: Sequence[CodecSpec] = DEFAULT_CODECS,
        offer_order: bool = False,
        sample_rate: int | None = 16000,
        host: str | None = None,
        expires: int = 3600,
        refresh_interval: float = 30.0,
        retry_interval: float = 1.0,
        max_queued: int = DEFAULT_MAX_QUEUED,
        tls_context: ssl.SSLContext | None = None,
        ids: IdGenerator | None = None,
        user_agent: str = "callwatch-softphone",
    ) -> None:
        self.transport = sip_info.transport.upper()
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport {sip_info.transport!r}: use one of {TRANSPORTS}")
        self._proxy = parse_proxy(sip_info.outbound_proxy, self.transport)
        self.sip_info = sip_info
        self.auto_answer = auto_answer
        self._codecs = tuple(codecs)
        self._offer_order = offer_order
        self._sample_rate = sample_rate
        self._host = host
        self._expires = expires
        self._refresh_interval = refresh_interval
        self._retry_interval = retry_interval
        self._max_queued = max_queued
        self._tls_context = tls_context
        self._ids = ids or IdGenerator()
        self._user_agent = user_agent
        self._ua: UserAgent | None = None
        self._keeper: RegistrationKeeper | None = None
        self._clock: PlayoutClock | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._incoming: asyncio.Queue[SupervisedCall | None] = asyncio.Queue(MAX_WAITING_CALLS)
        self._active: list[SupervisedCall] = []
        self._origins: dict[str, tuple[int, int]] = {}
        self._closed = False

    # -- identity -------------------------------------------------------------------------------

    @property
    def device_id(self) -> str:
        """The device id a supervise request names (= the SIP authorization id)."""
        return self.sip_info.authorization_id

    @property
    def user_agent(self) -> UserAgent:
        """The SIP user agent (addresses, SIP details).

        Raises:
            RuntimeError: :meth:`start` was not called.
        """
        if self._ua is None:
            raise RuntimeError("softphone not started")
        return self._ua

    @property
    def proxy(self) -> Address:
        """The outbound proxy as resolved by :meth:`start`."""
        return self._keeper.server if self._keeper else Address(self.transport, *self._proxy)

    @property
    def registration(self) -> RegistrationStatus:
        """The latest registration outcome."""
        if self._keeper is None:
            return RegistrationStatus(registered=False)
        return self._keeper.status

    async def next_registration(self) -> RegistrationStatus:
        """Wait for the next registration outcome (refresh, failure, lost connection)."""
        if self._keeper is None:
            raise RuntimeError("softphone not started")
        return await self._keeper.next_status()

    @property
    def active_calls(self) -> list[SupervisedCall]:
        """Calls not ended yet."""
        return list(self._active)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, *, register: bool = True) -> None:
        """Bind the sockets, register (unless ``register`` is false: a peer that INVITEs us
        directly) and start keeping the registration alive and taking calls.

        Raises:
            RegistrationFailed: the first REGISTER failed (the softphone is closed again).
            OSError: the proxy's name does not resolve, or a socket cannot be bound.
        """
        loop = asyncio.get_running_loop()
        host, port = self._proxy
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        ip = str(infos[0][4][0])
        local = self._host or local_address_for(ip, port)
        self._ua = UserAgent(
            username=self.sip_info.username,
            host=local,
            domain=self.sip_info.domain,
            codecs=self._codecs,
            offer_order=self._offer_order,
            tls_context=self._tls_context,
            ids=self._ids,
            user_agent=self._user_agent,
        )
        await self._ua.start()
        self._clock = PlayoutClock()
        self._keeper = RegistrationKeeper(
            self._ua,
            server=Address(self.transport, ip, port),
            username=self.sip_info.username,
            auth_username=self.sip_info.authorization_id,
            password=self.sip_info.password,
            domain=self.sip_info.domain,
            expires=self._expires,
            refresh_interval=self._refresh_interval,
            retry_interval=self._retry_interval,
        )
        self._spawn(self._accept_calls())
        if not register:
            return
        try:
            await self._keeper.register()
        except UaError:
            await self.close()
            raise
        self._spawn(self._keeper.run())

    def register_again(self) -> None:
        """Send a REGISTER now rather than at the next refresh (no-op before :meth:`start`);
        failures are retried with backoff, as for refreshes."""
        if self._keeper is not None and not self._closed:
            self._keeper.refresh_now()

    async def close(self) -> None:
        """Hang up every call, unregister (briefly), close every socket; :meth:`calls` ends."""
        if self._closed:
            return
        self._closed = True
        for call in list(self._active):
            call.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._keeper is not None and self._keeper.status.registered:
            with contextlib.suppress(UaError, TimeoutError):
                async with asyncio.timeout(UNREGISTER_TIMEOUT):
                    await self._keeper.unregister()
        if self._ua is not None:
            await self._ua.close()
        if self._clock is not None:
            self._clock.close()
        while self._incoming.full():
            self._incoming.get_nowait()
        self._incoming.put_nowait(None)

    async def __aenter__(self) -> Softphone:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- calls ------------------------------------------------------------------------------------

    async def calls(self) -> AsyncIterator[SupervisedCall]:
        """Every incoming call, as soon as it is answered (or ringing, when the policy leaves
        it to the application); ends when the softphone closes."""
        while True:
            call = await self._incoming.get()
            if call is None:
                self._incoming.put_nowait(None)  # let every other reader end too
                return
            yield call

    async def _accept_calls(self) -> None:
        ua = self.user_agent
        while True:
            call = await ua.next_call()
            if call.state is not CallState.RINGING:  # refused (bad SDP) or already cancelled
                continue
            supervised = self._supervise(call)
            if self.auto_answer.answers(call.request_headers):
                try:
                    await supervised.answer()
                except CallFailed as exc:  # cancelled meanwhile
                    logger.info("! %s not answered: %s", call.call_id, exc)
                    continue
            logger.info("< call %s: parties %s", supervised.session_id, supervised.party_ids)
            if self._incoming.full():
                logger.warning("x %s: %d calls unread; hanging up", call.call_id, MAX_WAITING_CALLS)
                self._spawn(self._hang_up(supervised))
            else:
                self._incoming.put_nowait(supervised)

    def _supervise(self, call: UaCall) -> SupervisedCall:
        assert self._clock is not None
        supervised = SupervisedCall(
            call,
            clock=self._clock,
            origin_tick=self._take_origin,
            sample_rate=self._sample_rate,
            max_queued=self._max_queued,
            on_end=self._call_ended,
        )
        self._active.append(supervised)
        return supervised

    def _take_origin(self, session: str) -> int:
        assert self._clock is not None
        origin, users = self._origins.get(session, (self._clock.next_index(), 0))
        self._origins[session] = (origin, users + 1)
        return origin

    def _call_ended(self, call: SupervisedCall) -> None:
        if call in self._active:
            self._active.remove(call)
        origin, users = self._origins.get(call.session_key, (0, 1))
        if users <= 1:
            self._origins.pop(call.session_key, None)
        else:
            self._origins[call.session_key] = (origin, users - 1)

    @staticmethod
    async def _hang_up(call: SupervisedCall) -> None:
        await call.hangup()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("! softphone task failed", exc_info=task.exception())
