"""Subscriptions and the WebSocket token (ringcentral-api.md §2.3, §2.11; SPEC
CreateSubscriptionRequest, UpdateSubscriptionRequest, SubscriptionInfo, WsTokenResponse).

Used by the REST routes and by requests tunnelled over the WebSocket gateway alike. A WebHook's
``verificationToken`` is write-only; older DOCS samples call it ``validationToken`` and both are
accepted. Over REST, ``uri`` is absolute; over the gateway it is relative, as RingCentral's
captured replies show.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field

from callwatch.api.schemas.common import ApiModel
from callwatch.api.schemas.telephony import format_time
from callwatch.store.repo import SubscriptionRecord

SUBSCRIPTION_PATH = "/restapi/v1.0/subscription"
MAX_ADDRESS_LENGTH = 2048
MAX_TOKEN_LENGTH = 256


class DeliveryModeRequest(ApiModel):
    """``deliveryMode`` of a create request."""

    transport_type: str = Field(max_length=32)
    address: str | None = Field(default=None, max_length=MAX_ADDRESS_LENGTH)
    verification_token: str | None = Field(default=None, max_length=MAX_TOKEN_LENGTH)
    validation_token: str | None = Field(default=None, max_length=MAX_TOKEN_LENGTH)
    """The older name of ``verificationToken``."""
    encryption: bool | None = None

    @property
    def token(self) -> str | None:
        """The verification token under either name."""
        return self.verification_token or self.validation_token


class CreateSubscriptionRequest(ApiModel):
    event_filters: list[str] = Field(max_length=1000)
    delivery_mode: DeliveryModeRequest
    expires_in: int | None = None


class UpdateSubscriptionRequest(ApiModel):
    """PUT body; an empty body renews. Other fields (deliveryMode…) are ignored."""

    event_filters: list[str] | None = Field(default=None, max_length=1000)
    expires_in: int | None = None


class DeliveryModeInfo(ApiModel):
    transport_type: str
    address: str | None = None
    encryption: bool = False


class BlacklistedData(ApiModel):
    blacklisted_at: str
    reason: str


class SubscriptionInfo(ApiModel):
    """SubscriptionInfo."""

    uri: str
    id: str
    event_filters: list[str]
    expiration_time: str
    expires_in: int
    status: str
    creation_time: str
    delivery_mode: DeliveryModeInfo
    blacklisted_data: BlacklistedData | None = None


class SubscriptionList(ApiModel):
    uri: str
    records: list[SubscriptionInfo]


class WsTokenResponse(BaseModel):
    """WsTokenResponse — snake_case on the wire, like the token endpoint."""

    ws_access_token: str
    uri: str
    """The gateway URL without a query string (clients append ``?access_token=…``)."""
    expires_in: int


def subscription_info(record: SubscriptionRecord, *, base: str, now: float) -> SubscriptionInfo:
    """The SubscriptionInfo of ``record``.

    Args:
        base: prefix of ``uri`` (the public base URL, or "" for a relative uri).
        now: the current time (POSIX seconds), for the remaining ``expiresIn``.
    """
    blacklisted = None
    if record.blacklisted_at is not None:
        blacklisted = BlacklistedData(
            blacklisted_at=_time(record.blacklisted_at), reason=record.blacklist_reason or ""
        )
    return SubscriptionInfo(
        uri=f"{base}{SUBSCRIPTION_PATH}/{record.id}",
        id=record.id,
        event_filters=list(record.event_filters),
        expiration_time=_time(record.expires_at),
        expires_in=max(0, int(record.expires_at - now)),
        status=record.status,
        creation_time=_time(record.created_at),
        delivery_mode=DeliveryModeInfo(transport_type=record.transport, address=record.address),
        blacklisted_data=blacklisted,
    )


def _time(timestamp: float) -> str:
    return format_time(datetime.fromtimestamp(timestamp, UTC))
