"""Supervise request → first audio packet at the supervisor's device, end to end on loopback.

A ``callwatch serve`` process; in this process a customer, an agent and the supervisor's device
(callwatch's own user agents). For each of ``CALLS`` calls the parties talk (paced 20 ms RTP),
the supervisor POSTs ``supervise`` and the clock runs until the first RTP packet reaches the
device: REST, permission checks, the INVITE, the device's answer and the fork, all included.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx

from bench.common import Row
from bench.server import ServerProcess
from callwatch.client import UserAgent
from callwatch.sip.events import Address

CALLS = 30
TALK = [bytes([0xD5]) * 160] * 250  # 5 s of PCMU per party, longer than one measurement


def _ext(tenant: dict[str, Any], number: str) -> dict[str, Any]:
    return next(e for e in tenant["extensions"] if e["extension_number"] == number)


async def _phone(server: ServerProcess, device: dict[str, Any], **policy: Any) -> UserAgent:
    ua = UserAgent(username=device["sip_username"], **policy)
    await ua.start()
    await ua.register(
        Address("UDP", "127.0.0.1", server.ports["sip"]),
        username=device["sip_username"],
        auth_username=device["authorization_id"],
        password=device["sip_password"],
        domain="sip.callwatch.local",
    )
    return ua


async def _token(client: httpx.AsyncClient, tenant: dict[str, Any]) -> str:
    response = await client.post(
        "/restapi/oauth/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": _ext(tenant, "101")["jwt"],
        },
        auth=(tenant["client_id"], tenant["client_secret"]),
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


async def _one(
    server: ServerProcess,
    client: httpx.AsyncClient,
    token: str,
    agent: UserAgent,
    supervisor: UserAgent,
    device_id: str,
) -> float:
    customer = UserAgent(username="+14155550123")
    await customer.start()
    try:
        call = await customer.call(
            "sip:108@sip.callwatch.local", Address("UDP", "127.0.0.1", server.ports["sip"])
        )
        agent_call = await agent.next_call()
        await agent_call.confirmed()
        talking = [asyncio.create_task(c.send_payloads(TALK)) for c in (call, agent_call)]
        sessions = (
            await client.get(
                "/restapi/v1.0/account/~/extension/"
                f"{_ext(server.tenant, '108')['extension_id']}/presence"
                "?detailedTelephonyState=true",
                headers={"Authorization": f"bearer {token}"},
            )
        ).json()
        session_id = sessions["activeCalls"][0]["telephonySessionId"]
        start = time.perf_counter()
        response = await client.post(
            f"/restapi/v1.0/account/~/telephony/sessions/{session_id}/supervise",
            json={"mode": "Listen", "agentExtensionNumber": "108", "supervisorDeviceId": device_id},
            headers={"Authorization": f"bearer {token}"},
        )
        response.raise_for_status()
        sup_call = await supervisor.next_call()
        waits = [asyncio.create_task(s.wait_received(1)) for s in sup_call.media.sessions]
        await asyncio.wait(waits, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        elapsed = time.perf_counter() - start
        for task in waits:
            task.cancel()
        for task in talking:
            task.cancel()
        await call.hangup()
        await asyncio.wait_for(sup_call.ended(), 5)
        return elapsed
    finally:
        await customer.close()


async def _measure(server: ServerProcess) -> list[float]:
    tenant = server.tenant
    agent = await _phone(server, _ext(tenant, "108")["devices"][0], auto_answer_after=0.0)
    device = _ext(tenant, "101")["devices"][0]
    supervisor = await _phone(server, device, auto_answer_after=0.0)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{server.ports['http']}", timeout=10
    ) as client:
        token = await _token(client, tenant)
        try:
            return [
                await _one(server, client, token, agent, supervisor, device["id"])
                for _ in range(CALLS)
            ]
        finally:
            await agent.close()
            await supervisor.close()


def run() -> list[Row]:
    """p50 and p99 of supervise → first audio packet at the device."""
    limits = '{"Light": 100000, "Medium": 100000, "Heavy": 100000, "Auth": 100000}'
    with ServerProcess(env={"CALLWATCH_API__RATE_LIMITS": limits}) as server:
        samples = sorted(asyncio.run(_measure(server)))
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    note = f"{len(samples)} calls, REST → INVITE → answer → fork → first RTP"
    return [
        Row(
            "supervise → first audio at the device, p50",
            statistics.median(samples) * 1000,
            "ms",
            note,
        ),
        Row("supervise → first audio at the device, p99", p99 * 1000, "ms", note),
    ]
