"""Shared schema pieces: the camelCase base model, error bodies, paging and navigation."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """Base of RingCentral JSON models: snake_case attributes, camelCase on the wire."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True
    )


class ErrorItem(ApiModel):
    error_code: str
    message: str
    parameter_name: str | None = None


class ErrorResponse(ApiModel):
    """The RingCentral error body (documentation only; errors are built in ``api.errors``)."""

    error_code: str
    message: str
    errors: list[ErrorItem]
    parameter_name: str | None = None


class OAuthErrorResponse(ErrorResponse):
    """Token endpoint errors add RFC 6749 fields."""

    error: str
    error_description: str = Field(alias="error_description")


class PageLink(ApiModel):
    uri: str


class Navigation(ApiModel):
    first_page: PageLink | None = None
    next_page: PageLink | None = None
    previous_page: PageLink | None = None
    last_page: PageLink | None = None


class Paging(ApiModel):
    page: int
    total_pages: int
    per_page: int
    total_elements: int
    page_start: int | None = None
    """Zero-based index of the first record on this page (absent on an empty page)."""
    page_end: int | None = None


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorResponse, "description": "Invalid parameter (CMN-101) or JSON (CMN-103)"},
    401: {"model": ErrorResponse, "description": "Missing, invalid or expired bearer token"},
    403: {"model": ErrorResponse, "description": "Permission required (CMN-401/CMN-408)"},
    404: {"model": ErrorResponse, "description": "Resource not found (CMN-102)"},
    429: {"model": ErrorResponse, "description": "Request rate exceeded (CMN-301)"},
}
"""``responses=`` for routers, so the OpenAPI document shows the error body."""
