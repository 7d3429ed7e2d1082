"""A real callwatch server on loopback (ports chosen by the OS) with the demo tenant."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from callwatch.app import CallwatchServer, Ports, provision_demo, server_url
from callwatch.client import UserAgent
from callwatch.config import ApiSettings, MediaSettings, Settings, SipSettings
from callwatch.sip.events import Address

SIPP_DIR = Path(__file__).parent / "sipp"
TIMEOUT = 10.0


@dataclass
class RunningServer:
    """A started server and what a client needs to reach it."""

    server: CallwatchServer
    ports: Ports
    tenant: dict[str, Any]
    url: str

    def extension(self, number: str) -> dict[str, Any]:
        return next(e for e in self.tenant["extensions"] if e["extension_number"] == number)

    async def token(self, number: str = "101") -> str:
        ext = self.extension(number)
        async with httpx.AsyncClient(base_url=self.url) as client:
            response = await client.post(
                "/restapi/oauth/token",
                data={
                    "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                    "assertion": ext["jwt"],
                },
                auth=(self.tenant["client_id"], self.tenant["client_secret"]),
            )
        response.raise_for_status()
        return str(response.json()["access_token"])

    async def device_status(self, device_id: str, token: str) -> str:
        async with httpx.AsyncClient(base_url=self.url) as client:
            response = await client.get(
                f"/restapi/v1.0/account/~/device/{device_id}",
                headers={"Authorization": f"bearer {token}"},
            )
        response.raise_for_status()
        return str(response.json()["status"])


def make_settings(data_dir: Path, **sip: Any) -> Settings:
    return Settings(
        data_dir=data_dir,
        host="127.0.0.1",
        sip=SipSettings(port=0, tls_port=0, **sip),
        media=MediaSettings(port_min=40000, port_max=49999),
        api=ApiSettings(
            port=0, rate_limits={"Light": 10000, "Medium": 10000, "Heavy": 10000, "Auth": 10000}
        ),
    )


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    settings = make_settings(tmp_path, min_expires=1)
    srv = CallwatchServer(settings)
    tenant = provision_demo(srv.store, settings, srv.ids)
    ports = await srv.start()
    url = server_url(settings, ports)
    try:
        yield RunningServer(srv, ports, tenant.to_json(url), url)
    finally:
        await srv.stop()
        srv.store.close()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = TIMEOUT) -> bool:
    """Poll ``check`` until it is true or ``timeout`` passes (for state seen from outside)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.05)
    return await check()


def free_port() -> int:
    """A port free on loopback for both UDP and TCP right now."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


requires_sipp = pytest.mark.skipif(
    shutil.which("sipp") is None, reason="SIPp (Debian sip-tester) is not installed"
)


async def run_sipp(scenario: str, target: str, *args: str) -> tuple[int, str]:
    """Run one SIPp scenario to completion; return (exit code, output)."""
    proc = await asyncio.create_subprocess_exec(
        "sipp",
        target,
        "-sf",
        str(SIPP_DIR / scenario),
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-m",
        "1",
        "-nostdin",
        "-timeout",
        "15",
        "-timeout_error",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return int(proc.returncode or 0), out.decode(errors="replace")


async def register_device(
    server: RunningServer, device: dict[str, Any], **policy: Any
) -> UserAgent:
    """A user agent registered over UDP as ``device`` of the demo tenant (``policy``: the
    UserAgent's options, e.g. ``auto_answer_after=0.0``)."""
    ua = UserAgent(username=device["sip_username"], **policy)
    await ua.start()
    await ua.register(
        Address("UDP", "127.0.0.1", server.ports.sip),
        username=device["sip_username"],
        auth_username=device["authorization_id"],
        password=device["sip_password"],
        domain="sip.callwatch.local",
    )
    return ua
