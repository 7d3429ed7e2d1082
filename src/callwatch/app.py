"""The composition root: builds store, SIP stack, pbx and REST API from Settings and runs them.

Nothing else in callwatch constructs these objects or reads Settings at large; every part gets
what it needs passed in here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

import uvicorn

from callwatch.api.app import create_app
from callwatch.api.deps import SipEndpointInfo
from callwatch.clock import Clock, SystemClock
from callwatch.config import Settings
from callwatch.events.bus import InProcessBus
from callwatch.events.service import NotificationService
from callwatch.ids import IdGenerator
from callwatch.media.aio import MediaEngine
from callwatch.media.control import RelayControl
from callwatch.pbx.b2bua import B2bua
from callwatch.pbx.events import DomainEvent, PartyStatusChanged
from callwatch.pbx.location import LocationService
from callwatch.pbx.presence import PresenceTracker
from callwatch.pbx.registrar import Registrar
from callwatch.pbx.service import PbxService
from callwatch.pbx.sessions import TelephonySession
from callwatch.sip.aio.endpoint import SipEndpoint
from callwatch.sip.aio.tls import client_context, ensure_self_signed, server_context
from callwatch.sip.events import Address
from callwatch.sip.stack import SipStack
from callwatch.sip.uri import SipUri
from callwatch.store.provisioning import DemoTenant, provision_demo_tenant
from callwatch.store.repo import Device, Store
from callwatch.store.sqlite import SqliteStore

logger = logging.getLogger(__name__)

PORTS_FILE = "ports.json"


@dataclass(frozen=True, slots=True)
class Ports:
    """Where a running server listens (``ports.json``)."""

    http: int
    sip: int
    sip_tls: int


def open_store(settings: Settings) -> SqliteStore:
    """The configured store (SQLite under the data directory by default)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteStore(settings.db_path)


def provision_demo(store: Store, settings: Settings, ids: IdGenerator) -> DemoTenant:
    """Provision (idempotently) the demo tenant."""
    return provision_demo_tenant(store, sip_domain=settings.sip.domain, ids=ids)


def read_ports(data_dir: Path) -> Ports | None:
    """The ports a server running on ``data_dir`` wrote, if any."""
    path = data_dir / PORTS_FILE
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    return Ports(http=int(raw["http"]), sip=int(raw["sip"]), sip_tls=int(raw["sip_tls"]))


