"""PbxService: the one object the SIP endpoint hands events to and the API asks about devices.

It dispatches SIP events to the registrar (and, as they arrive, the B2BUA and supervision),
answers OPTIONS, refuses what it does not serve with the right status, and runs the periodic
expiry of registrations.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from callwatch.pbx.registrar import ALLOW, SUPPORTED, Registrar
from callwatch.sip.events import (
    Address,
    ConnectionClosed,
    MalformedMessage,
    RequestReceived,
    SipEvent,
)
from callwatch.sip.message import Request, Response, make_response

logger = logging.getLogger(__name__)


class SipSender(Protocol):
    """The verbs of the SIP endpoint the pbx uses."""

    def send_response(self, transaction: str, response: Response) -> None:
        """Answer a server transaction."""
        ...

    def send_request(self, request: Request, destination: Address) -> str:
        """Start a client transaction."""
        ...


class PbxService:
    """Call-control core: registrar today; B2BUA and supervision plug in here."""

    def __init__(self, *, registrar: Registrar, expiry_interval: float = 1.0) -> None:
        self.registrar = registrar
        self._sender: SipSender | None = None
        self._expiry_interval = expiry_interval
        self._expiry_task: asyncio.Task[None] | None = None
        self.counters = {"malformed": 0, "requests": 0, "refused": 0}

    def attach(self, sender: SipSender) -> None:
        """Give the service the endpoint it answers through."""
        self._sender = sender

    async def start(self) -> None:
        """Start the periodic expiry of registrations."""
        self._expiry_task = asyncio.get_running_loop().create_task(self._expiry_loop())

    async def stop(self) -> None:
        """Stop background work."""
        if self._expiry_task is not None:
            self._expiry_task.cancel()
            await asyncio.gather(self._expiry_task, return_exceptions=True)

    def is_online(self, device_id: str) -> bool:
        """Device status for the REST API (``DeviceStatusProvider``)."""
        return self.registrar.is_online(device_id)

    def on_sip_event(self, event: SipEvent) -> None:
        """Handle one event from the SIP endpoint."""
        if isinstance(event, RequestReceived):
            self.counters["requests"] += 1
            self._on_request(event)
        elif isinstance(event, ConnectionClosed):
            self.registrar.connection_closed(event.connection)
        elif isinstance(event, MalformedMessage):
            self.counters["malformed"] += 1
            logger.debug("x malformed from %s: %s", event.source, event.reason)

    def _on_request(self, event: RequestReceived) -> None:
        request = event.request
        if event.transaction is None:
            return  # ACK to a 2xx: nothing to answer
        if request.method == "REGISTER":
            response = self.registrar.handle_register(request, event.source)
        elif request.method == "OPTIONS":
            response = make_response(
                request,
                200,
                headers=[("Allow", ALLOW), ("Accept", "application/sdp"), ("Supported", SUPPORTED)],
            )
        elif request.method == "INVITE":
            self.counters["refused"] += 1
            response = make_response(request, 480, "No Call Routing Yet")
        else:
            self.counters["refused"] += 1
            response = make_response(request, 405, headers=[("Allow", ALLOW)])
        self._respond(event.transaction, response)

    def _respond(self, transaction: str, response: Response) -> None:
        if self._sender is not None:
            self._sender.send_response(transaction, response)

    async def _expiry_loop(self) -> None:
        while True:
            await asyncio.sleep(self._expiry_interval)
            self.registrar.expire()
