"""Notification subscriptions over REST (ringcentral-api.md §1 rows 29–34, §2.11).

WebHook subscriptions only: a WebSocket subscription is created over the WebSocket connection
itself (400 CMN-101 here, as RingCentral documents). Create, update and delete count in the
Medium rate-limit group, list and read in Light; the app permission is checked per filter by
the subscription service. Every subscription error answers with the RingCentral error body
(:func:`subscription_error_response`, installed by ``create_app``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Request, Response
from fastapi.responses import JSONResponse

from callwatch.api.deps import ApiServices, BaseUrl, Services, guard
from callwatch.api.errors import ApiError, ServiceUnavailable, error_response
from callwatch.api.ratelimit import RateGroup
from callwatch.api.schemas.common import ERROR_RESPONSES
from callwatch.api.schemas.subscriptions import (
    SUBSCRIPTION_PATH,
    CreateSubscriptionRequest,
    SubscriptionInfo,
    SubscriptionList,
    UpdateSubscriptionRequest,
    subscription_info,
)
from callwatch.api.tokens import Principal
from callwatch.events.errors import InvalidSubscriptionField, SubscriptionError
from callwatch.events.service import NotificationService
from callwatch.events.subscriptions import WEBHOOK, WEBSOCKET, Owner

router = APIRouter(prefix=SUBSCRIPTION_PATH, tags=["Subscriptions"], responses=ERROR_RESPONSES)


def owner_of(principal: Principal, services: ApiServices) -> Owner:
    """The subscription owner a token speaks for (admin flag read from the store)."""
    return Owner(
        account_id=principal.account_id,
        extension_id=principal.extension_id,
        client_id=principal.client_id,
        scopes=principal.scopes,
        session_id=principal.session_id,
        is_admin=services.directory.caller(principal).is_admin,
    )


def notifications_of(services: ApiServices) -> NotificationService:
    """The notification service, or 503 CMN-201 when none is configured."""
    if services.notifications is None:
        raise ServiceUnavailable()
    return services.notifications


def owner_guard(group: RateGroup) -> Callable[[Request, ApiServices], Owner]:
    """A dependency: :func:`~callwatch.api.deps.guard` (no app permission), then the owner."""
    authenticate = guard(group, None)

    def dependency(request: Request, services: Services) -> Owner:
        principal = authenticate(request, services)
        notifications_of(services)
        return owner_of(principal, services)

    return dependency


def to_api_error(error: SubscriptionError) -> ApiError:
    """The API error of a subscription error (same code, status and attributes)."""
    attributes = {"permissionName": error.permission} if error.permission else None
    return ApiError(
        error.message,
        error_code=error.code,
        status_code=error.status,
        parameter_name=error.parameter,
        attributes=attributes,
    )


async def subscription_error_response(request: Request, exc: Exception) -> JSONResponse:
    """Exception handler: a :class:`SubscriptionError` as the RingCentral error body."""
    assert isinstance(exc, SubscriptionError)
    return error_response(to_api_error(exc))


LightOwner = Annotated[Owner, Depends(owner_guard(RateGroup.LIGHT))]
MediumOwner = Annotated[Owner, Depends(owner_guard(RateGroup.MEDIUM))]
SubscriptionId = Annotated[str, Path(alias="subscriptionId", max_length=64)]
UpdateBody = Annotated[UpdateSubscriptionRequest | None, Body()]


@router.post(
    "",
    response_model=SubscriptionInfo,
    response_model_exclude_none=True,
    operation_id="createSubscription",
)
@router.post(
    "/", response_model=SubscriptionInfo, response_model_exclude_none=True, include_in_schema=False
)
async def create_subscription(
    body: CreateSubscriptionRequest, owner: MediumOwner, services: Services, base_url: BaseUrl
) -> SubscriptionInfo:
    """Create a WebHook subscription (after the Validation-Token handshake)."""
    mode = body.delivery_mode
    if mode.transport_type == WEBSOCKET:
        raise InvalidSubscriptionField(
            "deliveryMode.transportType",
            "WebSocket subscriptions are created over the WebSocket connection",
        )
    if mode.transport_type != WEBHOOK:
        raise InvalidSubscriptionField("deliveryMode.transportType")
    record = await notifications_of(services).subscriptions.create_webhook(
        owner,
        body.event_filters,
        address=mode.address,
        verification_token=mode.token,
        expires_in=body.expires_in,
    )
    return subscription_info(record, base=base_url, now=_now(services))


@router.get(
    "",
    response_model=SubscriptionList,
    response_model_exclude_none=True,
    operation_id="listSubscriptions",
)
async def list_subscriptions(
    owner: LightOwner, services: Services, base_url: BaseUrl
) -> SubscriptionList:
    """The caller's (user and app) unexpired subscriptions."""
    records = await notifications_of(services).subscriptions.owned(owner)
    now = _now(services)
    return SubscriptionList(
        uri=f"{base_url}{SUBSCRIPTION_PATH}",
        records=[subscription_info(r, base=base_url, now=now) for r in records],
    )


@router.get(
    "/{subscriptionId}",
    response_model=SubscriptionInfo,
    response_model_exclude_none=True,
    operation_id="readSubscription",
)
async def read_subscription(
    subscription_id: SubscriptionId, owner: LightOwner, services: Services, base_url: BaseUrl
) -> SubscriptionInfo:
    """One subscription (404 SUB-507 once expired)."""
    record = await notifications_of(services).subscriptions.get(owner, subscription_id)
    return subscription_info(record, base=base_url, now=_now(services))


@router.put(
    "/{subscriptionId}",
    response_model=SubscriptionInfo,
    response_model_exclude_none=True,
    operation_id="updateSubscription",
)
async def update_subscription(
    subscription_id: SubscriptionId,
    owner: MediumOwner,
    services: Services,
    base_url: BaseUrl,
    body: UpdateBody = None,
) -> SubscriptionInfo:
    """New event filters and/or expiry; an empty body renews."""
    update = body or UpdateSubscriptionRequest()
    record = await notifications_of(services).subscriptions.update(
        owner, subscription_id, filters=update.event_filters, expires_in=update.expires_in
    )
    return subscription_info(record, base=base_url, now=_now(services))


@router.post(
    "/{subscriptionId}/renew",
    response_model=SubscriptionInfo,
    response_model_exclude_none=True,
    operation_id="renewSubscription",
)
async def renew_subscription(
    subscription_id: SubscriptionId, owner: MediumOwner, services: Services, base_url: BaseUrl
) -> SubscriptionInfo:
    """Extend the subscription by its expiresIn from now."""
    record = await notifications_of(services).subscriptions.renew(owner, subscription_id)
    return subscription_info(record, base=base_url, now=_now(services))


@router.delete("/{subscriptionId}", status_code=204, operation_id="deleteSubscription")
async def delete_subscription(
    subscription_id: SubscriptionId, owner: MediumOwner, services: Services
) -> Response:
    """Cancel a subscription: nothing more is delivered."""
    await notifications_of(services).subscriptions.delete(owner, subscription_id)
    return Response(status_code=204)


def _now(services: ApiServices) -> float:
    return services.clock.utcnow().timestamp()
