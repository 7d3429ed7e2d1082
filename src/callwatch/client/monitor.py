"""The supervisor application (``callwatch monitor``): the seed's sample app, done properly.

Theory of operation. :class:`Monitor` logs nothing in itself and prints nothing: it reports what
happens as :data:`MonitorEvent` values that a front end (the CLI's live view, the demo, a test)
consumes. Against any RingCentral-compatible server it:

1. lists the agents the user may monitor (call-monitoring groups where the user is Monitoring);
2. provisions and registers a softphone (``sip-provision``), which auto-answers the monitoring
   INVITEs and hands out per-party audio;
3. subscribes to each agent's telephony sessions: over the WebSocket gateway (with recovery),
   or with a WebHook to a receiver it runs (renewed, re-created when lost);
4. on an agent's party reaching Answered, supervises that call once — dual channel by default
   (one party-level request per party), session level as an option; repeated Answered events
   (after unhold, re-subscription) do not supervise again;
5. records each call to ``<record-dir>/<telephonySessionId>.wav`` (customer left, agent right,
   crash-safe) and transcribes it to ``<telephonySessionId>.jsonl`` (finals; partial
   hypotheses are emitted live when asked for);
6. survives socket drops (the subscription recovers or re-subscribes; a session that was
   missed is picked up from the next event) and keeps the softphone registered — after a
   server restart (the subscription had to be created anew) it registers at once;
7. on stop, ends the audio pumps, then lets the transcriber finish what it heard — open
   utterances are transcribed and their lines emitted, for at most ``drain_timeout`` seconds —
   and ends :meth:`Monitor.events`, so a consumer reading events to the end misses no line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from callwatch.client.asr_segments import Segment, TranscriptWriter
from callwatch.client.rest import MonitoredAgent, RestClient
from callwatch.client.sinks import StereoWavRecorder
from callwatch.client.softphone import DEFAULT_CODECS, AutoAnswerPolicy, Softphone
from callwatch.client.streams import AudioFrame, PartyAudio, PartyStats
from callwatch.client.subscriptions import WebSocketSubscription
from callwatch.client.supervised_call import SupervisedCall
from callwatch.client.transcribe import Transcriber, TranscriberConfig
from callwatch.client.webhook_feed import WebhookFeed
from callwatch.client.wire import JsonObject
from callwatch.sip.offer_answer import CodecSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Started:
    """Logged in, registered and subscribed."""

    agents: tuple[str, ...]
    device_id: str


@dataclass(frozen=True, slots=True)
class CallEvent:
    """A telephony-session notification about a monitored agent's party."""

    session_id: str
    agent: str
    status: str
    sequence: int


@dataclass(frozen=True, slots=True)
class Supervising:
    """Supervise requests accepted (201) for a call."""

    session_id: str
    agent: str
    parties: tuple[str, ...]
    request_seconds: float
    """From the first supervise request to the last 201."""


@dataclass(frozen=True, slots=True)
class FirstAudio:
    """The first audio frame of a supervised call arrived."""

    session_id: str
    seconds: float
    """From the first supervise request to this frame."""


@dataclass(frozen=True, slots=True)
class Line:
    """A transcript segment."""

    session_id: str
    role: str
    segment: Segment


@dataclass(frozen=True, slots=True)
class Finished:
    """A supervised call ended; its files are complete."""

    session_id: str
    wav: Path
    transcript: Path
    seconds: float
    packets: dict[str, int] = field(default_factory=dict)
    """RTP packets the softphone received, per monitored party."""
    streams: dict[str, PartyStats] = field(default_factory=dict)
    """Each monitored party's stream counters at its end (frames, concealment, drops, jitter)."""
    recording_started: float = 0.0
    """``time.monotonic()`` when the WAV was created: its first sample is the device's answer
    to the session's first monitoring INVITE."""


@dataclass(frozen=True, slots=True)
class Problem:
    """Something failed (the monitor goes on)."""

    message: str


MonitorEvent = Started | CallEvent | Supervising | FirstAudio | Line | Finished | Problem


