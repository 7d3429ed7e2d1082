"""One supervised call of a load run, and the supervisor's device that answers them all.

Theory of operation
-------------------
A :class:`LoadCall` drives one customer ⇄ agent call through the server, in stages (each
failure raises :class:`LoadCallError` naming its stage; the run records it):

1. ``register``: the agent's own user agent registers its device.
2. ``connect``: a customer (its own user agent) calls the agent's extension through the trunk
   and the agent answers at once. Both receiving RTP sockets get a packet handler feeding the
   run's :class:`~callwatch.sim.load_meter.MeterBoard`; then both parties talk — stamped
   frames of the negotiated codec, paced at the negotiated ptime — until ``stop_talking``.
3. ``supervise``: the telephony session id is read from the agent's presence (the entry whose
   ``sipData.callId`` is the agent leg's Call-ID); the :class:`SupervisorDesk` is told to
   expect that session; ``POST …/supervise`` answers 201 once the device answered. The call is
   supervised when the device's call has one stream per party and both deliver a packet.
4. ``stop_talking`` then ``finish_talking`` (what each party sent goes to its meter), then
   ``hang_up``: BYE from the customer, after which the server BYEs the agent and the device;
   ``close`` (also after a failure anywhere) closes both user agents, unregistering the agent.

A :class:`SupervisorDesk` owns the supervisor's single user agent: it auto-answers every
monitoring INVITE, matches each to the call expecting its session (``p-rc-api-ids``), and
points both of its streams at the board.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from callwatch.client import CallFailed, CallState, RegistrationFailed, UaCall, UserAgent
from callwatch.client.api_errors import ApiError, ClientError, RateLimited
from callwatch.client.monitoring import MonitoringIds
from callwatch.client.negotiation import StreamMedia
from callwatch.client.rest import RestClient
from callwatch.client.rtp_session import ReceivedRtp, RtpSession
from callwatch.client.wire import JsonObject, object_field, objects_field, optional_text
from callwatch.sim.agents import SipServer
from callwatch.sim.load_meter import MeterBoard, Speaker, StampedPayloads
from callwatch.sim.load_model import LOAD_CODECS
from callwatch.sim.load_tenant import LoadAgent, LoadDevice
from callwatch.sim.voice import SPEECH_RATE, encode_speech

__all__ = ["FrameSource", "LoadCall", "LoadCallError", "SupervisorDesk"]

logger = logging.getLogger(__name__)

PRESENCE_ATTEMPTS = 20
"""Presence reads before giving up on finding a call's telephony session."""
PRESENCE_BACKOFF = 0.05
"""Seconds before the second presence read; each further wait is one step longer (max 0.5)."""
TONE_HZ = 440.0
"""What the simulated parties say: a steady tone (any frame would do; it is stamped anyway)."""


class LoadCallError(Exception):
    """A stage of one call failed."""

    def __init__(self, stage: str, reason: str, *, rate_limited: bool = False) -> None:
        super().__init__(f"{stage}: {reason}")
        self.stage = stage
        """``register``, ``call``, ``presence``, ``supervise``, ``fork`` or ``media``."""
        self.reason = reason
        self.rate_limited = rate_limited
        """The server answered 429 (its rate limits are too low for this load)."""


class FrameSource:
    """One encoded 20 ms tone frame per negotiated codec, encoded once per run."""

    def __init__(self) -> None:
        self._frames: dict[tuple[str, int], bytes] = {}

    def frame(self, stream: StreamMedia) -> bytes:
        """A frame of ``stream``'s codec (the encoder's fifth, so it is warmed up)."""
        key = (stream.encoding.upper(), stream.clock_rate)
        if key not in self._frames:
            channels = 2 if key == ("OPUS", 48000) else None
            t = np.arange(SPEECH_RATE // 10) / SPEECH_RATE
            tone = (8000 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16)
            frames = encode_speech(tone, stream.encoding, stream.clock_rate, channels)
            self._frames[key] = frames[-1]
        return self._frames[key]


def _phone(device: LoadDevice, *, host: str, codec: str) -> UserAgent:
    return UserAgent(
        username=device.sip_username, host=host, codecs=LOAD_CODECS[codec], auto_answer_after=0.0
    )


async def _register(ua: UserAgent, sip: SipServer, device: LoadDevice) -> None:
    await ua.start()
    await ua.register(
        sip.address(),
        username=device.sip_username,
        auth_username=device.authorization_id,
        password=device.sip_password,
        domain=sip.domain,
    )


async def unregister(ua: UserAgent, timeout: float) -> bool:
    """Remove ``ua``'s binding and close it; False when the server did not confirm in time."""
    try:
        async with asyncio.timeout(timeout):
            await ua.unregister()
        return True
    except (TimeoutError, RegistrationFailed) as exc:
        logger.info("! unregister of %s failed: %r", ua.username, exc)
        return False
    finally:
        await ua.close()


def session_of(presence: JsonObject, call_id: str) -> str | None:
    """The telephony session of the active call whose SIP leg is ``call_id`` (else of the
    only connected call), from ``GET …/presence?detailedTelephonyState=true&sipData=true``."""
    calls = objects_field(presence, "activeCalls")
    for call in calls:
        if object_field(call, "sipData").get("callId") == call_id:
            return optional_text(call, "telephonySessionId")
    connected = [c for c in calls if c.get("telephonyStatus") == "CallConnected"]
    return optional_text(connected[0], "telephonySessionId") if len(connected) == 1 else None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallPlan:
    """What every call of a run shares."""

    sip: SipServer
    codec: str
    host: str
    """Address the generator's sockets bind and advertise."""
    board: MeterBoard
    frames: FrameSource
    max_packets: int
    """Packets a party sends at most (more than the run can last)."""
    clock: Callable[[], float] = time.monotonic
    """Stamps arrivals and set-up times. Not ``loop.time()``: uvloop's has millisecond
    resolution and is read once per loop iteration, which would hide sub-ms fork latency."""


class SupervisorDesk:
    """The supervisor's device: one user agent answering every monitoring INVITE at once."""

    def __init__(self, device: LoadDevice, plan: CallPlan) -> None:
        self.device = device
        self._plan = plan
        self.ua = _phone(device, host=plan.host, codec=plan.codec)
        self._expected: dict[str, tuple[int, asyncio.Future[UaCall]]] = {}
        self._dispatcher: asyncio.Task[None] | None = None
        self.strays = 0
        """Monitoring INVITEs for sessions no call expected."""

    async def start(self) -> None:
        """Register the device and start taking its calls.

        Raises:
            RegistrationFailed: the server refused the registration.
        """
        await _register(self.ua, self._plan.sip, self.device)
        self._dispatcher = asyncio.create_task(self._dispatch(), name="supervisor-desk")

    def expect(self, session_id: str, call: int) -> asyncio.Future[UaCall]:
        """A future for the device's call monitoring ``session_id`` (call index ``call``)."""
        future: asyncio.Future[UaCall] = asyncio.get_running_loop().create_future()
        self._expected[session_id] = (call, future)
        return future

    def forget(self, session_id: str) -> None:
        """Stop expecting ``session_id``."""
        self._expected.pop(session_id, None)

    async def _dispatch(self) -> None:
        while True:
            self._route(await self.ua.next_call())

    def _route(self, call: UaCall) -> None:
        session = MonitoringIds.from_headers(call.request_headers).session_id or ""
        expected = self._expected.pop(session, None)
        if expected is None:
            self.strays += 1
            logger.info("x monitoring INVITE for unexpected session %r", session)
            return
        index, future = expected
        board, clock = self._plan.board, self._plan.clock

        def on_packet(packet: ReceivedRtp) -> None:
            board.fork_packet(index, packet.payload, clock())

        for rtp in call.media.sessions:
            rtp.set_packet_handler(on_packet)
        if not future.done():
            future.set_result(call)

    async def close(self, timeout: float) -> bool:
        """Stop taking calls, unregister and close; False when unregistering failed."""
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, return_exceptions=True)
        return await unregister(self.ua, timeout)


class LoadCall:
    """One supervised customer ⇄ agent call (see the module docstring)."""

    def __init__(self, index: int, agent: LoadAgent, plan: CallPlan) -> None:
        self.index = index
        self.agent = agent
        self._plan = plan
        self._agent_ua = _phone(agent.device, host=plan.host, codec=plan.codec)
        self._customer_ua = UserAgent(username=f"+1415555{index % 10000:04d}", host=plan.host)
        self.customer: UaCall | None = None
        self.agent_call: UaCall | None = None
        self.supervisor_call: UaCall | None = None
        self._talkers: list[asyncio.Task[None]] = []
        self.stage = "register"
        """The stage running (or that failed)."""
        self.registered = False
        self.connected = False
        self.supervised = False
        self.setup_seconds: float | None = None
        """Customer INVITE → agent confirmed."""
        self.supervise_seconds: float | None = None
        """``POST …/supervise`` → 201."""

    @property
    def packets_sent(self) -> int:
        """RTP packets both parties sent so far."""
        return sum(c.rtp.counters.sent for c in (self.customer, self.agent_call) if c)

    async def register(self) -> None:
        """Register the agent's device (stage ``register``)."""
        try:
            await _register(self._agent_ua, self._plan.sip, self.agent.device)
        except (RegistrationFailed, OSError) as exc:
            raise LoadCallError("register", str(exc)) from exc
        self.registered = True

    async def connect(self) -> None:
        """Call the agent, have it answer, and start both parties talking (stage ``call``)."""
        self.stage = "call"
        start = self._plan.clock()
        sip = self._plan.sip
        try:
            await self._customer_ua.start()
            self.customer = await self._customer_ua.call(
                f"sip:{self.agent.extension_number}@{sip.domain}",
                sip.address(),
                codecs=LOAD_CODECS[self._plan.codec],
            )
            self.agent_call = await self._agent_ua.next_call()
            await self.agent_call.confirmed()
        except (CallFailed, OSError) as exc:
            raise LoadCallError("call", str(exc)) from exc
        self.setup_seconds = self._plan.clock() - start
        self.connected = True
        self._listen(self.agent_call.rtp, Speaker.CUSTOMER)
        self._listen(self.customer.rtp, Speaker.AGENT)
        self._talk(self.customer, Speaker.CUSTOMER)
        self._talk(self.agent_call, Speaker.AGENT)

    def _listen(self, rtp: RtpSession, speaker: Speaker) -> None:
        board, index, clock = self._plan.board, self.index, self._plan.clock

        def on_packet(packet: ReceivedRtp) -> None:
            board.direct_packet(index, speaker, packet.payload, clock())

        rtp.set_packet_handler(on_packet)

    def _talk(self, call: UaCall, speaker: Speaker) -> None:
        frame = self._plan.frames.frame(call.streams[0])
        payloads = StampedPayloads(
            frame, call=self.index, speaker=speaker, count=self._plan.max_packets
        )
        name = f"call-{self.index}-{speaker.name.lower()}"
        self._talkers.append(asyncio.create_task(call.send_payloads(payloads), name=name))

    async def supervise(self, rest: RestClient, desk: SupervisorDesk) -> None:
        """Have the supervisor's device listen to the whole call (stages ``presence``,
        ``supervise``, ``fork``)."""
        assert self.agent_call is not None
        self.stage = "presence"
        session_id = await self._session_id(rest, self.agent_call.call_id)
        self.stage = "supervise"
        arrived = desk.expect(session_id, self.index)
        start = self._plan.clock()
        try:
            await rest.supervise(
                session_id,
                device_id=desk.device.id,
                agent_extension_number=self.agent.extension_number,
            )
        except ClientError as exc:
            desk.forget(session_id)
            raise _rest_failure("supervise", exc) from exc
        self.supervise_seconds = self._plan.clock() - start
        self.stage = "fork"
        self.supervisor_call = call = await arrived
        if len(call.media.sessions) != 2:
            raise LoadCallError("fork", f"{len(call.media.sessions)} streams, not one per party")
        await asyncio.gather(*(_first_packet(rtp) for rtp in call.media.sessions))
        self.supervised = True

    async def _session_id(self, rest: RestClient, call_id: str) -> str:
        for attempt in range(PRESENCE_ATTEMPTS):
            try:
                presence = await rest.presence(self.agent.extension_id)
            except ClientError as exc:
                raise _rest_failure("presence", exc) from exc
            found = session_of(presence, call_id)
            if found is not None:
                return found
            await asyncio.sleep(min(PRESENCE_BACKOFF * (attempt + 1), 0.5))
        raise LoadCallError("presence", "the call never showed in the agent's presence")

    def stop_talking(self) -> None:
        """Stop both parties' talkers (await :meth:`finish_talking` next)."""
        for task in self._talkers:
            task.cancel()

    async def finish_talking(self) -> None:
        """Wait for the talkers to stop and give each meter what its party sent.

        Raises:
            LoadCallError: the call had ended before the run did (stage ``media``).
        """
        results = await asyncio.gather(*self._talkers, return_exceptions=True)
        board = self._plan.board
        for call, speaker in ((self.customer, Speaker.CUSTOMER), (self.agent_call, Speaker.AGENT)):
            if call is not None:
                board.meter(self.index, speaker).sent = call.rtp.counters.sent
        for result in results:
            if isinstance(result, BaseException) and not isinstance(
                result, asyncio.CancelledError | RuntimeError
            ):
                raise result
        for call in (self.customer, self.agent_call):
            if call is not None and call.state is CallState.ENDED:
                reason = call.end_reason.value if call.end_reason else "unknown"
                raise LoadCallError("media", f"the call ended before the run did ({reason})")

    async def hang_up(self, timeout: float) -> bool:
        """BYE from the customer; wait for the server to end the agent's and the device's
        calls. False when they did not end within ``timeout``."""
        try:
            if self.customer is not None:
                await self.customer.hangup(timeout=timeout)
            ends = [c.ended() for c in (self.agent_call, self.supervisor_call) if c is not None]
            async with asyncio.timeout(timeout):
                await asyncio.gather(*ends)
            return True
        except TimeoutError:
            return False

    async def close(self, timeout: float) -> bool:
        """Stop the talkers if they still run, close the customer, unregister the agent's
        device and close its user agent; False when unregistering failed."""
        self.stop_talking()
        await asyncio.gather(*self._talkers, return_exceptions=True)
        await self._customer_ua.close()
        if not self.registered:
            await self._agent_ua.close()
            return True
        return await unregister(self._agent_ua, timeout)


async def _first_packet(rtp: RtpSession) -> None:
    await rtp.wait_until(lambda: rtp.counters.received > 0)


def _rest_failure(stage: str, exc: ClientError) -> LoadCallError:
    if isinstance(exc, RateLimited):
        return LoadCallError(stage, f"rate limited: {exc}", rate_limited=True)
    if isinstance(exc, ApiError):
        return LoadCallError(stage, str(exc))
    return LoadCallError(stage, f"{type(exc).__name__}: {exc}")
