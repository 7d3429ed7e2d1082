"""Where WebHook requests may go: the address policy, its checks, and a connector that obeys it.

Theory of operation. A WebHook address is a URL any user with an OAuth token chooses and the
server then POSTs to (the ``Validation-Token`` handshake, then every delivery). Unchecked, that
is a server-side request forgery hole: cloud metadata (169.254.169.254, ``fd00:ec2::254``),
link-local, multicast and unspecified addresses, or whatever internal service the server can
reach. Three layers close it.

Policy (:class:`AddressPolicy`, pure; from :class:`~callwatch.events.settings.EventsSettings`).
With ``webhook_require_https`` only ``https`` URLs pass. An IP address is refused when it lies in
one of ``webhook_denied_networks``, or when ``webhook_allowed_networks`` is set and it lies in
none of them (the deny list wins). IPv4-mapped IPv6 addresses (``::ffff:a.b.c.d``) and networks
inside ``::ffff:0:0/96`` are compared in their IPv4 form, so ``::ffff:169.254.169.254`` is as
link-local as ``169.254.169.254`` whichever way either side is written.

Checks (:class:`AddressGuard`). A literal IP host is taken as it is; a name is resolved with the
injected :data:`Resolver` (by default the loop's ``getaddrinfo``, which also reads the numeric
spellings ``2852039166`` and ``0xa9.0xfe.0xa9.0xfe``), and *every* address of the answer must
pass: one denied address refuses the host, so a decoy public address in the same record set
buys nothing. :meth:`AddressGuard.check` runs before the handshake and before every delivery
attempt, so an address that became refused after creation (its DNS changed, or the operator
tightened the policy and restarted) fails that attempt — it is never POSTed to.

Connection (:class:`GuardedBackend`). A check followed by an ordinary connect would leave a DNS
rebinding window: the HTTP stack would resolve the name again and a hostile name server (TTL 0)
could answer differently the second time. So the shared HTTP client's httpcore pool connects
through this network backend: httpcore asks it for a TCP connection to the URL's *name*; it
resolves and checks the name itself, as above, and connects to one of the very addresses it has
just checked (in the resolver's order, within the one connect timeout). Everything above the
socket still sees the name: the pool keys connections by it, the ``Host`` header carries it, and
TLS sends it as SNI and verifies the certificate against it. A keep-alive connection is checked
once, when it opens; it leads to an address that passed then, while the pre-check in front of
each request re-applies the policy to the name's current answer.

Limits, stated honestly: a name costs one resolution per delivery attempt (two when a new
connection opens; literal IPs cost none), with whatever caching the system resolver does;
addresses are tried one after another, not raced (no Happy Eyeballs); IPv4 embedded in IPv6
other than the mapped form (NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo) is not
translated — add those networks to the deny list where such gateways exist; and the client
never uses a proxy (``trust_env`` is off), since a proxy would connect on our behalf unchecked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import httpcore
import httpx

from callwatch.events.settings import EventsSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``await resolver(host, port)``: the host's addresses as text, best first; OSError if none."""

DEFAULT_PORTS: Final = {"http": 80, "https": 443}
NOT_ALLOWED: Final = "address is not allowed"
HTTPS_REQUIRED: Final = "address must use https"
_MAPPED: Final = ipaddress.IPv6Network("::ffff:0:0/96")


class AddressDenied(Exception):
    """The policy refuses a WebHook address.

    ``str()`` says exactly why, naming the addresses (for the log); :attr:`public` is one of
    :data:`NOT_ALLOWED` and :data:`HTTPS_REQUIRED`, what the subscriber is told.
    """

    def __init__(self, detail: str, *, public: str = NOT_ALLOWED) -> None:
        super().__init__(detail)
        self.public = public


class DeniedConnect(httpcore.ConnectError):
    """Raised by :class:`GuardedBackend` for a refused address; httpx reports it as
    ``httpx.ConnectError`` caused by this (see :func:`denial`)."""

    def __init__(self, denied: AddressDenied) -> None:
        super().__init__(f"address not allowed: {denied}")
        self.denied = denied