@dataclass
class MonitorConfig:
    """How the monitor works."""

    record_dir: Path
    dual_channel: bool = True
    transport: str = "UDP"
    transcribe: bool = True
    drain_timeout: float = 5.0
    """Seconds a stopping monitor waits for the transcriber's last lines (see step 7)."""
    codecs: Sequence[CodecSpec] = DEFAULT_CODECS
    """The codecs the softphone accepts, best first (see ``offer_order``)."""
    offer_order: bool = True
    """The softphone answers each stream with the server's first offered codec among
    ``codecs`` — the monitored party's own, so the fork is zero-copy and what is recorded and
    transcribed is what the agent heard (a PCMU call transcoded to Opus loses words:
    ``bench.transcribe_call``). False: ``codecs`` order wins (Opus 48k for any call)."""
    partials: bool = False
    """Also emit pocketsphinx partial hypotheses (:class:`Line` with a non-final segment) while
    a speaker talks; the transcript files keep finals only."""
    delivery: Literal["websocket", "webhook"] = "websocket"
    """How telephony-session notifications arrive: RingCentral's WebSocket gateway, or a
    WebHook subscription to a receiver this monitor runs (:class:`WebhookFeed`)."""
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 0
    """Where the WebHook receiver listens (port 0: any free port)."""
    webhook_address: str | None = None
    """The URL the server delivers to, when it must reach the receiver by another name (NAT,
    a proxy); default: ``http://<webhook_host>:<port>/webhook``."""
    webhook_check_interval: float = 10.0
    """Seconds between two health checks of the WebHook subscription (renewal, re-creation,
    outages; an outage caught by a check also makes the softphone register again)."""


@dataclass
class _Session:
    session_id: str
    agent: MonitoredAgent
    customer_party: str = ""
    agent_party: str = ""
    requested_at: float = 0.0
    first_audio: bool = False
    calls: list[SupervisedCall] = field(default_factory=list)
    recorder: StereoWavRecorder | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    packets: dict[str, int] = field(default_factory=dict)
    streams: dict[str, PartyStats] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    recording_started: float = 0.0
    finished: bool = False


