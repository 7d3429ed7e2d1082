"""REST requests tunnelled over the WebSocket gateway: the subscription paths (ringcentral-api.md
§4.5).

One :class:`SubscriptionTunnel` per connection answers its ClientRequests:

========  =====================================================  ===============================
POST      ``/restapi/v1.0/subscription`` (and ``…/subscription/``)  create (replaces the session's)
GET       ``/restapi/v1.0/subscription``                          list
GET       ``/restapi/v1.0/subscription/{id}``                     read
PUT       ``/restapi/v1.0/subscription/{id}``                     new filters (this session's only)
DELETE    ``/restapi/v1.0/subscription/{id}``                     remove (reply ``[meta]``, 204)
POST      ``/restapi/v1.0/subscription/{id}/renew``               renew
========  =====================================================  ===============================

Replies echo the ``messageId`` and always carry ``headers`` with ``RCRequestId``,
``Content-Type: application/json`` and, when the request concerned a subscription,
``WSG-SubscriptionId`` (the Python SDK 0.9.2 fires ``subscriptionCreated`` only on that
header). Errors reply with their HTTP status and the RingCentral error body; other paths get
404 CMN-120, other methods on these paths 405. Nothing escapes as an exception: an unexpected
one is logged and answered 500 CMN-203, and the connection keeps serving.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from callwatch.api.errors import ApiError, InternalError, UnknownRoute, from_validation
from callwatch.api.schemas.subscriptions import (
    SUBSCRIPTION_PATH,
    CreateSubscriptionRequest,
    SubscriptionInfo,
    UpdateSubscriptionRequest,
    subscription_info,
)
from callwatch.clock import Clock
from callwatch.events.errors import (
    InvalidSubscriptionField,
    SubscriptionError,
    SubscriptionNotFound,
)
from callwatch.events.notifications import JsonValue
from callwatch.events.service import NotificationService
from callwatch.events.subscriptions import WEBSOCKET
from callwatch.events.websocket import WsSession
from callwatch.events.wsframes import ClientRequest, client_reply
from callwatch.store.repo import SubscriptionRecord

logger = logging.getLogger(__name__)

_COLLECTION = re.compile(re.escape(SUBSCRIPTION_PATH) + "/?")
_ITEM = re.compile(re.escape(SUBSCRIPTION_PATH) + "/([^/]{1,64})")
_RENEW = re.compile(re.escape(SUBSCRIPTION_PATH) + "/([^/]{1,64})/renew")
_M = TypeVar("_M", bound=BaseModel)

Reply = tuple[int, object, str | None]
"""HTTP status, body (None: no body), subscription id for ``WSG-SubscriptionId``."""


class SubscriptionTunnel:
    """Answers the ClientRequests of one WebSocket session."""

    def __init__(
        self,
        *,
        notifications: NotificationService,
        session: WsSession,
        clock: Clock,
        request_ids: Callable[[], str],
    ) -> None:
        self._service = notifications.subscriptions
        self._session = session
        self._clock = clock
        self._request_ids = request_ids

    async def __call__(self, request: ClientRequest) -> str:
        """The reply frame of ``request``."""
        try:
            status, body, subscription_id = await self._route(request)
        except SubscriptionError as exc:
            status, body, subscription_id = exc.status, exc.body(), None
        except ApiError as exc:
            status, body, subscription_id = exc.status_code, exc.body(), None
        except Exception:
            logger.exception("! %s %s over the WebSocket gateway", request.method, request.path)
            error = InternalError()
            status, body, subscription_id = error.status_code, error.body(), None
        headers = {"RCRequestId": self._request_ids(), "Content-Type": "application/json"}
        if subscription_id is not None:
            headers["WSG-SubscriptionId"] = subscription_id
        return client_reply(
            message_id=request.message_id, status=status, headers=headers, body=body
        )

    async def _route(self, request: ClientRequest) -> Reply:
        method, path = request.method, request.path
        if _COLLECTION.fullmatch(path):
            if method == "POST":
                return await self._create(request.body)
            if method == "GET":
                return await self._list()
        elif match := _RENEW.fullmatch(path):
            if method == "POST":
                owner = self._session.owner
                return self._info(
                    await self._service.renew(owner, match.group(1), over_websocket=True)
                )
        elif match := _ITEM.fullmatch(path):
            subscription_id = match.group(1)
            if method == "GET":
                return self._info(await self._service.get(self._session.owner, subscription_id))
            if method == "PUT":
                return await self._update(subscription_id, request.body)
            if method == "DELETE":
                return await self._delete(subscription_id)
        else:
            raise UnknownRoute(f"Resource [{path}] is not found or not available over WebSocket")
        raise ApiError(
            f"Method [{method}] is not allowed for this resource",
            error_code="CMN-120",
            status_code=405,
        )

    async def _create(self, body: JsonValue) -> Reply:
        payload = _parse(CreateSubscriptionRequest, body)
        if payload.delivery_mode.transport_type != WEBSOCKET:
            raise InvalidSubscriptionField(
                "deliveryMode.transportType",
                "Only WebSocket subscriptions are created over the WebSocket connection",
            )
        session = self._session
        previous = session.subscription_id
        record = await self._service.create_websocket(
            session.owner, payload.event_filters, sink=session
        )
        if previous is not None:
            self._service.drop(previous)  # one subscription per connection: the new one wins
        session.subscription_id = record.id
        return self._info(record)

    async def _list(self) -> Reply:
        records = await self._service.owned(self._session.owner)
        now = self._now()
        body = {
            "uri": SUBSCRIPTION_PATH,
            "records": [_json(subscription_info(r, base="", now=now)) for r in records],
        }
        return 200, body, None

    async def _update(self, subscription_id: str, body: JsonValue) -> Reply:
        self._require_own(subscription_id)
        payload = _parse(UpdateSubscriptionRequest, {} if body is None else body)
        record = await self._service.update(
            self._session.owner,
            subscription_id,
            filters=payload.event_filters,
            expires_in=payload.expires_in,
            over_websocket=True,
        )
        return self._info(record)

    async def _delete(self, subscription_id: str) -> Reply:
        self._require_own(subscription_id)
        await self._service.delete(self._session.owner, subscription_id)
        return 204, None, subscription_id

    def _require_own(self, subscription_id: str) -> None:
        if subscription_id != self._session.subscription_id:
            raise SubscriptionNotFound()

    def _info(self, record: SubscriptionRecord) -> Reply:
        return 200, _json(subscription_info(record, base="", now=self._now())), record.id

    def _now(self) -> float:
        return self._clock.utcnow().timestamp()


def _parse(model: type[_M], body: JsonValue) -> _M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise from_validation([_location_in_body(e) for e in exc.errors()]) from None


def _location_in_body(error: object) -> dict[str, object]:
    """Pydantic's error with ``body`` prepended to its location, as FastAPI reports it."""
    assert isinstance(error, dict)
    return {**error, "loc": ("body", *error.get("loc", ()))}


def _json(info: SubscriptionInfo) -> JsonValue:
    dumped: JsonValue = info.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped
