"""SIP credentials of a supervisor device, and where its outbound proxy is.

RingCentral hands them out twice over — ``GET …/device/{id}/sip-info`` and ``POST
/client-info/sip-provision`` (ringcentral-api.md §2.5, §2.6) — as ``username``, ``password``,
``authorizationId``, ``domain``, ``outboundProxy`` (``host:port``) and ``transport``. A
:class:`~callwatch.client.softphone.Softphone` takes any object with those attributes
(:class:`SipAccount`): :class:`SipCredentials` here, or the REST client's ``SipInfo``.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "DEFAULT_PORTS",
    "TRANSPORTS",
    "SipAccount",
    "SipCredentials",
    "local_address_for",
    "parse_proxy",
]

TRANSPORTS = ("UDP", "TCP", "TLS")
"""Transports a softphone registers over."""
DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "TLS": 5061}
"""Port of an outbound proxy given without one (RFC 3261 §19.1.2)."""


class SipAccount(Protocol):
    """SIP credentials as RingCentral's ``sip-info`` / ``sip-provision`` give them (any object
    with these attributes: :class:`SipCredentials`, the REST client's ``SipInfo`` …)."""

    @property
    def username(self) -> str: ...
    @property
    def password(self) -> str: ...
    @property
    def authorization_id(self) -> str: ...
    @property
    def domain(self) -> str: ...
    @property
    def outbound_proxy(self) -> str: ...
    @property
    def transport(self) -> str: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SipCredentials:
    """What a softphone registers with (a device's ``sip-info``)."""

    username: str
    """SIP user of the AOR and Contact (``userName``)."""
    password: str
    authorization_id: str
    """Digest user name; equals the device id on RingCentral and callwatch."""
    domain: str
    """SIP domain, also the digest realm (``sip.ringcentral.com``)."""
    outbound_proxy: str
    """``host:port`` of the registrar / outbound proxy (``[v6]:port`` for IPv6)."""
    transport: str = "TLS"
    """``UDP``, ``TCP`` or ``TLS``."""


def parse_proxy(text: str, transport: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``, or a bare host) → (host, port).

    Raises:
        ValueError: no host, or a port that is not a number in 1–65535.
    """
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not port_text:
        port = DEFAULT_PORTS[transport]
    else:
        port = int(port_text) if port_text.isdigit() else 0
    if not host or not 0 < port < 65536:
        raise ValueError(f"bad outbound proxy {text!r}")
    return host, port


def local_address_for(ip: str, port: int) -> str:
    """The local address the OS would use to reach ``ip`` (a UDP connect sends nothing)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect((ip, port))
        return str(probe.getsockname()[0])
