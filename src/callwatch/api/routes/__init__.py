"""One router per RingCentral resource; :data:`ROUTERS` is what ``create_app`` includes."""

from __future__ import annotations

from fastapi import APIRouter

from callwatch.api.routes import (
    devices,
    extensions,
    monitoring_groups,
    oauth,
    presence,
    sip_provision,
    subscriptions,
    supervise,
    telephony,
    wsgateway,
)

ROUTERS: tuple[APIRouter, ...] = (
    oauth.router,
    extensions.router,
    devices.router,
    sip_provision.router,
    monitoring_groups.router,
    presence.router,
    telephony.router,
    supervise.router,
    subscriptions.router,
    wsgateway.router,
)
