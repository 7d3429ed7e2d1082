"""Knobs of event notifications: subscriptions, WebHook delivery and the WebSocket gateway.

``Settings.events`` in :mod:`callwatch.config` (environment ``CALLWATCH_EVENTS__…``). Defaults
are RingCentral's published values where it publishes one (ringcentral-api.md §2.11, §3.5, §4)
and ours otherwise; every queue and table these values size is bounded (rule 8).
"""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator


class EventsSettings(BaseModel):
    """Notification subscriptions and their delivery."""

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

    @model_validator(mode="after")
    def _replay_fits_the_outbox(self) -> EventsSettings:
        if self.ws_outbox_size < self.ws_recovery_buffer_size:
            raise ValueError("ws_outbox_size must hold a whole recovery buffer")
        if self.default_expires_in > self.max_expires_in:
            raise ValueError("default_expires_in exceeds max_expires_in")
        return self
