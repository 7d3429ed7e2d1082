"""Keeping a softphone registered: refresh before expiry, register again after a lost flow.

Theory of operation
-------------------
A :class:`RegistrationKeeper` drives a :class:`~callwatch.client.ua.UserAgent`'s REGISTERs at
one registrar (the outbound proxy):

- :meth:`RegistrationKeeper.register` registers once (digest answered by the user agent; a
  423 Interval Too Brief is retried once with the registrar's ``Min-Expires``, RFC 3261
  §10.2.8) and raises :class:`~callwatch.client.errors.RegistrationFailed` on failure;
- :meth:`RegistrationKeeper.run` then refreshes the binding (same Call-ID, next CSeq) after
  ``min(refresh_interval, ½ · granted expiry)`` — RingCentral's softphone SDK re-registers every
  30 s because registrations lapsed on idle connections (ringcentral-api.md §7.5) — and
  registers again at once when the TCP/TLS connection it registered over closes (RFC 5626
  §4.4: an outbound binding dies with its flow). Failures are retried with exponential backoff
  from ``retry_interval`` up to :data:`MAX_RETRY_INTERVAL`.

Every outcome is published as a :class:`RegistrationStatus` (:attr:`RegistrationKeeper.status`,
:meth:`RegistrationKeeper.next_status`). The granted expiry is read from our own Contact in the
2xx (``expires`` parameter), else its ``Expires`` header, else what we asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, replace

from callwatch.client.errors import RegistrationFailed, UaError
from callwatch.client.ua import UserAgent
from callwatch.sip.events import Address
from callwatch.sip.message import Response
from callwatch.sip.uri import SipUri

__all__ = [
    "MAX_RETRY_INTERVAL",
    "RegistrationKeeper",
    "RegistrationStatus",
    "granted_expires",
    "refresh_delay",
]

logger = logging.getLogger(__name__)

REFRESH_FRACTION = 0.5
"""Share of the granted expiry after which the binding is refreshed."""
MIN_REFRESH = 0.2
"""Shortest time between two refreshes, in seconds."""
MAX_RETRY_INTERVAL = 60.0
"""Longest wait between two failed attempts, in seconds."""


@dataclass(frozen=True, slots=True)
class RegistrationStatus:
    """The registration's state after the latest attempt."""

    registered: bool
    """True while the registrar holds our binding (as far as we know)."""
    registrations: int = 0
    """Successful REGISTERs so far (first one and refreshes)."""
    expires: int | None = None
    """Seconds granted by the latest success."""
    error: UaError | None = None
    """Why the latest attempt failed, if it did."""
    flow_losses: int = 0
    """Times the connection we registered over closed."""


def granted_expires(response: Response, ours: SipUri, requested: int) -> int:
    """The expiry the registrar granted our Contact ``ours`` in its 2xx ``response``."""
    for contact in response.contacts:
        uri = contact.uri
        if (uri.host, uri.port, uri.user) == (ours.host, ours.port, ours.user):
            value = contact.params.get("expires")
            if value is not None and value.isdigit():
                return int(value)
    header = response.headers.get("expires")
    return int(header) if header is not None and header.strip().isdigit() else requested


def refresh_delay(granted: int, refresh_interval: float) -> float:
    """Seconds until the binding granted for ``granted`` seconds is refreshed."""
    return max(MIN_REFRESH, min(refresh_interval, granted * REFRESH_FRACTION))


def _min_expires(error: RegistrationFailed) -> int | None:
    if error.status != 423 or error.response is None:
        return None
    value = (error.response.headers.get("min-expires") or "").strip()
    return int(value) if value.isdigit() else None