def server_url(settings: Settings, ports: Ports) -> str:
    """The base URL clients use."""
    return settings.api.public_url or f"http://{_url_host(settings.host)}:{ports.http}"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class CallwatchServer:
    """Every listener of one callwatch node, started and stopped together."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        ids: IdGenerator | None = None,
        store: Store | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.ids = ids or IdGenerator()
        self.store: Store = store or open_store(settings)
        secret = self.store.secrets.get_or_create("sip-nonce-secret", lambda: self.ids.hex(32))
        self.bus: InProcessBus[DomainEvent] = InProcessBus()
        # notifications: subscriptions, WebHook delivery and the WebSocket gateway
        self.notifications = NotificationService(
            bus=self.bus, store=self.store, clock=self.clock, ids=self.ids, settings=settings.events
        )
        self.registrar = Registrar(
            store=self.store,
            location=LocationService(settings.sip.max_bindings_per_device),
            settings=settings.sip,
            secret=bytes.fromhex(secret),
            clock=self.clock,
            on_status=self._device_status_changed,
        )
        media = settings.media
        self.media_engine = MediaEngine(
            host=settings.host,
            advertised_host=media.advertised_host or settings.sip.advertised_host,
            port_min=media.port_min,
            port_max=media.port_max,
        )
        self.b2bua = B2bua(
            store=self.store,
            registrar=self.registrar,
            media=RelayControl(self.media_engine),
            ids=self.ids,
            clock=self.clock,
            domain=settings.sip.domain,
            contact=self._contact,
            ring_timeout=settings.sip.ring_timeout,
            on_session=self._on_session,
            trunk_gateway=_gateway(settings.sip.trunk_gateway),
            min_session_expires=settings.sip.min_session_expires,
        )
        self.pbx = PbxService(
            store=self.store,
            registrar=self.registrar,
            b2bua=self.b2bua,
            presence=PresenceTracker(),
            clock=self.clock,
            publish=self.bus.publish,
            media_timeout=media.inactivity_timeout,
        )
        self.sip_info = SipEndpointInfo(
            domain=settings.sip.domain,
            host=settings.sip.advertised_host or settings.host,
            udp_port=0,
            tcp_port=0,
            tls_port=0,
            ws_port=None,
        )
        self.endpoint: SipEndpoint | None = None
        self._http: uvicorn.Server | None = None
        self._http_socket: socket.socket | None = None
        self._http_task: asyncio.Task[None] | None = None
        self.ports: Ports | None = None

    async def start(self) -> Ports:
        """Bind every listener, write ``ports.json``, and return the ports."""
        await self.media_engine.start()
        sip_port, tls_port = await self._start_sip()
        await self.notifications.start()  # before HTTP: stored WebHooks resume first
        http_port = await self._start_http()
        self.ports = Ports(http=http_port, sip=sip_port, sip_tls=tls_port)
        await self.pbx.start()
        path = self.settings.data_dir / PORTS_FILE
        path.write_text(json.dumps(asdict(self.ports)) + "\n")
        return self.ports

    async def stop(self) -> None:
        """Stop every listener."""
        await self.pbx.stop()
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            await asyncio.gather(self._http_task, return_exceptions=True)
        if self._http_socket is not None:
            self._http_socket.close()
        await self.notifications.stop()  # after HTTP: gateway sockets are closed by then
        if self.endpoint is not None:
            await self.endpoint.close()
        await self.media_engine.stop()
        with contextlib.suppress(FileNotFoundError):
            (self.settings.data_dir / PORTS_FILE).unlink()

    async def wait(self) -> None:
        """Run until the HTTP server exits (Ctrl-C)."""
        if self._http_task is not None:
            await self._http_task

    async def _start_sip(self) -> tuple[int, int]:
        sip = self.settings.sip
        stack = SipStack(
            self.ids, max_message_size=sip.max_message_size, max_transactions=sip.max_transactions
        )
        self.endpoint = SipEndpoint(
            stack,
            self.pbx.on_sip_event,
            max_message_size=sip.max_message_size,
            tls_client=client_context(),
        )
        self.pbx.attach(self.endpoint)
        host = self.settings.host
        port = await self._bind_udp_and_tcp(host, sip.port)
        cert, key = sip.tls_cert, sip.tls_key
        if cert is None or key is None:
            cert, key = ensure_self_signed(self.settings.data_dir / "tls", [host, sip.domain])
        tls_port = await self.endpoint.listen_stream(
            "TLS", host, sip.tls_port, server_context(cert, key)
        )
        self.sip_info.udp_port = self.sip_info.tcp_port = port
        self.sip_info.tls_port = tls_port
        return port, tls_port

    async def _bind_udp_and_tcp(self, host: str, port: int) -> int:
        assert self.endpoint is not None
        for _ in range(20):
            udp_port = await self.endpoint.listen_udp(host, port)
            try:
                await self.endpoint.listen_stream("TCP", host, udp_port)
            except OSError:
                self.endpoint.close_udp()
                if port != 0:
                    raise
                continue  # the free UDP port is taken on TCP: try another
            return udp_port
        raise OSError("no port free for both UDP and TCP")

    async def _start_http(self) -> int:
        app = create_app(
            store=self.store,
            settings=self.settings,
            clock=self.clock,
            ids=self.ids,
            sip=self.sip_info,
            device_status=self.pbx,
            calls=self.pbx,
            notifications=self.notifications,
        )
        family = socket.AF_INET6 if ":" in self.settings.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else ~40 ms per response
        sock.bind((self.settings.host, self.settings.api.port))
        self._http_socket = sock
        events = self.settings.events
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="on",
            access_log=False,
            ws_ping_interval=events.ws_ping_interval,  # WebSocket gateway keepalive
            ws_ping_timeout=events.ws_ping_timeout,
            ws_max_size=events.ws_max_frame_size,
        )
        self._http = uvicorn.Server(config)
        self._http_task = asyncio.get_running_loop().create_task(self._http.serve(sockets=[sock]))
        while not self._http.started:
            if self._http_task.done():
                await self._http_task
                raise RuntimeError("HTTP server failed to start")
            await asyncio.sleep(0.01)
        return int(sock.getsockname()[1])

    def _device_status_changed(self, device: Device, online: bool) -> None:
        self.pbx.on_device_status(device, online)

    def _on_session(self, session: TelephonySession, events: list[PartyStatusChanged]) -> None:
        self.pbx.on_session(session, events)

    def _contact(self, transport: str) -> SipUri:
        host = self.settings.sip.advertised_host or self.settings.host
        port = self.sip_info.tls_port if transport == "TLS" else self.sip_info.udp_port
        return SipUri(
            host=host, user="callwatch", port=port, params={"transport": transport.lower()}
        )


def _gateway(text: str | None) -> Address | None:
    """``host:port`` of the trunk's gateway as a UDP address."""
    if not text:
        return None
    host, _, port = text.rpartition(":")
    return Address("UDP", host.strip("[]"), int(port))
