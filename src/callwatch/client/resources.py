"""Shapes the supervisor app needs from the REST API, and the rules that read them (pure).

- paths: :func:`account_path` / :func:`extension_path` build ``/restapi/v1.0/account/~/…``
  (``~`` = the token owner's account or extension, which every RingCentral path accepts);
- SIP credentials: :class:`SipInfo` from ``device/{id}/sip-info`` (``userName``,
  ``outboundProxies[]``) and from ``client-info/sip-provision`` (``username``,
  ``outboundProxy``) — one dataclass for both spellings (ringcentral-api.md §2.5, §2.6);
- who may be supervised: :func:`monitored_agents` applies the call-monitoring-group rule
  (§2.7, §2.10): the extensions that are ``Monitored`` in a group where the user is
  ``Monitoring``;
- supervise: :func:`supervise_body` builds SuperviseCallSessionRequest / PartySuperviseRequest
  with exactly one agent selector (§2.10).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from callwatch.client.api_errors import ResponseError
from callwatch.client.wire import (
    JsonObject,
    JsonValue,
    int_field,
    object_field,
    objects_field,
    optional_text,
    text_field,
)

__all__ = [
    "API_PREFIX",
    "MonitoredAgent",
    "OutboundProxy",
    "SipInfo",
    "SipProvision",
    "account_path",
    "extension_path",
    "monitored_agents",
    "supervise_body",
]

API_PREFIX: Final = "/restapi/v1.0"
MONITORING: Final = "Monitoring"
MONITORED: Final = "Monitored"
MEDIA_SDP: Final = ("sendOnly", "sendRecv")


def account_path(*parts: str | int, account_id: str | int = "~") -> str:
    """``/restapi/v1.0/account/{account_id}/part/part…``."""
    return "/".join((f"{API_PREFIX}/account/{account_id}", *map(str, parts)))


def extension_path(
    *parts: str | int, extension_id: str | int = "~", account_id: str | int = "~"
) -> str:
    """``/restapi/v1.0/account/{account_id}/extension/{extension_id}/part…``."""
    return account_path("extension", extension_id, *parts, account_id=account_id)


@dataclass(frozen=True, slots=True)
class OutboundProxy:
    """One ``outboundProxies[]`` item of a device's sip-info."""

    region: str | None
    proxy: str | None
    """``host:port`` for UDP/TCP."""
    proxy_tls: str | None
    """``host:port`` for TLS."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SipInfo:
    """What a softphone needs to REGISTER."""

    username: str
    password: str
    authorization_id: str
    """Digest user name; on RingCentral (and callwatch) equal to the device id."""
    domain: str
    outbound_proxy: str
    """``host:port`` for :attr:`transport`."""
    transport: str
    """``UDP``, ``TCP``, ``TLS`` or ``WSS``."""
    authorization_types: tuple[str, ...] = ("SipDigest",)
    outbound_proxies: tuple[OutboundProxy, ...] = ()
    """Every region's proxies (device sip-info only)."""
    stun_servers: tuple[str, ...] = ()

    @classmethod
    def from_device(
        cls, body: JsonObject, *, transport: str = "TLS", region: str | None = None
    ) -> SipInfo:
        """From ``GET …/device/{id}/sip-info``; the proxy of ``region`` (default: the first).

        Raises:
            ResponseError: a field is missing, or no proxy serves ``transport``/``region``.
        """
        proxies = tuple(
            OutboundProxy(
                region=optional_text(item, "region"),
                proxy=optional_text(item, "proxy"),
                proxy_tls=optional_text(item, "proxyTLS"),
            )
            for item in objects_field(body, "outboundProxies")
        )
        tls = transport.upper() == "TLS"
        candidates = [p for p in proxies if region is None or p.region == region]
        chosen = next((p.proxy_tls if tls else p.proxy for p in candidates), None)
        if not chosen:
            raise ResponseError(f"no outbound proxy for {transport} in region {region or 'any'}")
        return cls(
            username=text_field(body, "userName"),
            password=text_field(body, "password"),
            authorization_id=text_field(body, "authorizationId"),
            domain=text_field(body, "domain"),
            outbound_proxy=chosen,
            transport=transport.upper(),
            outbound_proxies=proxies,
        )

    @classmethod
    def from_provision(cls, item: JsonObject) -> SipInfo:
        """From one ``sipInfo[]`` item of ``POST /client-info/sip-provision``."""
        return cls(
            username=text_field(item, "username"),
            password=optional_text(item, "password") or "",
            authorization_id=text_field(item, "authorizationId"),
            domain=text_field(item, "domain"),
            outbound_proxy=text_field(item, "outboundProxy"),
            transport=text_field(item, "transport").upper(),
            authorization_types=_strings(item.get("authorizationTypes")) or ("SipDigest",),
            stun_servers=_strings(item.get("stunServers")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SipProvision:
    """The answer of ``POST /restapi/v1.0/client-info/sip-provision``."""

    device: JsonObject
    """The device record; ``device["id"]`` is the ``supervisorDeviceId`` to supervise with."""
    sip_info: tuple[SipInfo, ...]
    """One entry per requested transport, in the server's order."""
    sip_flags: JsonObject
    polling_interval: int | None = None
    """Seconds after which RingCentral asks clients to provision again."""

    @property
    def device_id(self) -> str:
        return text_field(self.device, "id")

    @classmethod
    def parse(cls, body: JsonObject) -> SipProvision:
        """Raises ResponseError when ``device`` or ``sipInfo`` are missing or malformed."""
        infos = tuple(SipInfo.from_provision(item) for item in objects_field(body, "sipInfo"))
        if not infos:
            raise ResponseError("[sipInfo] is empty")
        polling = body.get("pollingInterval")
        return cls(
            device=object_field(body, "device"),
            sip_info=infos,
            sip_flags=object_field(body, "sipFlags"),
            polling_interval=None if polling is None else int_field(body, "pollingInterval"),
        )

    def for_transport(self, transport: str) -> SipInfo:
        """The entry of ``transport``.

        Raises:
            KeyError: the server sent none for it.
        """
        for info in self.sip_info:
            if info.transport == transport.upper():
                return info
        raise KeyError(transport)


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitoredAgent:
    """An extension the user may supervise."""

    extension_id: str
    extension_number: str | None
    group_ids: tuple[str, ...]
    """The monitoring groups that grant it, in the server's order."""


def monitored_agents(
    own_extension_id: str, groups: Iterable[tuple[str, Sequence[JsonObject]]]
) -> list[MonitoredAgent]:
    """Extensions ``Monitored`` in a group where ``own_extension_id`` is ``Monitoring``.

    Args:
        own_extension_id: the user's extension id.
        groups: ``(group id, members[])`` — members as ``GET …/members`` records.

    Returns:
        One entry per extension (never the user), in first-seen order.
    """
    found: dict[str, MonitoredAgent] = {}
    for group_id, members in groups:
        permissions = {text_field(m, "id"): _strings(m.get("permissions")) for m in members}
        if MONITORING not in permissions.get(own_extension_id, ()):
            continue
        for member in members:
            member_id = text_field(member, "id")
            if member_id == own_extension_id or MONITORED not in permissions[member_id]:
                continue
            known = found.get(member_id)
            groups_of = (*known.group_ids, group_id) if known else (group_id,)
            found[member_id] = MonitoredAgent(
                extension_id=member_id,
                extension_number=optional_text(member, "extensionNumber"),
                group_ids=groups_of,
            )
    return list(found.values())


def supervise_body(
    *,
    device_id: str,
    agent_extension_id: str | int | None = None,
    agent_extension_number: str | None = None,
    auto_answer: bool = True,
    media_sdp: str | None = None,
    party_level: bool = False,
) -> JsonObject:
    """SuperviseCallSessionRequest (or PartySuperviseRequest with ``party_level``).

    Raises:
        ValueError: not exactly one agent selector (party level: no ``agent_extension_id``),
            or ``media_sdp`` not ``sendOnly``/``sendRecv``.
    """
    if (agent_extension_id is None) == (agent_extension_number is None):
        raise ValueError("give exactly one of agent_extension_id and agent_extension_number")
    if party_level and agent_extension_id is None:
        raise ValueError("party-level supervise needs agent_extension_id")
    if media_sdp is not None and media_sdp not in MEDIA_SDP:
        raise ValueError(f"media_sdp must be one of {MEDIA_SDP}")
    body: JsonObject = {"mode": "Listen", "supervisorDeviceId": device_id}
    if agent_extension_id is not None:
        body["agentExtensionId"] = str(agent_extension_id)
    else:
        body["agentExtensionNumber"] = agent_extension_number
    body["autoAnswer"] = auto_answer
    if media_sdp is not None:
        body["mediaSDP"] = media_sdp
    return body


def _strings(value: JsonValue) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(item for item in value if isinstance(item, str))
