"""Call-monitoring group resources (ringcentral-api.md §2.7; SPEC CallMonitoringGroup,
CallMonitoringGroupMemberList, CallMonitoringBulkAssign).

Member ``id`` is the extension id as a string: every consumer (DEMO-PV) treats it that way.
Request ids are accepted as digit strings or JSON numbers.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from callwatch.api.schemas.common import ApiModel, Navigation, Paging
from callwatch.api.schemas.extensions import account_uri, extension_uri
from callwatch.store.repo import MONITORING_PERMISSIONS, Extension, MonitoringGroup

MAX_GROUP_NAME = 128
"""Longest group name accepted (RingCentral documents none; a UI-sized bound)."""
MAX_ASSIGNMENTS = 1000
"""Most items in each list of one bulk-assign request (rule 8)."""

ExtensionIdText = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,19}$")]
GroupName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_GROUP_NAME)]


class MonitoringPermission(StrEnum):
    """The permission values of the API (the UI says "Monitoring - User")."""

    MONITORING = "Monitoring"
    MONITORED = "Monitored"


class SiteRef(ApiModel):
    """``site`` of a group; callwatch has no sites, so the id is only stored and echoed."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    name: str | None = None


class CallMonitoringGroupRequest(ApiModel):
    """Body of create and update (CreateCallMonitoringGroupRequest); other fields ignored."""

    name: GroupName
    site: SiteRef | None = None


class CallMonitoringGroupResource(ApiModel):
    uri: str
    id: str
    name: str
    site: SiteRef | None = None


class CallMonitoringGroupList(ApiModel):
    uri: str
    records: list[CallMonitoringGroupResource]
    navigation: Navigation
    paging: Paging


class CallMonitoringGroupMember(ApiModel):
    uri: str
    id: str
    """The member's extension id, as a string."""
    extension_number: str
    permissions: list[MonitoringPermission]


class CallMonitoringGroupMemberList(ApiModel):
    uri: str
    records: list[CallMonitoringGroupMember]
    navigation: Navigation
    paging: Paging


class CallMonitoringExtension(ApiModel):
    """One bulk-assign item; an empty ``permissions`` list removes the member."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    id: ExtensionIdText
    permissions: list[MonitoringPermission] = Field(default_factory=list, max_length=2)


class CallMonitoringBulkAssign(ApiModel):
    """Body of bulk-assign; ``permissions`` of removed items are ignored."""

    added_extensions: list[CallMonitoringExtension] = Field(
        default_factory=list, max_length=MAX_ASSIGNMENTS
    )
    updated_extensions: list[CallMonitoringExtension] = Field(
        default_factory=list, max_length=MAX_ASSIGNMENTS
    )
    removed_extensions: list[CallMonitoringExtension] = Field(
        default_factory=list, max_length=MAX_ASSIGNMENTS
    )


def group_uri(base_url: str, group: MonitoringGroup) -> str:
    return f"{account_uri(base_url, group.account_id)}/call-monitoring-groups/{group.id}"


def group_resource(group: MonitoringGroup, base_url: str) -> CallMonitoringGroupResource:
    """The API form of ``group``."""
    site = SiteRef(id=group.site_id) if group.site_id is not None else None
    return CallMonitoringGroupResource(
        uri=group_uri(base_url, group), id=group.id, name=group.name, site=site
    )


def member_resource(
    extension: Extension, permissions: frozenset[str], base_url: str
) -> CallMonitoringGroupMember:
    """One member record: the extension and its permissions in API order."""
    return CallMonitoringGroupMember(
        uri=extension_uri(base_url, extension),
        id=str(extension.id),
        extension_number=extension.number,
        permissions=[MonitoringPermission(p) for p in MONITORING_PERMISSIONS if p in permissions],
    )