class RegistrationKeeper:
    """Registers ``username`` at ``server`` and keeps it registered (see the module docstring).

    Args:
        ua: the started user agent.
        server: the registrar / outbound proxy (its host an IP address).
        username: SIP user (From/To/Contact user part).
        auth_username: digest user name (RingCentral's authorization id).
        password: digest password.
        domain: SIP domain (Request-URI, AOR).
        expires: expiry asked for, in seconds.
        refresh_interval: longest time between two REGISTERs, in seconds.
        retry_interval: first wait after a failure, in seconds (doubles up to a minute).
    """

    def __init__(
        self,
        ua: UserAgent,
        *,
        server: Address,
        username: str,
        auth_username: str,
        password: str,
        domain: str,
        expires: int = 3600,
        refresh_interval: float = 30.0,
        retry_interval: float = 1.0,
    ) -> None:
        self._ua = ua
        self.server = server
        self._username = username
        self._auth_username = auth_username
        self._password = password
        self._domain = domain
        self._expires = expires
        self._refresh_interval = refresh_interval
        self._retry_interval = retry_interval
        self._backoff = retry_interval
        self._delay = refresh_delay(expires, refresh_interval)
        self._wake = asyncio.Event()
        self._status = RegistrationStatus(registered=False)
        self._changed: asyncio.Future[RegistrationStatus] = (
            asyncio.get_running_loop().create_future()
        )

    @property
    def status(self) -> RegistrationStatus:
        """The latest outcome."""
        return self._status

    async def next_status(self) -> RegistrationStatus:
        """Wait for the next outcome (a success, a failure or a lost flow)."""
        return await asyncio.shield(self._changed)

    def _publish(self, status: RegistrationStatus) -> None:
        self._status = status
        changed, self._changed = self._changed, asyncio.get_running_loop().create_future()
        changed.set_result(self._status)

    # -- one attempt --------------------------------------------------------------------------

    async def register(self) -> RegistrationStatus:
        """Register once.

        Raises:
            RegistrationFailed: non-2xx after at most one digest answer (and one 423 retry);
                408 on timeout, 503 on a transport error.
        """
        try:
            granted = await self._register_once()
        except UaError as exc:
            self._publish(replace(self._status, registered=False, error=exc))
            raise
        self._delay = refresh_delay(granted, self._refresh_interval)
        previous = self._status
        self._publish(
            RegistrationStatus(
                registered=True,
                registrations=previous.registrations + 1,
                expires=granted,
                flow_losses=previous.flow_losses,
            )
        )
        logger.debug("= registered %s for %d s", self._username, granted)
        return self._status

    async def _register_once(self) -> int:
        try:
            response = await self._send(self._expires)
        except RegistrationFailed as exc:
            minimum = _min_expires(exc)
            if minimum is None:
                raise
            self._expires = minimum
            response = await self._send(minimum)
        ours = self._ua.contact_uri(self.server.transport)
        return granted_expires(response, ours, self._expires)

    async def _send(self, expires: int) -> Response:
        return await self._ua.register(
            self.server,
            username=self._username,
            auth_username=self._auth_username,
            password=self._password,
            domain=self._domain,
            expires=expires,
        )

    async def unregister(self) -> None:
        """Remove our binding (Expires: 0).

        Raises:
            RegistrationFailed: the registrar refused or did not answer.
        """
        await self._ua.unregister()
        self._publish(replace(self._status, registered=False, expires=0))

    # -- keeping it ---------------------------------------------------------------------------

    def refresh_now(self) -> None:
        """Register again at once (then on the usual schedule): for when the registrar may
        have lost the binding without the flow telling us (a restart behind UDP)."""
        self._wake.set()

    async def run(self) -> None:
        """Refresh and recover forever (cancel to stop); call after :meth:`register`."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._watch_flows())
            group.create_task(self._refresh())

    async def _watch_flows(self) -> None:
        while True:
            flow = await self._ua.next_closed_flow()
            if self._is_registrar(flow):
                logger.info("! %s: connection to the registrar closed", self._username)
                losses = self._status.flow_losses + 1
                self._publish(replace(self._status, registered=False, flow_losses=losses))
                self._wake.set()

    def _is_registrar(self, flow: Address) -> bool:
        server = self.server
        return (flow.transport, flow.host, flow.port) == (
            server.transport,
            server.host,
            server.port,
        )

    async def _refresh(self) -> None:
        delay = self._delay
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()
            delay = await self._attempt()

    async def _attempt(self) -> float:
        try:
            await self.register()
        except UaError as exc:
            delay, self._backoff = self._backoff, min(self._backoff * 2, MAX_RETRY_INTERVAL)
            logger.info("! %s: REGISTER failed (%s); again in %.1f s", self._username, exc, delay)
            return delay
        self._backoff = self._retry_interval
        return self._delay
