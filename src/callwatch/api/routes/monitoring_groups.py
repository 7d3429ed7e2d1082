"""Call-monitoring groups and their members (ringcentral-api.md §1 rows 10–15, §2.7).

Rate groups and app permissions follow SPEC: reads are Medium/ReadAccounts, changes
Medium/EditExtensions, bulk-assign Heavy/EditExtensions. The rules (admin-only changes, 404 for
other accounts' groups, bulk-assign validation) live in :mod:`callwatch.api.monitoring`.
The list's ``siteId`` filter is accepted and ignored: callwatch has no sites.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from callwatch.api.deps import BaseUrl, MediumRead, RequestUri, Services, guard
from callwatch.api.monitoring import Assignment, BulkAssignment
from callwatch.api.paging import DEFAULT_PER_PAGE, MAX_PER_PAGE, paginate
from callwatch.api.ratelimit import RateGroup
from callwatch.api.schemas.common import ERROR_RESPONSES
from callwatch.api.schemas.monitoring_groups import (
    CallMonitoringBulkAssign,
    CallMonitoringExtension,
    CallMonitoringGroupList,
    CallMonitoringGroupMemberList,
    CallMonitoringGroupRequest,
    CallMonitoringGroupResource,
    group_resource,
    member_resource,
)
from callwatch.api.tokens import Principal

router = APIRouter(
    prefix="/restapi/v1.0/account/{accountId}/call-monitoring-groups",
    tags=["Call Monitoring Groups"],
    responses=ERROR_RESPONSES,
)

AccountId = Annotated[str, Path(alias="accountId", description="account id or ~")]
GroupId = Annotated[str, Path(alias="groupId", max_length=32)]
PageNumber = Annotated[int, Query(ge=1, le=1_000_000)]
PerPage = Annotated[int, Query(alias="perPage", ge=1, le=MAX_PER_PAGE)]
MediumEdit = Annotated[Principal, Depends(guard(RateGroup.MEDIUM, "EditExtensions"))]
HeavyEdit = Annotated[Principal, Depends(guard(RateGroup.HEAVY, "EditExtensions"))]


@router.get(
    "",
    response_model=CallMonitoringGroupList,
    response_model_exclude_none=True,
    operation_id="listCallMonitoringGroups",
)
def list_groups(
    account_id: AccountId,
    principal: MediumRead,
    services: Services,
    base_url: BaseUrl,
    uri: RequestUri,
    member_extension_id: Annotated[
        str | None, Query(alias="memberExtensionId", pattern=r"^[0-9]{1,19}$")
    ] = None,
    site_id: Annotated[list[str] | None, Query(alias="siteId", max_length=100)] = None,
    page: PageNumber = 1,
    per_page: PerPage = DEFAULT_PER_PAGE,
) -> CallMonitoringGroupList:
    """Groups of the account, optionally only those ``memberExtensionId`` belongs to."""
    member = int(member_extension_id) if member_extension_id is not None else None
    groups = services.monitoring.groups(principal, account_id, member_extension_id=member)
    items, page_info = paginate(groups, page=page, per_page=per_page, uri=uri)
    return CallMonitoringGroupList(
        uri=uri,
        records=[group_resource(group, base_url) for group in items],
        navigation=page_info.navigation,
        paging=page_info.paging,
    )


@router.post(
    "",
    response_model=CallMonitoringGroupResource,
    response_model_exclude_none=True,
    operation_id="createCallMonitoringGroup",
)
def create_group(
    account_id: AccountId,
    body: CallMonitoringGroupRequest,
    principal: MediumEdit,
    services: Services,
    base_url: BaseUrl,
) -> CallMonitoringGroupResource:
    """Create an empty group (admin callers only)."""
    site_id = body.site.id if body.site else None
    group = services.monitoring.create(principal, account_id, name=body.name, site_id=site_id)
    return group_resource(group, base_url)


@router.put(
    "/{groupId}",
    response_model=CallMonitoringGroupResource,
    response_model_exclude_none=True,
    operation_id="updateCallMonitoringGroup",
)
def update_group(
    account_id: AccountId,
    group_id: GroupId,
    body: CallMonitoringGroupRequest,
    principal: MediumEdit,
    services: Services,
    base_url: BaseUrl,
) -> CallMonitoringGroupResource:
    """Rename a group (admin callers only)."""
    site_id = body.site.id if body.site else None
    group = services.monitoring.update(
        principal, account_id, group_id, name=body.name, site_id=site_id
    )
    return group_resource(group, base_url)


@router.delete("/{groupId}", status_code=204, operation_id="deleteCallMonitoringGroup")
def delete_group(
    account_id: AccountId, group_id: GroupId, principal: MediumEdit, services: Services
) -> Response:
    """Delete a group and all its memberships (admin callers only)."""
    services.monitoring.delete(principal, account_id, group_id)
    return Response(status_code=204)


@router.get(
    "/{groupId}/members",
    response_model=CallMonitoringGroupMemberList,
    response_model_exclude_none=True,
    operation_id="listCallMonitoringGroupMembers",
)
def list_members(
    account_id: AccountId,
    group_id: GroupId,
    principal: MediumRead,
    services: Services,
    base_url: BaseUrl,
    uri: RequestUri,
    page: PageNumber = 1,
    per_page: PerPage = DEFAULT_PER_PAGE,
) -> CallMonitoringGroupMemberList:
    """Members of a group: ``id`` is the extension id, ``permissions`` what it may do."""
    members = services.monitoring.members(principal, account_id, group_id)
    items, page_info = paginate(members, page=page, per_page=per_page, uri=uri)
    return CallMonitoringGroupMemberList(
        uri=uri,
        records=[member_resource(m.extension, m.permissions, base_url) for m in items],
        navigation=page_info.navigation,
        paging=page_info.paging,
    )


@router.post(
    "/{groupId}/bulk-assign", status_code=204, operation_id="updateCallMonitoringGroupList"
)
def bulk_assign(
    account_id: AccountId,
    group_id: GroupId,
    body: CallMonitoringBulkAssign,
    principal: HeavyEdit,
    services: Services,
) -> Response:
    """Add, change and remove members atomically; empty ``permissions`` removes a member."""
    request = BulkAssignment(
        added=_assignments("addedExtensions", body.added_extensions),
        updated=_assignments("updatedExtensions", body.updated_extensions),
        removed=_assignments("removedExtensions", body.removed_extensions, remove=True),
    )
    services.monitoring.bulk_assign(principal, account_id, group_id, request)
    return Response(status_code=204)


def _assignments(
    field: str, items: list[CallMonitoringExtension], *, remove: bool = False
) -> tuple[Assignment, ...]:
    return tuple(
        Assignment(
            extension_id=int(item.id),
            permissions=frozenset() if remove else frozenset(p.value for p in item.permissions),
            parameter=f"{field}[{index}].id",
        )
        for index, item in enumerate(items)
    )
