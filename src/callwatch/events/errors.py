"""Errors of subscriptions and the WebSocket gateway, with RingCentral codes and statuses.

Each error carries what the RingCentral error body needs (ringcentral-api.md §2.12); the REST
layer and the WebSocket gateway both render it with :meth:`SubscriptionError.body`::

    SubscriptionError            400 CMN-101, base class
    ├── InvalidFilters           400 SUB-508 "Invalid event filters: [f1, f2]"
    ├── InvalidSubscriptionField 400 CMN-101 "Parameter [x] value is invalid"
    │   └── AddressNotAllowed    400 CMN-101 deliveryMode.address "…: address is not allowed"
    ├── FilterForbidden          403 SUB-405 / SUB-406 / SUB-408 / SUB-402, CMN-401 (app perm.)
    ├── TooManySubscriptions     403 SUB-505
    ├── SubscriptionNotFound     404 CMN-102 (unknown, or another owner's)
    ├── SubscriptionExpired      404 SUB-507
    ├── WebhookRejected          400 SUB-525 (handshake) / SUB-524 (TLS)
    └── Unavailable              503 CMN-201 (a node-wide table is full)

Codes where RingCentral publishes none are our choice and documented at the raise site.
"""

from __future__ import annotations

from collections.abc import Sequence

ErrorBody = dict[str, object]


class SubscriptionError(Exception):
    """An error reported to the client with the RingCentral error body."""

    status = 400
    code = "CMN-101"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        parameter: str | None = None,
        permission: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.parameter = parameter
        self.permission = permission

    def body(self) -> ErrorBody:
        """``{errorCode, message, errors:[{…}], parameterName?, permissionName?}``."""
        return error_body(
            self.code, self.message, parameter=self.parameter, permission=self.permission
        )


def error_body(
    code: str, message: str, *, parameter: str | None = None, permission: str | None = None
) -> ErrorBody:
    """The union of RingCentral's two error shapes (ringcentral-api.md §2.12)."""
    item: dict[str, object] = {"errorCode": code, "message": message}
    if parameter is not None:
        item["parameterName"] = parameter
    if permission is not None:
        item["permissionName"] = permission
    return {**item, "errors": [dict(item)]}


class InvalidFilters(SubscriptionError):
    code = "SUB-508"

    def __init__(self, filters: Sequence[str], reason: str | None = None) -> None:
        listed = ", ".join(filters)
        message = f"Invalid event filters: [{listed}]"
        super().__init__(f"{message} ({reason})" if reason else message, parameter="eventFilters")


class InvalidSubscriptionField(SubscriptionError):
    def __init__(self, parameter: str, message: str | None = None) -> None:
        super().__init__(
            message or f"Parameter [{parameter}] value is invalid", parameter=parameter
        )


class AddressNotAllowed(InvalidSubscriptionField):
    """The WebHook address is refused by the operator's address policy (ours: RingCentral
    documents no code; CMN-101 is its "parameter value invalid"). The reason is one of a few
    fixed phrases — never the addresses a name resolved to, which would let users map internal
    DNS through error messages; the log has those."""

    def __init__(self, reason: str = "address is not allowed") -> None:
        parameter = "deliveryMode.address"
        super().__init__(parameter, f"Parameter [{parameter}] value is invalid: {reason}")


class FilterForbidden(SubscriptionError):
    status = 403


class TooManySubscriptions(SubscriptionError):
    status = 403
    code = "SUB-505"

    def __init__(self, limit: int) -> None:
        super().__init__(f"Subscriptions limit exceeded ({limit} per user per application)")


class SubscriptionNotFound(SubscriptionError):
    status = 404
    code = "CMN-102"

    def __init__(self) -> None:
        super().__init__(
            "Resource for parameter [subscriptionId] is not found", parameter="subscriptionId"
        )


class SubscriptionExpired(SubscriptionError):
    status = 404
    code = "SUB-507"

    def __init__(self, subscription_id: str) -> None:
        super().__init__(f"Subscription with key [{subscription_id}] was expired")


class WebhookRejected(SubscriptionError):
    """The WebHook address failed the creation handshake (ringcentral-api.md §3.5)."""

    code = "SUB-525"

    def __init__(self, detail: str, *, tls: bool = False) -> None:
        if tls:
            super().__init__(f"HTTPS certificate is not valid: {detail}", code="SUB-524")
        else:
            super().__init__(f"WebHook server response is invalid: {detail}")
        self.detail = detail


class Unavailable(SubscriptionError):
    status = 503
    code = "CMN-201"

    def __init__(self, what: str) -> None:
        super().__init__(f"Service Temporary Unavailable ({what})")
