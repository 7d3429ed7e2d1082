"""Knobs of event notifications: subscriptions, WebHook delivery and the WebSocket gateway.

``Settings.events`` in :mod:`callwatch.config` (environment ``CALLWATCH_EVENTS__…``). Defaults
are RingCentral's published values where it publishes one (ringcentral-api.md §2.11, §3.5, §4)
and ours otherwise; every queue and table these values size is bounded (rule 8).
"""

from __future__ import annotations

import ipaddress
from typing import Final

from pydantic import BaseModel, Field, field_validator, model_validator

DEFAULT_DENIED_NETWORKS: Final = (
    "0.0.0.0/8",  # "this network": 0.0.0.0 reaches the server itself
    "169.254.0.0/16",  # link-local, with cloud metadata at 169.254.169.254
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved
    "255.255.255.255/32",  # limited broadcast
    "::/128",  # unspecified
    "fe80::/10",  # link-local
    "ff00::/8",  # multicast
    "fd00:ec2::254/128",  # AWS instance metadata over IPv6
    "::ffff:0.0.0.0/104",  # the IPv4 entries again, IPv4-mapped
    "::ffff:169.254.0.0/112",
    "::ffff:224.0.0.0/100",
    "::ffff:240.0.0.0/100",
    "::ffff:255.255.255.255/128",
)
"""Addresses that are never a legitimate WebHook receiver (``webhook_denied_networks``)."""


class EventsSettings(BaseModel):
    """Notification subscriptions and their delivery.

    WebHook addresses (:mod:`callwatch.events.egress`): users choose them and the server POSTs to
    them, so every handshake and delivery is checked against ``webhook_denied_networks`` (never
    a receiver: unspecified, link-local with cloud metadata, multicast, broadcast; IPv4-mapped
    forms included) and, when set, ``webhook_allowed_networks`` (only addresses inside it pass;
    the deny list still wins). Loopback and private ranges (RFC 1918, ``fc00::/7``) are allowed
    by default on purpose: callwatch is self-hosted, its embedded demo delivers to 127.0.0.1 and
    receivers commonly sit on the operator's private network. Where users must not reach
    internal services, set ``webhook_allowed_networks`` to the receivers' subnet (or to public
    ranges), or add ``127.0.0.0/8``, ``10.0.0.0/8``, ``172.16.0.0/12``, ``192.168.0.0/16``,
    ``100.64.0.0/10``, ``::1/128`` and ``fc00::/7`` to the deny list — which replaces the
    default list, so keep its entries (:data:`DEFAULT_DENIED_NETWORKS`). Plain http is accepted
    unless ``webhook_require_https`` (RingCentral itself demands https).
    """

    dispatch_queue_size: int = Field(
        10_000, ge=1, description="events queued for matching before the bus drops them"
    )
    max_subscriptions_per_owner: int = Field(
        30, ge=1, description="subscriptions per user per app (SUB-505 beyond)"
    )
    max_subscriptions: int = Field(100_000, ge=1, description="active subscriptions per node")
    max_event_filters: int = Field(64, ge=1, description="eventFilters per subscription")
    default_expires_in: int = Field(604_800, ge=1, description="WebHook TTL when not given (s)")
    max_expires_in: int = Field(315_360_000, ge=1, description="longest WebHook TTL (s)")
    expired_retention: float = Field(
        86_400.0, ge=0, description="expired WebHook subscriptions kept for SUB-507 (s)"
    )
    webhook_validation_timeout: float = Field(
        3.0, gt=0, description="the Validation-Token handshake must answer within (s)"
    )
    webhook_validation_max_bytes: int = Field(
        1024, ge=1, description="largest handshake response, headers plus body"
    )
    webhook_timeout: float = Field(10.0, gt=0, description="one delivery attempt (s)")
    webhook_queue_size: int = Field(1000, ge=1, description="notifications queued per WebHook")
    webhook_retry_base: float = Field(1.0, gt=0, description="first retry delay (s), doubled")
    webhook_retry_max: float = Field(60.0, gt=0, description="longest retry delay (s)")
    webhook_blacklist_after: int = Field(
        5, ge=1, description="consecutive failed attempts that blacklist a WebHook"
    )
    webhook_user_agent: str = Field("RingCentral-Webhook/8.3", min_length=1)
    webhook_require_https: bool = Field(False, description="refuse plain-http WebHook addresses")
    webhook_denied_networks: list[str] = Field(
        default_factory=lambda: list(DEFAULT_DENIED_NETWORKS),
        description="WebHook hosts with an address in one of these are refused",
    )
    webhook_allowed_networks: list[str] | None = Field(
        None, description="when set, WebHook hosts must have every address in these"
    )
    ws_token_ttl: int = Field(60, ge=1, description="lifetime of a single-use ws_access_token")
    ws_max_pending_tokens: int = Field(10_000, ge=1)
    ws_max_sessions: int = Field(10_000, ge=1, description="WebSocket sessions per node")
    ws_recovery_timeout: float = Field(180.0, gt=0, description="recovery window (s)")
    ws_recovery_buffer_size: int = Field(100, ge=1, description="notifications kept to replay")
    ws_idle_timeout: float = Field(1800.0, gt=0, description="no inbound frame for this: WSG-902")
    ws_absolute_timeout: float = Field(86_400.0, gt=0, description="connection age: WSG-903")
    ws_max_connections_per_session: int = Field(50, ge=1, description="announced only")
    ws_max_active_requests: int = Field(10, ge=1, description="replies queued per connection")
    ws_outbox_size: int = Field(1000, ge=1, description="notifications queued per connection")
    ws_ping_interval: float = Field(30.0, gt=0, description="WebSocket ping every (s)")
    ws_ping_timeout: float = Field(10.0, gt=0, description="pong expected within (s)")
    ws_max_frame_size: int = Field(65_536, ge=1024, description="largest client frame (bytes)")

    @field_validator("webhook_denied_networks", "webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: list[str] | None) -> list[str] | None:
        for text in value or ():
            try:
                ipaddress.ip_network(text)
            except ValueError as exc:
                raise ValueError(f"not an IP network: {text!r} ({exc})") from None
        return value

    @model_validator(mode="after")
    def _replay_fits_the_outbox(self) -> EventsSettings:
        if self.ws_outbox_size < self.ws_recovery_buffer_size:
            raise ValueError("ws_outbox_size must hold a whole recovery buffer")
        if self.default_expires_in > self.max_expires_in:
            raise ValueError("default_expires_in exceeds max_expires_in")
        return self
