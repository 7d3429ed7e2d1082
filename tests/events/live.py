"""A real callwatch REST + WebSocket server in the test's own event loop, with notifications.

Unlike ``tests/api/conftest.py`` (uvicorn in a thread, no WebSocket), this runs uvicorn as a
task on the running loop together with a started :class:`NotificationService`, so a test can
publish domain events on the bus and receive them over real HTTP and WebSocket sockets.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import websockets

from callwatch.api import SipEndpointInfo, create_app
from callwatch.clock import FakeClock
from callwatch.config import ApiSettings, Settings
from callwatch.events.bus import InProcessBus
from callwatch.events.egress import Resolver
from callwatch.events.service import NotificationService
from callwatch.events.settings import EventsSettings
from callwatch.ids import IdGenerator
from callwatch.pbx.events import DomainEvent
from callwatch.store import SqliteStore
from callwatch.store.provisioning import DemoTenant, provision_demo_tenant
from callwatch.store.repo import Extension

from .calls import CallScript

GENEROUS = {"Light": 10_000, "Medium": 10_000, "Heavy": 10_000, "Auth": 10_000}
FAST = EventsSettings(
    webhook_validation_timeout=0.5,
    webhook_timeout=0.5,
    webhook_retry_base=0.01,
    webhook_retry_max=0.05,
)
"""Events settings scaled for tests (the same rules, shorter times)."""


@dataclass
class Live:
    """A running server and the handles tests steer it with."""

    url: str
    tenant: DemoTenant
    store: SqliteStore
    clock: FakeClock
    bus: InProcessBus[DomainEvent]
    notifications: NotificationService
    client: httpx.AsyncClient
    calls: CallScript
    tokens: dict[str, str] = field(default_factory=dict)
    """One OAuth session per extension (WebSocket recovery must come from the same one)."""

    def extension(self, number: str) -> Extension:
        return self.tenant.user(number).extension

    async def token(self, number: str = "101") -> str:
        response = await self.client.post(
            "/restapi/oauth/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": self.tenant.user(number).jwt,
            },
            auth=(self.tenant.client_id, self.tenant.client_secret),
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    async def auth(self, number: str = "101") -> dict[str, str]:
        if number not in self.tokens:
            self.tokens[number] = await self.token(number)
        return {"Authorization": f"bearer {self.tokens[number]}"}

    async def ws_url(self, number: str = "101", *, wsc: str | None = None) -> str:
        """A fresh gateway URL (``uri?access_token=…[&wsc=…]``)."""
        response = await self.client.post(
            "/restapi/oauth/wstoken",
            headers={**(await self.auth(number)), "Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        url = f"{body['uri']}?access_token={body['ws_access_token']}"
        return url if wsc is None else f"{url}&wsc={wsc}"


@asynccontextmanager
async def live_server(
    template_db: Path,
    tmp_path: Path,
    *,
    events: EventsSettings = FAST,
    name: str = "live",
    public_url: str | None = None,
    resolver: Resolver | None = None,
) -> AsyncIterator[Live]:
    """Start a server on a copy of the demo tenant's database; stop it on exit.

    ``resolver`` resolves WebHook host names instead of the system (names only a test knows).
    """
    db = tmp_path / f"{name}.db"
    if not db.exists():
        shutil.copy(template_db, db)
    store = SqliteStore(db)
    tenant = provision_demo_tenant(store, sip_domain="sip.test.callwatch", ids=IdGenerator())
    api = ApiSettings(rate_limits=GENEROUS, public_url=public_url)
    settings = Settings(data_dir=tmp_path, api=api, events=events)
    clock, ids = FakeClock(), IdGenerator()
    bus: InProcessBus[DomainEvent] = InProcessBus()
    service = NotificationService(
        bus=bus, store=store, clock=clock, ids=ids, settings=events, resolver=resolver
    )
    sip = SipEndpointInfo(
        domain="sip.test.callwatch", host="127.0.0.1", udp_port=5060, tcp_port=5060, tls_port=5061
    )
    app = create_app(
        store=store, settings=settings, clock=clock, ids=ids, sip=sip,
        device_status=_NoDevices(), notifications=service,
    )  # fmt: skip
    await service.start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", access_log=False, ws_ping_interval=None
    )
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.005)
    host, port = sock.getsockname()[:2]
    url = f"http://{host}:{port}"
    client = httpx.AsyncClient(base_url=url, timeout=10.0)
    try:
        yield Live(url, tenant, store, clock, bus, service, client, CallScript(bus.publish, clock))
    finally:
        await client.aclose()
        server.should_exit = True
        await task
        sock.close()
        await service.stop()
        store.close()


class _NoDevices:
    def is_online(self, device_id: str) -> bool:
        return False


class Socket:
    """A gateway client over ``websockets``: JSON frames in and out, with a receive timeout."""

    def __init__(self, connection: websockets.ClientConnection) -> None:
        self.connection = connection

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str) -> AsyncIterator[Socket]:
        async with websockets.connect(url) as connection:
            yield cls(connection)

    async def send(self, frame: Any) -> None:
        await self.connection.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def receive(self, timeout: float = 5.0) -> list[Any]:
        async with asyncio.timeout(timeout):
            text = await self.connection.recv()
        assert isinstance(text, str)
        frame = json.loads(text)
        assert isinstance(frame, list) and frame and isinstance(frame[0], dict), text
        return frame

    async def request(
        self, method: str, path: str, body: Any = None, message_id: str = "m-1"
    ) -> list[Any]:
        """Send a ClientRequest and return the reply (skipping notifications)."""
        meta = {"type": "ClientRequest", "messageId": message_id, "method": method, "path": path}
        await self.send([meta] if body is None else [meta, body])
        while True:
            frame = await self.receive()
            if frame[0]["type"] != "ServerNotification":
                return frame