def denial(exc: BaseException) -> AddressDenied | None:
    """The refusal behind an HTTP error, if the address policy caused it."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, AddressDenied):
            return seen
        if isinstance(seen, DeniedConnect):
            return seen.denied
        seen = seen.__cause__ or seen.__context__
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    """The loop's ``getaddrinfo`` for TCP, duplicates removed, in the system's order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Which URLs and IP addresses WebHook requests may go to."""

    denied: tuple[IPNetwork, ...]
    allowed: tuple[IPNetwork, ...] | None = None
    """When set, only addresses inside one of these networks pass."""
    require_https: bool = False

    @classmethod
    def of(cls, settings: EventsSettings) -> AddressPolicy:
        """The policy the settings describe (networks were validated by the settings model)."""
        allowed = settings.webhook_allowed_networks
        return cls(
            denied=_networks(settings.webhook_denied_networks),
            allowed=None if allowed is None else _networks(allowed),
            require_https=settings.webhook_require_https,
        )

    def scheme_refusal(self, scheme: str) -> str | None:
        """Why a URL scheme is refused, or None."""
        if self.require_https and scheme != "https":
            return "https is required"
        return None

    def refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` is refused, or None."""
        plain = unmapped(address)
        for network in self.denied:
            if plain in network:
                return f"{address} is in the denied network {network}"
        if self.allowed is not None and not any(plain in network for network in self.allowed):
            return f"{address} is outside the allowed networks"
        return None


class AddressGuard:
    """Resolves WebHook hosts and applies an :class:`AddressPolicy` to every address."""

    def __init__(self, policy: AddressPolicy, resolver: Resolver | None = None) -> None:
        self.policy = policy
        self._resolver = resolver or system_resolver

    async def resolve(self, host: str, port: int) -> tuple[IPAddress, ...]:
        """Every address of ``host``, each allowed by the policy.

        Raises:
            AddressDenied: at least one address is refused.
            OSError: the name does not resolve (or resolves to nothing usable).
        """
        try:
            addresses: tuple[IPAddress, ...] = (ipaddress.ip_address(host),)
        except ValueError:
            answer = await self._resolver(host, port)
            addresses = tuple(dict.fromkeys(_parse(host, text) for text in answer))
            if not addresses:
                raise OSError(f"{host} has no address") from None
        for address in addresses:
            reason = self.policy.refusal(address)
            if reason is not None:
                via = "" if str(address) == host else f" (address of {host})"
                raise AddressDenied(f"{reason}{via}")
        return addresses

    async def check(self, url: httpx.URL) -> None:
        """Check a WebHook URL's scheme and every address of its host.

        Raises:
            AddressDenied: the scheme or an address is refused.
            httpx.ConnectError: the host does not resolve.
        """
        reason = self.policy.scheme_refusal(url.scheme)
        if reason is not None:
            raise AddressDenied(f"{url.scheme}://{url.host}: {reason}", public=HTTPS_REQUIRED)
        try:
            await self.resolve(url.host, url.port or DEFAULT_PORTS.get(url.scheme, 80))
        except OSError as exc:
            raise httpx.ConnectError(f"cannot resolve {url.host}: {exc}") from exc


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to addresses the guard has just checked."""

    def __init__(self, guard: AddressGuard, inner: httpcore.AsyncNetworkBackend | None = None):
        self._guard = guard
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve and check ``host``, then connect to its checked addresses in turn."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                addresses = await self._guard.resolve(host, port)
        except AddressDenied as exc:
            raise DeniedConnect(exc) from exc
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            remaining = None if deadline is None else max(deadline - loop.time(), 0.0)
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=remaining,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None  # resolve() returns at least one address
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Refused: WebHooks are delivered over TCP only."""
        raise httpcore.ConnectError("unix sockets are not WebHook addresses")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport whose connection pool connects through a :class:`GuardedBackend`.

    httpx offers no parameter for the network backend, so the pool httpx built is replaced by
    an identical one (same TLS context and limits, no proxy) that has ours; the tests that
    deliver through a name only the injected resolver knows would fail if this stopped working.
    """

    def __init__(
        self,
        guard: AddressGuard,
        *,
        limits: httpx.Limits,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        context = httpx.create_ssl_context(verify=verify, trust_env=False)
        super().__init__(verify=context, trust_env=False, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(guard),
        )


def unmapped(address: IPAddress) -> IPAddress:
    """The IPv4 form of an IPv4-mapped IPv6 address; any other address unchanged."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def unmapped_network(network: IPNetwork) -> IPNetwork:
    """The IPv4 form of a network inside ``::ffff:0:0/96``; any other network unchanged."""
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED):
        first = int(network.network_address) & 0xFFFF_FFFF
        return ipaddress.IPv4Network((first, network.prefixlen - 96))
    return network


def _networks(texts: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(dict.fromkeys(unmapped_network(ipaddress.ip_network(text)) for text in texts))


def _parse(host: str, text: str) -> IPAddress:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise OSError(f"{host} resolved to {text!r}, not an IP address") from None