class Monitor:
    """Supervises every answered call of the agents the user may monitor."""

    def __init__(self, rest: RestClient, config: MonitorConfig) -> None:
        self._rest = rest
        self._config = config
        self._events: asyncio.Queue[MonitorEvent | None] = asyncio.Queue()
        self._sessions: dict[str, _Session] = {}
        self._agents: dict[str, MonitoredAgent] = {}
        self._softphone: Softphone | None = None
        self._device_id = ""
        self._transcriber: Transcriber | None = None
        self._writers: dict[str, TranscriptWriter] = {}
        self._party_session: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def events(self) -> AsyncIterator[MonitorEvent]:
        """Everything that happens, in order; ends once :meth:`run` has returned."""
        while (event := await self._events.get()) is not None:
            yield event
        self._events.put_nowait(None)  # any other reader ends too

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then drain the transcriber (see step 7)."""
        try:
            await self._run(stop)
        finally:
            self._events.put_nowait(None)

    async def _run(self, stop: asyncio.Event) -> None:
        self._config.record_dir.mkdir(parents=True, exist_ok=True)
        agents = await self._rest.monitorable_agents()
        if not agents:
            self._emit(Problem("this user may monitor nobody (call-monitoring groups)"))
            return
        self._agents = {str(a.extension_id): a for a in agents}
        provision = await self._rest.sip_provision(transports=(self._config.transport,))
        self._device_id = provision.device_id
        softphone = Softphone(
            provision.for_transport(self._config.transport),
            auto_answer=AutoAnswerPolicy.WITH_HEADERS,
            codecs=self._config.codecs,
            offer_order=self._config.offer_order,
        )
        self._softphone = softphone
        filters = [
            f"/restapi/v1.0/account/~/extension/{a.extension_id}/telephony/sessions" for a in agents
        ]
        async with contextlib.AsyncExitStack() as stack:
            await softphone.start()
            stack.push_async_callback(softphone.close)
            if self._config.transcribe:
                config = TranscriberConfig(partials=self._config.partials)
                self._transcriber = await stack.enter_async_context(Transcriber(config))
            subscription = self._subscription(filters)
            await stack.enter_async_context(subscription)
            self._emit(Started(tuple(_number(a) for a in agents), self._device_id))
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._notifications(subscription))
                    group.create_task(self._calls(softphone))
                    lines = None
                    if self._transcriber is not None:
                        lines = group.create_task(self._lines(self._transcriber))
                    await stop.wait()
                    await self._drain(lines)
                    raise _Stop
            except* _Stop:
                pass
            finally:
                for task in list(self._tasks):
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)
                for writer in self._writers.values():
                    writer.close()

    async def _drain(self, lines: asyncio.Task[None] | None) -> None:
        """Stop the per-call work (no frame may reach a closed transcriber), then let the
        transcriber emit the lines of what it already heard (see step 7)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if lines is None or self._transcriber is None:
            return
        self._transcriber.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(lines), self._config.drain_timeout)

    # -- notifications ---------------------------------------------------------------------------

    def _subscription(self, filters: list[str]) -> WebSocketSubscription | WebhookFeed:
        if self._config.delivery == "webhook":
            return WebhookFeed(
                self._rest,
                filters,
                host=self._config.webhook_host,
                port=self._config.webhook_port,
                address=self._config.webhook_address,
                check_interval=self._config.webhook_check_interval,
                on_reset=self._server_came_back,
            )
        return WebSocketSubscription(self._rest, filters, on_reconnected=self._reconnected)

    def _reconnected(self, recovered: bool) -> None:
        """The notification socket is back; unrecovered means the server lost its state (a
        restart): our device's registration is likely gone as well, so register at once
        rather than at the next refresh (up to 30 s away, missing calls meanwhile)."""
        if not recovered:
            self._server_came_back(recovered)

    def _server_came_back(self, recovered: bool) -> None:
        """The server was away (WebHook: an outage, or a subscription it lost): it may have
        restarted and forgotten our registration, which costs nothing to renew now."""
        if self._softphone is not None:
            logger.info("! the server may have restarted: registering the softphone again")
            self._softphone.register_again()

    async def _notifications(self, subscription: AsyncIterable[JsonObject]) -> None:
        async for envelope in subscription:
            body = envelope.get("body") or {}
            session_id = str(body.get("telephonySessionId", ""))
            for party in body.get("parties") or []:
                agent = self._agents.get(str(party.get("extensionId", "")))
                if agent is None or not session_id:
                    continue
                status = str((party.get("status") or {}).get("code", ""))
                self._emit(
                    CallEvent(session_id, _number(agent), status, int(body.get("sequence", 0)))
                )
                if status == "Answered" and session_id not in self._sessions:
                    self._sessions[session_id] = _Session(session_id, agent)
                    self._spawn(self._supervise(session_id))

    async def _supervise(self, session_id: str) -> None:
        session = self._sessions[session_id]
        agent_id = str(session.agent.extension_id)
        try:
            call = await self._rest.session(session_id)
            parties = [
                p
                for p in call.get("parties", [])
                if (p.get("status") or {}).get("reason") != "Supervising"
                and (p.get("status") or {}).get("code") in ("Answered", "Hold")
            ]
            agent_party = next(p for p in parties if str(p.get("extensionId")) == agent_id)
            customer = next((p for p in parties if p is not agent_party), agent_party)
            session.agent_party, session.customer_party = agent_party["id"], customer["id"]
            for pid in (session.customer_party, session.agent_party):
                self._party_session[pid] = session_id
            session.requested_at = time.monotonic()
            if self._config.dual_channel:
                for party_id in dict.fromkeys((session.customer_party, session.agent_party)):
                    await self._rest.supervise(
                        session_id,
                        device_id=self._device_id,
                        agent_extension_id=agent_id,
                        party_id=party_id,
                    )
            else:
                await self._rest.supervise(
                    session_id, device_id=self._device_id, agent_extension_id=agent_id
                )
        except Exception as exc:  # the call may have ended meanwhile; report and go on
            self._emit(Problem(f"supervise {session_id}: {exc}"))
            return
        self._emit(
            Supervising(
                session_id,
                _number(session.agent),
                (session.customer_party, session.agent_party),
                time.monotonic() - session.requested_at,
            )
        )

    # -- audio -------------------------------------------------------------------------------------

    async def _calls(self, softphone: Softphone) -> None:
        async for call in softphone.calls():
            session_id = call.session_id or call.session_key
            session = self._sessions.get(session_id)
            if session is None:  # supervised by someone else's request: still record it
                session = self._sessions.setdefault(
                    session_id, _Session(session_id, next(iter(self._agents.values())))
                )
            session.calls.append(call)
            if session.recorder is None:
                left = session.customer_party or call.party_ids[0]
                right = session.agent_party or call.party_ids[-1]
                session.recorder = StereoWavRecorder(self._path(session_id, ".wav"), left, right)
                session.recording_started = time.monotonic()
                if self._transcriber is not None:
                    self._writers[session_id] = TranscriptWriter(
                        self._path(session_id, ".jsonl"), finals_only=True
                    )
            for party_id, audio in call.parties.items():
                self._party_session.setdefault(party_id, session_id)
                session.tasks.append(self._spawn(self._pump(session, party_id, audio)))
            self._spawn(self._watch_end(session, call))

    async def _pump(self, session: _Session, party_id: str, audio: PartyAudio) -> None:
        transcriber = self._transcriber
        async for frame in audio:
            if not session.first_audio and not frame.concealed:
                session.first_audio = True
                self._emit(FirstAudio(session.session_id, time.monotonic() - session.requested_at))
            self._write(session, frame)
            if transcriber is not None:
                transcriber.write(frame)
        stats = audio.stats
        session.packets[party_id] = stats.decoder.packets
        session.streams[party_id] = stats
        if transcriber is not None:
            transcriber.end_party(party_id)

    def _write(self, session: _Session, frame: AudioFrame) -> None:
        if session.recorder is not None:
            session.recorder.write(frame)

    async def _watch_end(self, session: _Session, call: SupervisedCall) -> None:
        await call.ended()
        if session.finished or any(c.state.name != "ENDED" for c in session.calls):
            return
        session.finished = True
        await asyncio.gather(*session.tasks, return_exceptions=True)
        if session.recorder is not None:
            session.recorder.close()
        self._emit(
            Finished(
                session.session_id,
                self._path(session.session_id, ".wav"),
                self._path(session.session_id, ".jsonl"),
                time.monotonic() - session.started,
                dict(session.packets),
                dict(session.streams),
                session.recording_started,
            )
        )

    async def _lines(self, transcriber: Transcriber) -> None:
        async for segment in transcriber.segments():
            session_id = self._party_session.get(segment.party_id, "")
            writer = self._writers.get(session_id)
            if writer is not None:
                writer.write(segment)
            session = self._sessions.get(session_id)
            role = "customer" if session and segment.party_id == session.customer_party else "agent"
            self._emit(Line(session_id, role, segment))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _path(self, session_id: str, suffix: str) -> Path:
        """Where a call's file goes; the directory is made again if it was removed meanwhile."""
        self._config.record_dir.mkdir(parents=True, exist_ok=True)
        return self._config.record_dir / f"{session_id}{suffix}"

    def _emit(self, event: MonitorEvent) -> None:
        self._events.put_nowait(event)

    def stats(self) -> dict[str, Any]:
        """Counters for a summary: sessions supervised and, when transcribing, the
        transcriber's counters (``"transcriber"``: dropped frames and utterances, CPU)."""
        counters: dict[str, Any] = {"sessions": len(self._sessions)}
        if self._transcriber is not None:
            counters["transcriber"] = self._transcriber.stats
        return counters


def _number(agent: MonitoredAgent) -> str:
    return agent.extension_number or str(agent.extension_id)


class _Stop(Exception):
    """Leaves the task group when the monitor is asked to stop."""
