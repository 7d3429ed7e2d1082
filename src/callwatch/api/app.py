"""The FastAPI application: composition of the REST surface from injected services.

``create_app`` is the API's part of the composition root: it builds the token issuer, the OAuth,
directory and SIP-provisioning services and the rate limiter from what it is given, keeps them
in one :class:`~callwatch.api.deps.ApiServices` on ``app.state.services``, installs the
RingCentral error handlers and the rate-limit middleware, and includes one router per resource.
Nothing is created at import time. OpenAPI docs are served at ``/docs`` and ``/openapi.json``.
"""

from __future__ import annotations

from fastapi import FastAPI

from callwatch import __version__
from callwatch.api.deps import ApiServices, DeviceStatusProvider, SipListeners
from callwatch.api.directory import DirectoryService
from callwatch.api.errors import install_error_handlers
from callwatch.api.monitoring import MonitoringService
from callwatch.api.oauth_service import OAuthService
from callwatch.api.ratelimit import RateLimiter, RateLimitMiddleware
from callwatch.api.routes import ROUTERS
from callwatch.api.routes.subscriptions import subscription_error_response
from callwatch.api.sip_provisioning import SipProvisioningService
from callwatch.api.tokens import TokenIssuer
from callwatch.clock import Clock
from callwatch.config import Settings
from callwatch.events.errors import SubscriptionError
from callwatch.events.service import NotificationService
from callwatch.ids import IdGenerator
from callwatch.pbx.control import CallControl
from callwatch.store.jwt_credentials import signing_key
from callwatch.store.repo import Store

MAX_BODY_BYTES = 1024 * 1024
"""Largest request body accepted (rule 8); the token endpoint has its own smaller limit."""


def create_app(
    *,
    store: Store,
    settings: Settings,
    clock: Clock,
    ids: IdGenerator,
    sip: SipListeners,
    device_status: DeviceStatusProvider,
    calls: CallControl | None = None,
    notifications: NotificationService | None = None,
) -> FastAPI:
    """Build the REST application.

    Args:
        store: configuration store (accounts, extensions, devices, apps, tokens, …).
        settings: token lifetimes, rate limits and ``api.public_url`` are read from it.
        clock: the only time source (token expiry, rate-limit windows).
        ids: random source for tokens, session ids and new devices.
        sip: where the SIP stack listens; read on every request.
        device_status: registration state of devices (the SIP registrar).
        calls: telephony sessions, parties and presence (the pbx); without it those routes
            answer 503 CMN-201.
        notifications: subscriptions and the WebSocket gateway, started and stopped by the
            composition root; without it those routes answer 503 CMN-201.
    """
    services = build_services(
        store=store,
        settings=settings,
        clock=clock,
        ids=ids,
        sip=sip,
        device_status=device_status,
        calls=calls,
        notifications=notifications,
    )
    app = FastAPI(
        title="callwatch REST API",
        version=__version__,
        description="RingCentral-compatible call supervision API",
        max_body_size=MAX_BODY_BYTES,
    )
    app.state.services = services
    install_error_handlers(app)
    app.add_exception_handler(SubscriptionError, subscription_error_response)
    app.add_middleware(RateLimitMiddleware, limiter=services.limiter)
    for router in ROUTERS:
        app.include_router(router)
    return app


def build_services(
    *,
    store: Store,
    settings: Settings,
    clock: Clock,
    ids: IdGenerator,
    sip: SipListeners,
    device_status: DeviceStatusProvider,
    calls: CallControl | None = None,
    notifications: NotificationService | None = None,
) -> ApiServices:
    """Wire the API services; exposed so other API routers' tests can reuse the wiring."""
    tokens = TokenIssuer(tokens=store.tokens, clock=clock, ids=ids)
    oauth = OAuthService(
        store=store,
        issuer=tokens,
        clock=clock,
        jwt_key=signing_key(store, ids),
        access_ttl=settings.api.access_token_ttl,
        refresh_ttl=settings.api.refresh_token_ttl,
    )
    limiter = RateLimiter(
        limits=settings.api.rate_limits,
        window=settings.api.rate_window,
        penalty=settings.api.rate_penalty,
        clock=clock,
    )
    directory = DirectoryService(store=store)
    return ApiServices(
        settings=settings,
        clock=clock,
        sip=sip,
        device_status=device_status,
        tokens=tokens,
        oauth=oauth,
        directory=directory,
        sip_provisioning=SipProvisioningService(store=store, ids=ids, sip=sip),
        monitoring=MonitoringService(store=store, directory=directory, ids=ids),
        limiter=limiter,
        calls=calls,
        notifications=notifications,
    )
