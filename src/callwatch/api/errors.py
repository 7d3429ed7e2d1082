"""The RingCentral error body and the exception handlers that produce it.

Every error response is the union of RingCentral's two shapes (ringcentral-api.md §2.12)::

    {"errorCode": "CMN-102", "message": "…",
     "errors": [{"errorCode": "CMN-102", "message": "…", "parameterName": "extensionId"}],
     "parameterName": "extensionId"}

OAuth endpoint errors add RFC 6749's ``error`` and ``error_description`` (§2.1).

Hierarchy (each class fixes a status and code; instances may override the code)::

    ApiError                 400 CMN-101, base class
    ├── InvalidParameter     400 CMN-101 "Parameter [x] value is invalid"
    ├── MalformedJson        400 CMN-103
    ├── ResourceNotFound     404 CMN-102 "Resource for parameter [x] is not found"
    ├── UnknownRoute         404 CMN-120
    ├── PermissionRequired   403 CMN-401 (app permission) / CMN-408 (user permission)
    ├── RateLimitExceeded    429 CMN-301, with Retry-After
    ├── ServiceUnavailable   503 CMN-201, a service the route needs is not configured
    ├── AuthenticationError  401 OAU-1xx, bearer token problems, with WWW-Authenticate
    ├── OAuthError           400/401/403/415, token endpoint problems
    └── InternalError        500 CMN-203; the message never carries exception details

Call-control errors (:class:`callwatch.pbx.errors.PbxError`) keep their own ``code`` and
``status``; their ``parameter`` becomes ``parameterName``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from callwatch.pbx.errors import PbxError
from callwatch.store.errors import DuplicateRecord, InvalidRecord, RecordNotFound, StoreError

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the API reports with the RingCentral error body."""

    status_code = 400
    error_code = "CMN-101"

    def __init__(
        self,
        message: str,
        *,
        error_code: str | None = None,
        status_code: int | None = None,
        parameter_name: str | None = None,
        attributes: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if error_code is not None:
            self.error_code = error_code
        if status_code is not None:
            self.status_code = status_code
        self.attributes = dict(attributes or {})
        if parameter_name is not None:
            self.attributes["parameterName"] = parameter_name
        self.headers = dict(headers or {})

    def body(self) -> dict[str, object]:
        """The JSON error body."""
        item: dict[str, object] = {"errorCode": self.error_code, "message": self.message}
        item.update(self.attributes)
        body: dict[str, object] = {**item, "errors": [dict(item)]}
        return body


class InvalidParameter(ApiError):
    """A request parameter has an invalid value."""

    def __init__(self, parameter: str, message: str | None = None) -> None:
        super().__init__(
            message or f"Parameter [{parameter}] value is invalid", parameter_name=parameter
        )


class MalformedJson(ApiError):
    error_code = "CMN-103"


class ResourceNotFound(ApiError):
    """The resource a path parameter names does not exist (or is not visible to the caller)."""

    status_code = 404
    error_code = "CMN-102"

    def __init__(self, parameter: str) -> None:
        super().__init__(
            f"Resource for parameter [{parameter}] is not found", parameter_name=parameter
        )


class UnknownRoute(ApiError):
    status_code = 404
    error_code = "CMN-120"


class PermissionRequired(ApiError):
    """The app (CMN-401) or the user (CMN-408) lacks a permission."""

    status_code = 403

    def __init__(self, permission: str, *, app: bool) -> None:
        who = "application" if app else "user"
        message = (
            f"In order to call this API endpoint, {who} needs to have [{permission}] permission"
        )
        super().__init__(
            message,
            error_code="CMN-401" if app else "CMN-408",
            attributes={"permissionName": permission},
        )


class RateLimitExceeded(ApiError):
    status_code = 429
    error_code = "CMN-301"

    def __init__(self, retry_after: int) -> None:
        super().__init__("Request rate exceeded", headers={"Retry-After": str(retry_after)})


class AuthenticationError(ApiError):
    """The bearer token is missing, malformed, unknown, revoked or expired."""

    status_code = 401

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(
            message,
            error_code=error_code,
            headers={"WWW-Authenticate": 'Bearer realm="callwatch"'},
        )


class OAuthError(ApiError):
    """A token or revoke endpoint error; also carries RFC 6749 ``error``/``error_description``."""

    def __init__(
        self,
        error: str,
        error_code: str,
        message: str,
        *,
        status_code: int = 400,
        parameter_name: str | None = None,
    ) -> None:
        super().__init__(
            message, error_code=error_code, status_code=status_code, parameter_name=parameter_name
        )
        self.error = error

    def body(self) -> dict[str, object]:
        return {"error": self.error, "error_description": self.message, **super().body()}


class ServiceUnavailable(ApiError):
    status_code = 503
    error_code = "CMN-201"

    def __init__(self) -> None:
        super().__init__("Service Temporary Unavailable")


class InternalError(ApiError):
    status_code = 500
    error_code = "CMN-203"

    def __init__(self) -> None:
        super().__init__("Internal Server Error")


def error_response(error: ApiError) -> JSONResponse:
    """The JSON response for ``error``."""
    return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers)


def from_validation(errors: Sequence[Mapping[str, object]]) -> ApiError:
    """Map FastAPI/pydantic validation errors to CMN-103 (bad JSON) or CMN-101 (bad value)."""
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        return MalformedJson("Request body is not valid JSON")
    loc = first.get("loc")
    location = tuple(loc) if isinstance(loc, tuple | list) else ()
    return InvalidParameter(_parameter_name(location))


def from_store_error(error: StoreError) -> ApiError:
    """Map a store error that escaped a service."""
    if isinstance(error, RecordNotFound):
        return ApiError(str(error), error_code="CMN-102", status_code=404)
    if isinstance(error, DuplicateRecord):
        return ApiError("Resource already exists", status_code=409)
    if isinstance(error, InvalidRecord):
        return ApiError(str(error))
    return InternalError()


def from_pbx_error(error: PbxError) -> ApiError:
    """Map a call-control error to the RingCentral body with its code and status."""
    return ApiError(
        error.message,
        error_code=error.code,
        status_code=error.status,
        parameter_name=error.parameter,
    )


def _parameter_name(location: tuple[object, ...]) -> str:
    if len(location) < 2:
        return "body"
    name = str(location[1])
    if location[0] != "body":
        return name
    for part in location[2:]:
        name += f"[{part}]" if isinstance(part, int) else f".{part}"
    return name


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        error: ApiError = UnknownRoute("Resource not found")
    elif exc.status_code == 405:
        error = ApiError(
            f"Method [{request.method}] is not allowed for this resource",
            error_code="CMN-120",
            status_code=405,
        )
    else:
        error = ApiError(str(exc.detail), status_code=exc.status_code)
    error.headers.update(exc.headers or {})
    return error_response(error)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(from_validation(list(exc.errors())))


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StoreError)
    return error_response(from_store_error(exc))


async def _pbx_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PbxError)
    return error_response(from_pbx_error(exc))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.error("! unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(InternalError())


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every error into the RingCentral body."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(PbxError, _pbx_error)
    app.add_exception_handler(Exception, _unexpected_error)
