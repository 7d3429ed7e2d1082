"""Notification fan-out and publish → delivery latency, over real loopback sockets.

The server is the real composition root (``CallwatchServer``) on uvloop in this process, and
the publisher runs on its loop, as the pbx does: events go to ``server.bus.publish``. The
subscribers run in a spawned child process so their work does not take the server's core:
N WebSocket clients (``websockets``, each subscribed over the gateway to one agent's telephony
sessions) and M WebHook receivers (``asyncio`` streams speaking minimal HTTP). Events are real
``pbx.sessions`` transitions (a party's mute flag toggled), so each has its own ``sequence``;
``time.monotonic`` is system-wide, so the server's publish stamps and the child's receive stamps
compare directly.

(a) fan-out: K events published back to back to N = 100 WebSocket subscribers; deliveries/s =
    N·K / (last receive − first publish), events/s = K / the same time; drops are reported, and
    deliveries per server core-second (the server process's CPU time over the same window) —
    on a 2-core machine the subscribers' process is the bottleneck of the wall-clock figure.
(b) WebSocket latency: one event every 10 ms to the same 100 subscribers; p50/p99 of receive −
    publish over every delivery.
(c) WebHook latency: M = 10 subscriptions with loopback receivers, one event every 20 ms
    (500 POSTs/s, below saturation); p50/p99 as in (b).
(d) WebHook throughput: K' events back to back to the same M receivers; POSTs/s until the last
    arrives (each subscription's worker sends one request at a time, in order).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import re
import resource
import tempfile
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvloop
import websockets

from bench.common import Row
from callwatch.app import CallwatchServer, provision_demo, server_url
from callwatch.config import ApiSettings, Settings, SipSettings
from callwatch.events.settings import EventsSettings
from callwatch.pbx.events import PartyStatusChanged
from callwatch.pbx.sessions import (
    Direction,
    Endpoint,
    PartyRole,
    TelephonySession,
    add_party,
    new_session,
    update_party,
)
from callwatch.store.repo import Extension

SUBSCRIBERS = 100
HOOKS = 10
FAN_OUT_EVENTS = 1000
WEBHOOK_BURST = 300
LATENCY_EVENTS = 200
WS_INTERVAL = 0.010
WEBHOOK_INTERVAL = 0.020
TIMEOUT = 20.0
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
GENEROUS = {"Light": 100_000, "Medium": 100_000, "Heavy": 100_000, "Auth": 100_000}
_SEQUENCE = re.compile(rb'"body":\{"sequence":(\d+)')


def run() -> list[Row]:
    """Fan-out rate to 100 WebSocket subscribers; WebSocket and WebHook delivery latency."""
    context = mp.get_context("spawn")
    parent, child = context.Pipe()
    clients = context.Process(target=_client_process, args=(child,), daemon=True)
    clients.start()
    try:
        with tempfile.TemporaryDirectory(prefix="callwatch-bench-") as data_dir:
            return uvloop.run(_server_main(parent, Path(data_dir)))
    finally:
        parent.send(("stop",))
        clients.join(10)


# -- server side ---------------------------------------------------------------------------


async def _server_main(clients: Connection, data_dir: Path) -> list[Row]:
    settings = Settings(
        data_dir=data_dir,
        sip=SipSettings(port=0, tls_port=0),
        api=ApiSettings(port=0, rate_limits=GENEROUS),
        events=EventsSettings(max_subscriptions_per_owner=1000, ws_outbox_size=2 * FAN_OUT_EVENTS),
    )
    server = CallwatchServer(settings)
    tenant = provision_demo(server.store, settings, server.ids)
    ports = await server.start()
    try:
        url = server_url(settings, ports)
        agent = tenant.user("108").extension
        async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as http:
            auth = await _login(
                http, tenant.client_id, tenant.client_secret, tenant.user("101").jwt
            )
            urls = [await _ws_url(http, auth) for _ in range(SUBSCRIBERS)]
            await _ask_async(
                clients,
                ("ws", urls, f"/restapi/v1.0/account/~/extension/{agent.id}/telephony/sessions"),
            )
            rows = await _websocket_rows(server, clients, agent)
            rows += await _webhook_rows(server, clients, http, auth, agent)
        return rows
    finally:
        await server.stop()
        server.store.close()


async def _websocket_rows(
    server: CallwatchServer, clients: Connection, agent: Extension
) -> list[Row]:
    events = _events(agent, FAN_OUT_EVENTS, tag=1)
    cpu0 = _cpu()
    start = time.monotonic()
    for event in events:
        server.bus.publish(event)
    received = await _collect(clients, FAN_OUT_EVENTS)
    elapsed = max(t for records in received for _, t in records) - start
    cpu_seconds = _cpu() - cpu0
    cpu = cpu_seconds / elapsed
    delivered = sum(len(records) for records in received)
    dropped = server.notifications.stats().dispatch_dropped
    fan_out = Row(
        f"WebSocket fan-out, {SUBSCRIBERS} subscribers",
        delivered / elapsed,
        "notifications/s",
        f"{FAN_OUT_EVENTS / elapsed:,.0f} events/s; {delivered}/{SUBSCRIBERS * FAN_OUT_EVENTS} "
        f"delivered, {dropped} dropped; server CPU {cpu:.0%}",
    )
    per_core = Row(
        "WebSocket notifications per server core-second",
        delivered / cpu_seconds,
        "notifications/core-s",
        "match + envelope + frame + permessage-deflate + send, whole server process",
    )
    stamps, received = await _paced(server, clients, agent, tag=2, interval=WS_INTERVAL)
    latency = _latency_row(f"WebSocket, {SUBSCRIBERS} subscribers", stamps, received, WS_INTERVAL)
    return [fan_out, per_core, latency]


async def _webhook_rows(
    server: CallwatchServer,
    clients: Connection,
    http: httpx.AsyncClient,
    auth: dict[str, str],
    agent: Extension,
) -> list[Row]:
    for address in await _ask_async(clients, ("hooks", HOOKS)):
        response = await http.post(
            "/restapi/v1.0/subscription",
            headers=auth,
            json={
                "eventFilters": [
                    f"/restapi/v1.0/account/~/extension/{agent.id}/telephony/sessions"
                ],
                "deliveryMode": {"transportType": "WebHook", "address": address},
            },
        )
        response.raise_for_status()
    stamps, received = await _paced(
        server, clients, agent, tag=3, interval=WEBHOOK_INTERVAL, sink="hooks"
    )
    latency = _latency_row(f"WebHook, {HOOKS} receivers", stamps, received, WEBHOOK_INTERVAL)
    start = time.monotonic()
    for event in _events(agent, WEBHOOK_BURST, tag=4):
        server.bus.publish(event)
    received = await _collect(clients, WEBHOOK_BURST, sink="hooks")
    elapsed = max(t for records in received for _, t in records) - start
    delivered = sum(len(records) for records in received)
    throughput = Row(
        f"WebHook deliveries, {HOOKS} receivers, back to back",
        delivered / elapsed,
        "POST/s",
        f"{delivered}/{HOOKS * WEBHOOK_BURST} delivered in {elapsed:.1f} s",
    )
    return [latency, throughput]


async def _paced(
    server: CallwatchServer,
    clients: Connection,
    agent: Extension,
    *,
    tag: int,
    interval: float,
    sink: str = "ws",
) -> tuple[dict[int, float], list[list[tuple[int, float]]]]:
    stamps: dict[int, float] = {}
    for event in _events(agent, LATENCY_EVENTS, tag=tag):
        stamps[event.sequence] = time.monotonic()
        server.bus.publish(event)
        await asyncio.sleep(interval)
    return stamps, await _collect(clients, LATENCY_EVENTS, sink=sink)


def _latency_row(
    what: str, stamps: dict[int, float], received: list[list[tuple[int, float]]], interval: float
) -> Row:
    latencies = np.array(
        [t - stamps[seq] for records in received for seq, t in records if seq in stamps]
    )
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    return Row(
        f"publish → delivery latency p50, {what}",
        float(p50),
        "ms",
        f"p99 {p99:.2f} ms over {len(latencies)} deliveries, one event per {interval * 1000:g} ms",
    )


async def _collect(
    clients: Connection, expected: int, sink: str = "ws"
) -> list[list[tuple[int, float]]]:
    """Ask the clients for what every subscriber received (waiting for ``expected`` each)."""
    result: list[list[tuple[int, float]]] = await _ask_async(clients, ("collect", sink, expected))
    return result


def _events(agent: Extension, count: int, *, tag: int) -> list[PartyStatusChanged]:
    session = _session(agent, tag)
    party_id = session.parties[0].id
    events: list[PartyStatusChanged] = []
    for n in range(count):
        session, event = update_party(
            session, party_id, now=session.creation_time, muted=n % 2 == 0
        )
        assert event is not None
        events.append(event)
    return events


def _session(agent: Extension, tag: int) -> TelephonySession:
    session = new_session(
        hex_id=f"{tag:032x}", session_id=str(tag), account_id=agent.account_id, now=EPOCH
    )
    end = Endpoint(extension_id=agent.id, extension_number=agent.number, name=agent.name)
    session, _, _ = add_party(
        session, role=PartyRole.CALLEE, direction=Direction.INBOUND,
        from_=Endpoint(phone_number="+15550001111"), to=end, now=EPOCH, extension_id=agent.id,
    )  # fmt: skip
    return session


async def _login(http: httpx.AsyncClient, client_id: str, secret: str, jwt: str) -> dict[str, str]:
    response = await http.post(
        "/restapi/oauth/token",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": jwt},
        auth=(client_id, secret),
    )
    response.raise_for_status()
    return {"Authorization": f"bearer {response.json()['access_token']}"}


async def _ws_url(http: httpx.AsyncClient, auth: dict[str, str]) -> str:
    response = await http.post("/restapi/oauth/wstoken", headers=auth)
    response.raise_for_status()
    body = response.json()
    return f"{body['uri']}?access_token={body['ws_access_token']}"


async def _ask_async(clients: Connection, request: tuple[Any, ...]) -> Any:
    """Ask the client process without blocking the server's loop."""
    return await asyncio.to_thread(_ask, clients, request)


