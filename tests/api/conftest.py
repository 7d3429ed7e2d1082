"""A real callwatch REST server on 127.0.0.1 (port 0) per test, with the demo tenant.

The database is provisioned once per session into a template file and copied for each server,
so every test starts from the same tenant without paying for password hashing again.
"""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from callwatch.api import SipEndpointInfo, create_app
from callwatch.clock import FakeClock
from callwatch.config import ApiSettings, Settings
from callwatch.ids import IdGenerator
from callwatch.pbx.control import CallControl
from callwatch.store import SqliteStore
from callwatch.store.provisioning import DemoTenant, provision_demo_tenant

SIP_DOMAIN = "sip.test.callwatch"
GENEROUS_LIMITS = {"Light": 10_000, "Medium": 10_000, "Heavy": 10_000, "Auth": 10_000}


class FakeDeviceStatus:
    """Stands in for the SIP registrar: tests flip devices Online/Offline by hand."""

    def __init__(self) -> None:
        self.online: set[str] = set()
        self.broken = False

    def is_online(self, device_id: str) -> bool:
        if self.broken:
            raise RuntimeError("registrar exploded: secret internal detail")
        return device_id in self.online


class _ServerThread:
    """uvicorn serving ``app`` from a background thread on a pre-bound loopback socket."""

    def __init__(self, app: FastAPI) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Accepted sockets inherit TCP_NODELAY; without it each response waits ~40 ms for
        # the client's delayed ACK (Nagle), because headers and body are separate writes.
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", ws="none", loop="asyncio", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


@dataclass
class LiveServer:
    """A running server and the handles tests use to steer it."""

    url: str
    tenant: DemoTenant
    store: SqliteStore
    clock: FakeClock
    devices: FakeDeviceStatus
    sip: SipEndpointInfo
    settings: Settings
    _clients: list[httpx.Client] = field(default_factory=list)

    def client(self) -> httpx.Client:
        """The server's HTTP client (one per server: building an httpx.Client is slow)."""
        if not self._clients:
            self._clients.append(httpx.Client(base_url=self.url, timeout=10.0))
        return self._clients[0]

    def token(self, number: str = "101") -> dict[str, object]:
        """A token response for demo extension ``number`` (JWT grant)."""
        response = self.client().post(
            "/restapi/oauth/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": self.tenant.user(number).jwt,
            },
            auth=(self.tenant.client_id, self.tenant.client_secret),
        )
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    def auth(self, number: str = "101") -> dict[str, str]:
        """``Authorization`` header for demo extension ``number``."""
        return {"Authorization": f"bearer {self.token(number)['access_token']}"}

    def close_clients(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "callwatch.db"
    store = SqliteStore(path)
    provision_demo_tenant(store, sip_domain=SIP_DOMAIN, ids=IdGenerator(7))
    store.close()
    return path


StartServer = Callable[..., LiveServer]


@pytest.fixture
def start_server(template_db: Path, tmp_path: Path) -> Iterator[StartServer]:
    running: list[tuple[_ServerThread, LiveServer]] = []

    def start(
        *, ws_port: int | None = 5065, calls: CallControl | None = None, **api: object
    ) -> LiveServer:
        db = tmp_path / f"callwatch-{len(running)}.db"
        shutil.copy(template_db, db)
        store = SqliteStore(db)
        tenant = provision_demo_tenant(store, sip_domain=SIP_DOMAIN, ids=IdGenerator())
        settings = Settings(
            data_dir=tmp_path, api=ApiSettings(**{"rate_limits": GENEROUS_LIMITS, **api})
        )
        clock = FakeClock()
        devices = FakeDeviceStatus()
        sip = SipEndpointInfo(
            domain=SIP_DOMAIN,
            host="127.0.0.1",
            udp_port=5060,
            tcp_port=5062,
            tls_port=5061,
            ws_port=ws_port,
        )
        app = create_app(
            store=store, settings=settings, clock=clock, ids=IdGenerator(), sip=sip,
            device_status=devices, calls=calls,
        )  # fmt: skip
        thread = _ServerThread(app)
        thread.start()
        live = LiveServer(thread.url, tenant, store, clock, devices, sip, settings)
        running.append((thread, live))
        return live

    yield start
    for thread, live in running:
        live.close_clients()
        thread.stop()
        live.store.close()


@pytest.fixture
def server(start_server: StartServer) -> LiveServer:
    return start_server()
