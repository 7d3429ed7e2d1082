"""REGISTER transactions per second, end to end over UDP against a ``callwatch serve`` process.

Each registration is two transactions: REGISTER → 401 (challenge), REGISTER with digest
credentials → 200. ``CONCURRENCY`` clients keep one request each in flight.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from bench.common import Row
from bench.server import ServerProcess
from callwatch.sip.auth import DigestChallenge, build_credentials
from callwatch.sip.message import Response, parse_message

CONCURRENCY = 20
DURATION = 4.0


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[Response]] = {}

    def datagram_received(self, data: bytes, addr: Any) -> None:
        message = parse_message(data)
        if isinstance(message, Response):
            future = self.waiting.pop(message.top_via.branch or "", None)
            if future is not None and not future.done():
                future.set_result(message)


def _register(device: dict[str, str], local: tuple[str, int], n: int, auth: str | None) -> bytes:
    user = device["sip_username"]
    lines = [
        "REGISTER sip:sip.callwatch.local SIP/2.0",
        f"Via: SIP/2.0/UDP {local[0]}:{local[1]};rport;branch=z9hG4bKbench{n}",
        "Max-Forwards: 70",
        f"From: <sip:{user}@sip.callwatch.local>;tag=b{n}",
        f"To: <sip:{user}@sip.callwatch.local>",
        f"Call-ID: bench-{user}",
        f"CSeq: {n} REGISTER",
        f"Contact: <sip:{user}@{local[0]}:{local[1]}>",
        "Expires: 600",
    ]
    if auth:
        lines.append(f"Authorization: {auth}")
    return ("\r\n".join([*lines, "Content-Length: 0", "", ""])).encode()


async def _worker(
    proto: _Client,
    transport: asyncio.DatagramTransport,
    device: dict[str, str],
    counter: itertools.count[int],
    deadline: float,
    done: list[int],
) -> None:
    local = transport.get_extra_info("sockname")
    loop = asyncio.get_running_loop()
    while loop.time() < deadline:
        auth = None
        for _ in range(2):
            n = next(counter)
            future: asyncio.Future[Response] = loop.create_future()
            proto.waiting[f"z9hG4bKbench{n}"] = future
            transport.sendto(_register(device, local, n, auth))
            response = await asyncio.wait_for(future, 5)
            done[0] += 1
            if response.status == 401:
                challenge = DigestChallenge.parse(response.headers.get("www-authenticate") or "")
                auth = build_credentials(
                    challenge,
                    method="REGISTER",
                    uri="sip:sip.callwatch.local",
                    username=device["authorization_id"],
                    password=device["sip_password"],
                    cnonce=f"c{n}",
                ).serialize()
            elif response.status != 200:
                raise RuntimeError(f"unexpected {response.status}")


async def _measure(server: ServerProcess) -> tuple[float, float]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        _Client, local_addr=("127.0.0.1", 0), remote_addr=("127.0.0.1", server.ports["sip"])
    )
    devices = [d for e in server.tenant["extensions"] for d in e["devices"]]
    counter = itertools.count(1)
    done = [0]
    cpu0, start = server.cpu_seconds(), time.perf_counter()
    deadline = loop.time() + DURATION
    await asyncio.gather(
        *(
            _worker(proto, transport, devices[i % len(devices)], counter, deadline, done)
            for i in range(CONCURRENCY)
        )
    )
    elapsed, cpu = time.perf_counter() - start, server.cpu_seconds() - cpu0
    transport.close()
    return done[0] / elapsed, cpu / elapsed


def run() -> list[Row]:
    """End-to-end REGISTER transaction rate and the server's CPU share while sustaining it."""
    with ServerProcess() as server:
        rate, cpu_share = asyncio.run(_measure(server))
    return [
        Row(
            "REGISTER transactions, UDP end to end (401 + 200 with digest)",
            rate,
            "tx/s",
            f"server CPU {cpu_share:.0%}, {CONCURRENCY} clients in flight",
        ),
        Row(
            "REGISTER transactions per server core-second",
            rate / max(cpu_share, 1e-9),
            "tx/core-s",
            "rate / server CPU share",
        ),
    ]