def _ask(clients: Connection, request: tuple[Any, ...]) -> Any:
    clients.send(request)
    if not clients.poll(TIMEOUT + 10):
        raise RuntimeError(f"the client process did not answer {request[0]}")
    answer = clients.recv()
    if isinstance(answer, Exception):
        raise answer
    return answer


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- client side (child process) -----------------------------------------------------------


def _client_process(conn: Connection) -> None:
    uvloop.run(_Clients(conn).serve())


class _Clients:
    """Subscribers that stamp what they receive: ``records[sink][i] = [(sequence, time)]``."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._records: dict[str, list[list[tuple[int, float]]]] = {"ws": [], "hooks": []}
        self._tasks: list[asyncio.Task[None]] = []
        self._servers: list[asyncio.Server] = []

    async def serve(self) -> None:
        while True:
            request = await asyncio.to_thread(self._conn.recv)
            if request[0] == "stop":
                break
            try:
                self._conn.send(await self._handle(request))
            except Exception as exc:
                self._conn.send(RuntimeError(f"{request[0]}: {exc!r}"))
        for task in self._tasks:
            task.cancel()
        for server in self._servers:
            server.close()

    async def _handle(self, request: tuple[Any, ...]) -> Any:
        if request[0] == "ws":
            return await self._open_sockets(request[1], request[2])
        if request[0] == "hooks":
            return [await self._open_hook() for _ in range(request[1])]
        return await self._drain(request[1], request[2])

    async def _open_sockets(self, urls: list[str], event_filter: str) -> int:
        for url in urls:
            connection = await websockets.connect(url, max_queue=None)
            await connection.recv()  # ConnectionDetails
            await connection.send(
                '[{"type":"ClientRequest","messageId":"1","method":"POST",'
                f'"path":"/restapi/v1.0/subscription"}},{{"eventFilters":["{event_filter}"],'
                '"deliveryMode":{"transportType":"WebSocket"}}]'
            )
            reply = await connection.recv()
            assert '"status":200' in str(reply), reply
            records: list[tuple[int, float]] = []
            self._records["ws"].append(records)
            self._tasks.append(asyncio.create_task(_receive(connection, records)))
        return len(urls)

    async def _open_hook(self) -> str:
        records: list[tuple[int, float]] = []
        self._records["hooks"].append(records)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await _answer_http(reader, writer, records)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self._servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hook"

    async def _drain(self, sink: str, expected: int) -> list[list[tuple[int, float]]]:
        deadline = time.monotonic() + TIMEOUT
        every = self._records[sink]
        while any(len(r) < expected for r in every) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        taken = [list(r) for r in every]
        for records in every:
            records.clear()
        return taken


async def _receive(
    connection: websockets.ClientConnection, records: list[tuple[int, float]]
) -> None:
    async for message in connection:
        data = message.encode() if isinstance(message, str) else message
        match = _SEQUENCE.search(data)
        if match is not None:
            records.append((int(match.group(1)), time.monotonic()))


async def _answer_http(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, records: list[tuple[int, float]]
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
            body = await reader.readexactly(length)
            match = _SEQUENCE.search(body)
            if match is not None:
                records.append((int(match.group(1)), time.monotonic()))
            token = re.search(rb"(?i)validation-token:\s*(\S+)", head)
            echo = b"Validation-Token: " + token.group(1) + b"\r\n" if token and not body else b""
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" + echo + b"\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
