"""``callwatch demo``: the whole system on one machine, the seed's scenario end to end.

The embedded platform starts (SQLite, in-process bus, built-in relay, loopback, ports chosen by
the OS) with the demo tenant; the supervisor's app (:class:`~callwatch.client.monitor.Monitor`,
logged in as extension 101 through the REST API like any RingCentral app) subscribes to its
agents and registers its softphone; simulated customers call the agents through the trunk and
both sides speak a shipped conversation. The monitor supervises each answered call, records it
and transcribes it; at the end a summary compares what was heard with what was said.

Everything travels the real path: SIP over sockets, RTP through the relay and the forks, audio
decoded by the monitor's softphone.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
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
from callwatch.client.wer import word_errors
from callwatch.config import ApiSettings, Settings, SipSettings
from callwatch.sim.agents import SimAgent, SimCustomer, SipServer, converse
from callwatch.sim.load_tenant import provision_load_tenant
from callwatch.sim.speech import conversations, load_conversation

DEMO_LIMITS = {"Light": 100_000, "Medium": 100_000, "Heavy": 100_000, "Auth": 100_000}
"""The demo drives many requests from one user; RingCentral's per-minute limits would stop it."""
CUSTOMERS = ("+14155550123", "+14155550124", "+14155550125", "+14155550126")


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
    """One demo run (see the module docstring)."""

    def __init__(
        self,
        *,
        calls: int = 1,
        data_dir: Path | None = None,
        codec: str = "PCMU",
        report: Reporter = print,
        seconds: float | None = None,
    ) -> None:
        self._calls = calls
        self._data_dir = data_dir
        self._codec = codec
        self._report = report
        self._seconds = seconds
        self._server: CallwatchServer | None = None
        self._results: dict[str, CallResult] = {}
        self._problems: list[str] = []
        self._finished: asyncio.Queue[str] = asyncio.Queue()

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
                monitor = Monitor(rest, MonitorConfig(record_dir=data_dir / "recordings"))
                started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                async with asyncio.TaskGroup() as group:
                    group.create_task(monitor.run(stop))
                    watcher = group.create_task(self._watch(monitor, started))
                    await asyncio.wait_for(started, 30)
                    await self._place_calls(sip, agents)
                    await self._settle()
                    stop.set()
                    watcher.cancel()
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
            await asyncio.sleep(1.0)  # let the supervisor join before the first words
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

    async def _snapshot_forks(self, result: CallResult) -> None:
        """What the relay sent to the supervisor, per monitored party (before the call ends)."""
        assert self._server is not None
        call = self._server.b2bua.calls.get(result.session_id)
        if call is None:
            return
        for supervisor in call.supervisors:
            for stream, endpoint in zip(supervisor.monitored, supervisor.streams, strict=True):
                stats = await self._server.media_engine.stats(endpoint.stream_id)
                result.forked[stream.party_id] = stats.packets_out

    async def _settle(self, quiet: float = 3.0, limit: float = 30.0) -> None:
        """Wait for recordings to close and the last transcript lines (no new line for
        ``quiet`` seconds, at most ``limit``)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            before = self._lines
            await asyncio.sleep(quiet)
            done = self._finished.qsize() >= len(self._results)
            if done and self._lines == before:
                return

    _lines = 0

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
        elif isinstance(event, FirstAudio):
            result = self._by_session().get(event.session_id)
            if result is not None:
                result.first_audio = event.seconds
            self._report(f"first audio {event.session_id}: {event.seconds * 1000:.0f} ms")
        elif isinstance(event, Line) and event.segment.final:
            self._lines += 1
            result = self._by_session().get(event.session_id)
            if result is not None:
                result.heard[event.role].append(event.segment.text)
            self._report(f"  {event.role:>8}: {escape(event.segment.text)}")
        elif isinstance(event, Finished):
            result = self._by_session().get(event.session_id)
            if result is not None:
                result.wav, result.transcript = event.wav, event.transcript
                result.delivered = dict(event.packets)
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
