"""Seams of the API and its typed FastAPI dependencies.

What the composition root passes in:

- :class:`DeviceStatusProvider` (Protocol) — the SIP registrar: is a device registered now?
- :class:`SipEndpointInfo` (mutable dataclass) — where the SIP stack listens; the API reads it on
  every request, so the composition root may fill in the ports after binding them. Anything
  with the same read-only attributes (the :class:`SipListeners` Protocol) works too.

- :class:`~callwatch.pbx.control.CallControl` (Protocol, optional) — telephony sessions, parties
  and presence (the pbx). Without it those routes answer 503 CMN-201.

Everything the routes use lives in one :class:`ApiServices` on ``app.state.services`` (no
globals). Routes declare ``services: Services`` and one guard alias (:data:`LightRead`,
:data:`MediumRead`, :data:`HeavyVoip`), which authenticates the bearer token, counts the request
in its rate-limit group and checks the app permission, in that order.

Call-control routes declare a :class:`CallContext` alias instead (:data:`CallControlAccess`,
:data:`AccountPresenceRead`, :data:`PresenceRead`, :data:`PresenceEdit`): after the guard it
checks that call control is configured, resolves ``{accountId}`` (``~`` or the caller's own id,
else 404 CMN-102) and, for extension routes, ``{extensionId}``, and builds the
:class:`~callwatch.pbx.control.Caller` (:class:`ApiCaller`) from the token and the store. These
dependencies are plain functions, so FastAPI runs their store reads in its thread pool, while
the routes themselves are ``async`` and call the pbx on the event loop it lives on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Path, Request

from callwatch.api.directory import DirectoryService
from callwatch.api.errors import PermissionRequired, ServiceUnavailable
from callwatch.api.monitoring import MonitoringService
from callwatch.api.oauth_service import OAuthService
from callwatch.api.ratelimit import RateGroup, RateLimiter, remember_decision
from callwatch.api.sip_provisioning import SipProvisioningService
from callwatch.api.tokens import Principal, TokenIssuer
from callwatch.clock import Clock
from callwatch.config import Settings
from callwatch.events.service import NotificationService
from callwatch.pbx.control import CallControl
from callwatch.store.repo import Extension


class DeviceStatusProvider(Protocol):
    """Registration state of devices (implemented by the SIP registrar)."""

    def is_online(self, device_id: str) -> bool:
        """True while the device has at least one live registration."""
        ...


class SipListeners(Protocol):
    """Where SIP clients reach this server; values are read on every request."""

    @property
    def domain(self) -> str:
        """SIP domain and digest realm."""
        ...

    @property
    def host(self) -> str:
        """Host or IP clients connect to (IPv6 literals without brackets)."""
        ...

    @property
    def udp_port(self) -> int: ...
    @property
    def tcp_port(self) -> int: ...
    @property
    def tls_port(self) -> int: ...
    @property
    def ws_port(self) -> int | None:
        """WebSocket (RFC 7118) port, None when there is no WebSocket listener."""
        ...


@dataclass(slots=True, kw_only=True)
class SipEndpointInfo:
    """A :class:`SipListeners` whose fields the composition root sets once ports are bound."""

    domain: str
    host: str
    udp_port: int
    tcp_port: int
    tls_port: int
    ws_port: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiServices:
    """Everything the routes need, built by :func:`callwatch.api.app.create_app`."""

    settings: Settings
    clock: Clock
    sip: SipListeners
    device_status: DeviceStatusProvider
    tokens: TokenIssuer
    oauth: OAuthService
    directory: DirectoryService
    sip_provisioning: SipProvisioningService
    monitoring: MonitoringService
    limiter: RateLimiter
    calls: CallControl | None = None
    """Telephony sessions and presence; None until the pbx is wired (routes answer 503)."""
    notifications: NotificationService | None = None
    """Subscriptions and the WebSocket gateway; None: those routes answer 503."""


def get_services(request: Request) -> ApiServices:
    """The services stored on the application by ``create_app``."""
    services = getattr(request.app.state, "services", None)
    if not isinstance(services, ApiServices):
        raise RuntimeError("app.state.services is missing; build the app with create_app()")
    return services


Services = Annotated[ApiServices, Depends(get_services)]


def get_base_url(request: Request, services: Services) -> str:
    """Base of absolute resource URIs: ``api.public_url`` or the request's own base URL."""
    configured = services.settings.api.public_url
    return (configured or str(request.base_url)).rstrip("/")


BaseUrl = Annotated[str, Depends(get_base_url)]


