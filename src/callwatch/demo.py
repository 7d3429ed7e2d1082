"""``callwatch demo``: the whole system on one machine, the seed's scenario end to end.

The embedded platform starts (SQLite, in-process bus, built-in relay, loopback, ports chosen by
the OS) with the demo tenant; the supervisor's app (:class:`~callwatch.client.monitor.Monitor`,
logged in as extension 101 through the REST API like any RingCentral app) subscribes to its
agents and registers its softphone; simulated customers call the agents through the trunk and
both sides speak a shipped conversation. The monitor supervises each answered call, records it
and transcribes it; at the end a summary compares what was heard with what was said.

Everything travels the real path: SIP over sockets, RTP through the relay and the forks, audio
decoded by the monitor's softphone.

What is measured is the call's codec, not a transcoding of it: the relay offers the supervisor's
device each party's own codec first, and the monitor's softphone takes the offer's first codec
(``MonitorConfig.offer_order``), so each fork is zero-copy — the monitor hears exactly the
packets the agent hears. (A softphone that insists on its own favourite, Opus 48k, gets a PCMU
call transcoded by the relay; ``monitor_codecs`` reproduces that.) Each call's summary says,
from the relay's side, what every supervisor stream carries.

Timing: each call's speakers wait until its supervision is established (the monitor's
``Supervising`` event: both forks exist) before their first sample, so nothing said is missed
however long supervising takes on a busy machine. When every recording is closed the monitor
stops, which lets its transcriber finish the last utterances; their lines are part of the
result.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.markup import escape

from callwatch.app import CallwatchServer, provision_demo, server_url
from callwatch.client.monitor import (
    Finished,
    FirstAudio,
    Line,
    Monitor,
    MonitorConfig,
    MonitorEvent,
    Problem,
    Started,
    Supervising,
)
from callwatch.client.rest import RestClient
from callwatch.client.streams import PartyStats
from callwatch.client.wer import word_errors
from callwatch.config import ApiSettings, Settings, SipSettings
from callwatch.media.control import MediaError
from callwatch.media.mixfork import MixStats
from callwatch.sim.agents import SimAgent, SimCustomer, SipServer, converse
from callwatch.sim.load_tenant import provision_load_tenant
from callwatch.sim.speech import conversations, load_conversation
from callwatch.sip.offer_answer import CodecSpec

DEMO_LIMITS = {"Light": 100_000, "Medium": 100_000, "Heavy": 100_000, "Auth": 100_000}
"""The demo drives many requests from one user; RingCentral's per-minute limits would stop it."""
CUSTOMERS = ("+14155550123", "+14155550124", "+14155550125", "+14155550126")
SUPERVISE_TIMEOUT = 20.0
"""Seconds a call waits for its supervision before speaking anyway (reported as a problem)."""
LATCH_DELAY = 0.2
"""Seconds between the supervision being established and the first sample (the device's
streams latch on the relay meanwhile; the scripts start with 0.5 s of silence anyway)."""
DRAIN_TIMEOUT = 120.0
"""Seconds the stopping monitor may take to transcribe what it heard last."""


@dataclass
class CallResult:
    """What one simulated call measured."""

    agent: str
    conversation: str
    codec: str
    session_id: str = ""
    duration: float = 0.0
    sent: dict[str, int] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)
    first_audio: float | None = None
    wav: Path | None = None
    transcript: Path | None = None
    heard: dict[str, list[str]] = field(default_factory=lambda: {"customer": [], "agent": []})
    forked: dict[str, int] = field(default_factory=dict)
    """Packets the relay sent to the supervisor's streams, per monitored party."""
    delivered: dict[str, int] = field(default_factory=dict)
    """Packets the monitor's softphone received, per monitored party."""
    said: dict[str, str] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    """Monitored party id → ``"customer"`` or ``"agent"``."""
    forks: dict[str, str] = field(default_factory=dict)
    """Per role, what the relay sends the supervisor's device: ``"PCMU/8000 zero-copy"`` or
    ``"PCMU/8000 → OPUS/48000 transcoded"`` (the codec the device answered)."""
    streams: dict[str, PartyStats] = field(default_factory=dict)
    """Per role, the monitor's stream counters at the end (concealment, jitter buffer)."""
    mixes: dict[str, MixStats] = field(default_factory=dict)
    """Per role, the relay's transcoding mix counters (only for transcoded forks)."""
    latencies: list[float] = field(default_factory=list)
    """Each final line's latency (spoken end → text), seconds."""

    def loss(self, speaker: str) -> float:
        """Fraction of ``speaker``'s packets the other party did not receive."""
        sent = self.sent.get(speaker, 0)
        return 0.0 if not sent else max(0.0, 1 - self.received.get(speaker, 0) / sent)

    def wer(self, speaker: str) -> float:
        """Word error rate of the transcript of ``speaker`` against the script."""
        return word_errors(self.said.get(speaker, ""), " ".join(self.heard[speaker])).wer


