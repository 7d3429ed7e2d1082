"""Account and extension reads (ringcentral-api.md §1 rows 4–5, §2.4)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from callwatch.api.deps import BaseUrl, LightRead, MediumRead, RequestUri, Services
from callwatch.api.directory import ExtensionFilter
from callwatch.api.paging import DEFAULT_PER_PAGE, MAX_PER_PAGE, paginate
from callwatch.api.schemas.common import ERROR_RESPONSES
from callwatch.api.schemas.extensions import (
    AccountInfo,
    ExtensionInfo,
    ExtensionList,
    ExtensionStatus,
    ExtensionType,
    account_info,
    extension_info,
    extension_resource,
)

router = APIRouter(
    prefix="/restapi/v1.0/account/{accountId}",
    tags=["Accounts and extensions"],
    responses=ERROR_RESPONSES,
)

AccountId = Annotated[str, Path(alias="accountId", description="account id or ~")]
ExtensionId = Annotated[str, Path(alias="extensionId", description="extension id or ~")]
PageNumber = Annotated[int, Query(ge=1, le=1_000_000)]
PerPage = Annotated[int, Query(alias="perPage", ge=1, le=MAX_PER_PAGE)]


@router.get("", response_model=AccountInfo, operation_id="readAccountInfo")
def read_account(
    account_id: AccountId, principal: LightRead, services: Services, base_url: BaseUrl
) -> AccountInfo:
    """The caller's account."""
    return account_info(services.directory.account(principal, account_id), base_url)


@router.get(
    "/extension",
    response_model=ExtensionList,
    response_model_exclude_none=True,
    operation_id="listExtensions",
)
def list_extensions(
    account_id: AccountId,
    principal: MediumRead,
    services: Services,
    base_url: BaseUrl,
    uri: RequestUri,
    extension_number: Annotated[str | None, Query(alias="extensionNumber", max_length=16)] = None,
    status: Annotated[list[ExtensionStatus] | None, Query()] = None,
    type: Annotated[list[ExtensionType] | None, Query()] = None,
    page: PageNumber = 1,
    per_page: PerPage = DEFAULT_PER_PAGE,
) -> ExtensionList:
    """Extensions of the account, filtered and paged."""
    selection = ExtensionFilter(
        extension_number=extension_number, statuses=tuple(status or ()), types=tuple(type or ())
    )
    records = services.directory.extensions(principal, account_id, selection)
    items, page_info = paginate(records, page=page, per_page=per_page, uri=uri)
    return ExtensionList(
        uri=uri,
        records=[extension_resource(ext, base_url) for ext in items],
        paging=page_info.paging,
        navigation=page_info.navigation,
    )


@router.get(
    "/extension/{extensionId}",
    response_model=ExtensionInfo,
    response_model_exclude_none=True,
    operation_id="readExtension",
)
def read_extension(
    account_id: AccountId,
    extension_id: ExtensionId,
    principal: LightRead,
    services: Services,
    base_url: BaseUrl,
) -> ExtensionInfo:
    """One extension of the account."""
    ext = services.directory.extension(principal, account_id, extension_id)
    return extension_info(ext, base_url)
