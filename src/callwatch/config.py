"""The one Settings model: environment variables ``CALLWATCH_*`` and an optional TOML file.

Nested sections use a double underscore in the environment (``CALLWATCH_SIP__PORT=5070``).
A TOML file named by ``CALLWATCH_CONFIG`` supplies defaults
that the environment overrides.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from callwatch.events.settings import EventsSettings


class SipSettings(BaseModel):
    """SIP listeners and registrar policy."""

    port: int = Field(5060, ge=0, le=65535, description="UDP and TCP port (0 = any free port)")
    tls_port: int = Field(5061, ge=0, le=65535, description="TLS port (0 = any free port)")
    tls_cert: Path | None = Field(None, description="PEM certificate; self-signed if unset")
    tls_key: Path | None = Field(None, description="PEM private key for tls_cert")
    domain: str = Field("sip.callwatch.local", description="SIP domain and digest realm")
    advertised_host: str | None = Field(None, description="host put in Via/Contact; default: host")
    min_expires: int = Field(60, ge=1, description="shortest registration accepted (423 below)")
    max_expires: int = Field(3600, ge=1, description="longest registration granted")
    default_expires: int = Field(3600, ge=1)
    max_bindings_per_device: int = Field(10, ge=1)
    nonce_lifetime: int = Field(300, ge=10, description="seconds before a nonce is stale")
    digest_algorithms: list[str] = Field(
        default_factory=lambda: ["MD5"],
        description="challenges sent, in order (MD5, SHA-256); some phones (baresip 1.0) fail "
        "on a SHA-256 challenge, so SHA-256 is opt-in",
    )
    max_message_size: int = Field(65535, ge=1024)
    ring_timeout: float = Field(60.0, gt=0, description="seconds a callee rings before 408")
    min_session_expires: int = Field(90, ge=1, description="RFC 4028 Min-SE (422 below it)")
    trunk_gateway: str | None = Field(
        None, description="host:port (UDP) where calls out of the trunk go; none: 404"
    )
    max_transactions: int = Field(
        200_000, ge=100, description="server transactions kept (Timer J holds each 32 s on UDP)"
    )


class ApiSettings(BaseModel):
    """The REST server."""

    port: int = Field(8080, ge=0, le=65535)
    public_url: str | None = Field(
        None, description="base URL in resource uris; default: request's"
    )
    access_token_ttl: int = Field(3600, ge=60)
    refresh_token_ttl: int = Field(604800, ge=60)
    rate_limits: dict[str, int] = Field(
        default_factory=lambda: {"Light": 50, "Medium": 40, "Heavy": 10, "Auth": 5},
        description="requests per window per (user, app) and group",
    )
    rate_window: int = Field(60, ge=1, description="rate-limit window in seconds")
    rate_penalty: int = Field(60, ge=0, description="seconds a client waits after a 429")


class MediaSettings(BaseModel):
    """The RTP relay."""

    port_min: int = Field(20000, ge=1024, le=65534)
    port_max: int = Field(30000, ge=1025, le=65535)
    inactivity_timeout: float = Field(
        60.0, gt=0, description="a call whose media is silent this long is hung up"
    )
    advertised_host: str | None = Field(None, description="address put in SDP; default: host")


class StoreSettings(BaseModel):
    """Persistent configuration storage."""

    path: Path | None = Field(None, description="SQLite file; default <data_dir>/callwatch.db")


class Settings(BaseSettings):
    """Everything callwatch can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix="CALLWATCH_", env_nested_delimiter="__", extra="ignore"
    )

    host: str = Field("127.0.0.1", description="address every listener binds")
    data_dir: Path = Field(Path(".callwatch"), description="database, TLS key, ports.json")
    sip: SipSettings = Field(default_factory=SipSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    events: EventsSettings = Field(default_factory=EventsSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = os.environ.get("CALLWATCH_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml)))
        return tuple(sources)

    @property
    def db_path(self) -> Path:
        """Where the SQLite database lives."""
        return self.store.path or self.data_dir / "callwatch.db"