def guard(group: RateGroup, permission: str | None) -> Callable[[Request, ApiServices], Principal]:
    """A dependency: bearer authentication, rate limiting in ``group``, app permission check.

    Raises (from the dependency):
        AuthenticationError: 401, bad or missing bearer token.
        RateLimitExceeded: 429 with Retry-After.
        PermissionRequired: 403 CMN-401, the app lacks ``permission``.
    """

    def dependency(request: Request, services: Services) -> Principal:
        principal = services.tokens.authenticate(request.headers.get("authorization"))
        decision = services.limiter.hit(principal.rate_key, group)
        remember_decision(request.scope, decision)
        decision.raise_if_refused()
        if permission is not None and permission not in principal.scopes:
            raise PermissionRequired(permission, app=True)
        return principal

    return dependency


LightRead = Annotated[Principal, Depends(guard(RateGroup.LIGHT, "ReadAccounts"))]
MediumRead = Annotated[Principal, Depends(guard(RateGroup.MEDIUM, "ReadAccounts"))]
HeavyVoip = Annotated[Principal, Depends(guard(RateGroup.HEAVY, "VoipCalling"))]


def get_request_uri(request: Request, base_url: BaseUrl) -> str:
    """The absolute URI of this request under the public base URL (for ``uri`` fields)."""
    query = request.url.query
    return f"{base_url}{request.url.path}" + (f"?{query}" if query else "")


RequestUri = Annotated[str, Depends(get_request_uri)]


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiCaller:
    """The :class:`~callwatch.pbx.control.Caller` of a request: the token owner."""

    account_id: int
    extension_id: int
    is_admin: bool
    """The owner's extension is an administrator (read from the store on each request)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallContext:
    """What a call-control route needs: the service, the caller and the token."""

    calls: CallControl
    caller: ApiCaller
    principal: Principal


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtensionCallContext(CallContext):
    """A :class:`CallContext` for a route under ``…/extension/{extensionId}``."""

    extension: Extension
    """The extension the path names, checked to belong to the caller's account."""


AccountRef = Annotated[str, Path(alias="accountId", description="account id or ~")]
ExtensionRef = Annotated[str, Path(alias="extensionId", description="extension id or ~")]


def call_guard(
    group: RateGroup, permission: str
) -> Callable[[Request, ApiServices, str], CallContext]:
    """A dependency: :func:`guard`, then the call-control context of the request.

    Raises (from the dependency), besides those of :func:`guard`:
        ServiceUnavailable: 503 CMN-201, no call control is configured.
        ResourceNotFound: 404 CMN-102, ``{accountId}`` is not ``~`` or the caller's account.
        InvalidParameter: 400 CMN-101, ``{accountId}`` is not numeric.
    """
    authenticate = guard(group, permission)

    def dependency(request: Request, services: Services, account_ref: AccountRef) -> CallContext:
        return _call_context(authenticate(request, services), services, account_ref)

    return dependency


def extension_call_guard(
    group: RateGroup, permission: str
) -> Callable[[Request, ApiServices, str, str], ExtensionCallContext]:
    """Like :func:`call_guard`, and resolves ``{extensionId}`` (``~`` = the token owner).

    Raises (from the dependency), besides those of :func:`call_guard`:
        ResourceNotFound: 404 CMN-102, no such extension in the caller's account.
    """
    authenticate = guard(group, permission)

    def dependency(
        request: Request, services: Services, account_ref: AccountRef, extension_ref: ExtensionRef
    ) -> ExtensionCallContext:
        principal = authenticate(request, services)
        context = _call_context(principal, services, account_ref)
        extension = services.directory.extension(principal, account_ref, extension_ref)
        return ExtensionCallContext(
            calls=context.calls,
            caller=context.caller,
            principal=principal,
            extension=extension,
        )

    return dependency


def _call_context(principal: Principal, services: ApiServices, account_ref: str) -> CallContext:
    if services.calls is None:
        raise ServiceUnavailable()
    services.directory.account(principal, account_ref)
    owner = services.directory.caller(principal)
    caller = ApiCaller(
        account_id=principal.account_id,
        extension_id=principal.extension_id,
        is_admin=owner.is_admin,
    )
    return CallContext(calls=services.calls, caller=caller, principal=principal)


CallControlAccess = Annotated[CallContext, Depends(call_guard(RateGroup.LIGHT, "CallControl"))]
AccountPresenceRead = Annotated[CallContext, Depends(call_guard(RateGroup.HEAVY, "ReadPresence"))]
PresenceRead = Annotated[
    ExtensionCallContext, Depends(extension_call_guard(RateGroup.LIGHT, "ReadPresence"))
]
PresenceEdit = Annotated[
    ExtensionCallContext, Depends(extension_call_guard(RateGroup.MEDIUM, "EditPresence"))
]