@dataclass
class DemoResult:
    """The outcome of a demo run."""

    calls: list[CallResult]
    problems: list[str]

    @property
    def ok(self) -> bool:
        """Every call recorded and transcribed, no problem reported."""
        return not self.problems and all(
            c.wav is not None and c.wav.exists() and any(c.heard.values()) for c in self.calls
        )


Reporter = Callable[[str], None]


class Demo:
    """One demo run (see the module docstring).

    Args:
        calls: concurrent calls; call *i* speaks conversation *i* (cycled, sorted by name).
        data_dir: where the database and recordings go (default: a temporary directory).
        codec: the calls' codec (a :data:`~callwatch.sim.agents.CODECS` name).
        report: where progress lines go.
        seconds: end each conversation at the last turn finished by then.
        monitor_codecs: make the monitor's softphone answer in this order of preference,
            whatever the relay offers first (None: it takes each party's own codec, zero-copy).
    """

    def __init__(
        self,
        *,
        calls: int = 1,
        data_dir: Path | None = None,
        codec: str = "PCMU",
        report: Reporter = print,
        seconds: float | None = None,
        monitor_codecs: Sequence[CodecSpec] | None = None,
    ) -> None:
        self._calls = calls
        self._data_dir = data_dir
        self._codec = codec
        self._monitor_codecs = tuple(monitor_codecs) if monitor_codecs is not None else None
        self._report = report
        self._seconds = seconds
        self._server: CallwatchServer | None = None
        self._results: dict[str, CallResult] = {}
        self._problems: list[str] = []
        self._finished: asyncio.Queue[str] = asyncio.Queue()
        self._supervised: dict[str, asyncio.Event] = {}
        self.monitor_stats: dict[str, Any] = {}
        """The monitor's counters once the run is over (``Monitor.stats``)."""

    async def run(self) -> DemoResult:
        """Start everything, run the calls, return the result."""
        with contextlib.ExitStack() as stack:
            data_dir = self._data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
            return await self._run(data_dir)

    async def _run(self, data_dir: Path) -> DemoResult:
        settings = Settings(
            data_dir=data_dir,
            host="127.0.0.1",
            sip=SipSettings(port=0, tls_port=0),
            api=ApiSettings(port=0, rate_limits=DEMO_LIMITS),
        )
        server = CallwatchServer(settings)
        self._server = server
        tenant: dict[str, Any] = dict(
            provision_demo(server.store, settings, server.ids).to_json("")
        )
        agents = self._agents(server, tenant)
        ports = await server.start()
        url = server_url(settings, ports)
        self._report(f"platform up: REST {url}  SIP udp/tcp :{ports.sip}  tls :{ports.sip_tls}")
        sip = SipServer("127.0.0.1", ports.sip, ports.sip_tls, settings.sip.domain)
        stop = asyncio.Event()
        try:
            async with RestClient(url, tenant["client_id"], tenant["client_secret"]) as rest:
                await rest.login_jwt(_extension(tenant, "101")["jwt"])
                config = MonitorConfig(
                    record_dir=data_dir / "recordings", drain_timeout=DRAIN_TIMEOUT
                )
                if self._monitor_codecs is not None:  # the softphone's own order, not the offer's
                    config.codecs, config.offer_order = self._monitor_codecs, False
                monitor = Monitor(rest, config)
                started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                async with asyncio.TaskGroup() as group:
                    group.create_task(monitor.run(stop))
                    group.create_task(self._watch(monitor, started))  # ends with the monitor
                    await asyncio.wait_for(started, 30)
                    await self._place_calls(sip, agents)
                    await self._settle()
                    stop.set()
                self.monitor_stats = monitor.stats()
        finally:
            await server.stop()
            server.store.close()
        return DemoResult(list(self._results.values()), self._problems)

    def _agents(self, server: CallwatchServer, tenant: dict[str, Any]) -> list[dict[str, Any]]:
        """Agent devices for the calls: 108 first (the seed's agent), then 102, then extras."""
        agents = [
            {"number": n, "device": _extension(tenant, n)["devices"][0]} for n in ("108", "102")
        ]
        extra = max(0, self._calls - len(agents))
        if extra:
            load = provision_load_tenant(server.store, agents=extra)
            agents += [
                {
                    "number": a.extension_number,
                    "device": {
                        "sip_username": a.device.sip_username,
                        "sip_password": a.device.sip_password,
                        "authorization_id": a.device.id,
                    },
                }
                for a in load.agents
            ]
        return agents[: self._calls]

    async def _place_calls(self, sip: SipServer, agents: list[dict[str, Any]]) -> None:
        names = conversations()
        async with asyncio.TaskGroup() as group:
            for index, agent in enumerate(agents):
                group.create_task(self._call(sip, agent, names[index % len(names)], index))

    async def _call(self, sip: SipServer, agent: dict[str, Any], name: str, index: int) -> None:
        conversation = load_conversation(name)
        result = CallResult(agent=agent["number"], conversation=name, codec=self._codec)
        cut = conversation.duration
        if self._seconds is not None:  # end at a turn boundary: nothing is cut mid-sentence
            ends = [t.end for t in conversation.turns if t.end <= self._seconds]
            cut = (max(ends) if ends else self._seconds) + 0.3
        result.said = {
            s: " ".join(t.text for t in conversation.speaker_turns(s) if t.end <= cut)
            for s in ("customer", "agent")
        }
        self._results[f"call-{index}"] = result

        phone = SimAgent(sip, agent["device"], answer_after=0.5, codec=self._codec)
        customer = SimCustomer(sip, number=CUSTOMERS[index % len(CUSTOMERS)], codec=self._codec)
        await phone.start()
        try:
            self._report(
                f"customer {CUSTOMERS[index % len(CUSTOMERS)]} calls agent "
                f"{agent['number']} ({name}, {self._codec})"
            )
            start = time.monotonic()
            call = await customer.call(agent["number"])
            answered = await phone.next_call()
            await self._supervision(agent["number"])
            samples = int(cut * conversation.sample_rate)
            sent = await converse(
                call,
                answered,
                conversation.pcm("customer")[:samples],
                conversation.pcm("agent")[:samples],
            )
            result.sent = {"customer": sent[0], "agent": sent[1]}
            await asyncio.sleep(0.3)
            await self._snapshot_forks(result)
            result.received = {
                "customer": len(answered.rtp.received),
                "agent": len(call.rtp.received),
            }
            await call.hangup()
            result.duration = time.monotonic() - start
        finally:
            await customer.close()
            await phone.close()

    async def _supervision(self, agent: str) -> None:
        """Wait until the monitor supervises the agent's call (both forks exist), then for the
        device's streams to latch; on timeout the call goes on and a problem is reported."""
        supervised = self._supervised.setdefault(agent, asyncio.Event())
        try:
            await asyncio.wait_for(supervised.wait(), SUPERVISE_TIMEOUT)
        except TimeoutError:
            self._problems.append(f"agent {agent}: not supervised in {SUPERVISE_TIMEOUT:.0f} s")
        await asyncio.sleep(LATCH_DELAY)

    async def _snapshot_forks(self, result: CallResult) -> None:
        """What the relay sent to the supervisor, per monitored party (before the call ends),
        and in which codec. The relay forks zero-copy only when the device answered with the
        party's own codec; otherwise a transcoding mix sends the codec the device answered."""
        assert self._server is not None
        engine = self._server.media_engine
        call = self._server.b2bua.calls.get(result.session_id)
        if call is None:
            return
        for supervisor in call.supervisors:
            for stream, endpoint in zip(supervisor.monitored, supervisor.streams, strict=True):
                stats = await engine.stats(endpoint.stream_id)
                result.forked[stream.party_id] = stats.packets_out
                party_codec = f"{stream.codec.encoding.upper()}/{stream.codec.clock_rate}"
                role = result.roles.get(stream.party_id, stream.party_id)
                try:
                    mix = await engine.mix_stats(endpoint.stream_id)
                except MediaError:  # no mix sends out of it: a zero-copy fork feeds it
                    result.forks[role] = f"{party_codec} zero-copy"
                else:
                    sent = f"{mix.output.encoding.upper()}/{mix.output.clock_rate}"
                    result.forks[role] = f"{party_codec} → {sent} transcoded"
                    result.mixes[role] = mix

    async def _settle(self, limit: float = 60.0) -> None:
        """Wait until every call's recording is closed (at most ``limit`` seconds). The last
        transcript lines come while the monitor stops: it lets its transcriber finish."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and self._finished.qsize() < len(self._results):
            await asyncio.sleep(0.1)

    async def _watch(self, monitor: Monitor, started: asyncio.Future[None]) -> None:
        async for event in monitor.events():
            self._on_event(event)
            if isinstance(event, Started) and not started.done():
                started.set_result(None)

    def _on_event(self, event: MonitorEvent) -> None:
        if isinstance(event, Started):
            self._report(
                f"monitor: agents {', '.join(event.agents)}; softphone device "
                f"{event.device_id} registered; subscribed"
            )
        elif isinstance(event, Supervising):
            self._report(
                f"supervise {event.session_id} (agent {event.agent}): "
                f"{len(set(event.parties))} streams in {event.request_seconds * 1000:.0f} ms"
            )
            self._result_for(event.session_id, event.agent)
            result = self._by_session().get(event.session_id)
            if result is not None:
                customer, agent = event.parties
                result.roles.update({customer: "customer", agent: "agent"})
            self._supervised.setdefault(event.agent, asyncio.Event()).set()
        elif isinstance(event, FirstAudio):
            result = self._by_session().get(event.session_id)
            if result is not None:
                result.first_audio = event.seconds
            self._report(f"first audio {event.session_id}: {event.seconds * 1000:.0f} ms")
        elif isinstance(event, Line) and event.segment.final:
            result = self._by_session().get(event.session_id)
            if result is not None:
                result.heard[event.role].append(event.segment.text)
                result.latencies.append(event.segment.latency)
            self._report(f"  {event.role:>8}: {escape(event.segment.text)}")
        elif isinstance(event, Finished):
            result = self._by_session().get(event.session_id)
            if result is not None:
                result.wav, result.transcript = event.wav, event.transcript
                result.delivered = dict(event.packets)
                result.streams = {result.roles.get(p, p): s for p, s in event.streams.items()}
            self._finished.put_nowait(event.session_id)
            self._report(f"recorded {event.wav}")
        elif isinstance(event, Problem):
            self._problems.append(event.message)
            self._report(f"problem: {event.message}")

    def _result_for(self, session_id: str, agent: str) -> None:
        for result in self._results.values():
            if result.agent == agent and not result.session_id:
                result.session_id = session_id
                return
        pending = CallResult(agent=agent, conversation="", codec=self._codec, session_id=session_id)
        self._results[f"session-{session_id}"] = pending

    def _by_session(self) -> dict[str, CallResult]:
        return {r.session_id: r for r in self._results.values() if r.session_id}


def _extension(tenant: dict[str, Any], number: str) -> dict[str, Any]:
    return next(e for e in tenant["extensions"] if e["extension_number"] == number)
