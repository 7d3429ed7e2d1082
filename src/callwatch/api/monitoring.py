"""Call-monitoring groups for the REST routes (ringcentral-api.md §1 rows 10–15, §2.7).

Rules, checked in this order so nobody learns about groups they may not touch:

1. ``{accountId}`` is ``~`` or the caller's account, else 404 CMN-102 ``accountId``
   (:class:`~callwatch.api.directory.DirectoryService`).
2. Every user of the account may read groups and members; creating, renaming, deleting and
   bulk-assigning need an admin caller, else 403 CMN-408 with ``permissionName`` ``Groups``
   (RingCentral's user permission of those operations).
3. ``{groupId}`` must be a group of that account, else 404 CMN-102 ``groupId``; ids that are
   not digits are 400 CMN-101.
4. Group names are unique per account (case-insensitive) and not blank: 400 CMN-101 ``name``
   "Value for group name is unacceptable" (SPEC declares 400, not 409, for these operations).
5. Bulk-assign items must name extensions of the account of an allowed type (User,
   DigitalUser, VirtualUser, FaxUser, Limited), each extension once across the three lists:
   400 CMN-101 whose ``parameterName`` is the item (``addedExtensions[0].id``) and
   ``parameterValue`` the id. The whole request is applied atomically or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from callwatch.api.directory import DirectoryService
from callwatch.api.errors import ApiError, InvalidParameter, PermissionRequired, ResourceNotFound
from callwatch.api.tokens import Principal
from callwatch.ids import IdGenerator
from callwatch.store.errors import DuplicateRecord, InvalidRecord
from callwatch.store.provisioning import create_monitoring_group
from callwatch.store.repo import Extension, MonitoringGroup, Store

GROUPS_PERMISSION = "Groups"
"""RingCentral's user permission for changing call-monitoring groups (SPEC x-user-permission)."""
MEMBER_TYPES = frozenset({"User", "DigitalUser", "VirtualUser", "FaxUser", "Limited"})
"""Extension types that may be group members (SPEC CallMonitoringExtensionInfo.id)."""
_BAD_NAME = "Value for group name is unacceptable"


@dataclass(frozen=True, slots=True, kw_only=True)
class Assignment:
    """One bulk-assign item as the route read it."""

    extension_id: int
    permissions: frozenset[str]
    """Empty = remove the member."""
    parameter: str
    """Where the item is in the request, for error bodies (``addedExtensions[0].id``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BulkAssignment:
    """A bulk-assign request; each list may be empty."""

    added: tuple[Assignment, ...] = ()
    updated: tuple[Assignment, ...] = ()
    removed: tuple[Assignment, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupMember:
    """A member with its extension record (the API shows the extension number)."""

    extension: Extension
    permissions: frozenset[str]


class MonitoringService:
    """Reads and changes the call-monitoring groups of the caller's account."""

    def __init__(self, *, store: Store, directory: DirectoryService, ids: IdGenerator) -> None:
        self._store = store
        self._directory = directory
        self._ids = ids

    def groups(
        self, principal: Principal, account_ref: str, *, member_extension_id: int | None = None
    ) -> Sequence[MonitoringGroup]:
        """The account's groups by name, only those containing the extension if given."""
        account = self._directory.account(principal, account_ref)
        return self._store.monitoring.list_for_account(
            account.id, member_extension_id=member_extension_id
        )

    def members(self, principal: Principal, account_ref: str, group_ref: str) -> list[GroupMember]:
        """Members of one group, ordered by extension number."""
        group = self._group(principal, account_ref, group_ref)
        extensions = {e.id: e for e in self._store.extensions.list_for_account(group.account_id)}
        return [
            GroupMember(extension=extensions[m.extension_id], permissions=m.permissions)
            for m in self._store.monitoring.list_members(group.id)
            if m.extension_id in extensions
        ]

    def create(
        self, principal: Principal, account_ref: str, *, name: str, site_id: str | None
    ) -> MonitoringGroup:
        """A new, empty group (admin only)."""
        account = self._directory.account(principal, account_ref)
        self._require_admin(principal)
        try:
            return create_monitoring_group(
                self._store, ids=self._ids, account_id=account.id, name=name, site_id=site_id
            )
        except (DuplicateRecord, InvalidRecord) as exc:
            raise _name_error(exc) from exc

    def update(
        self,
        principal: Principal,
        account_ref: str,
        group_ref: str,
        *,
        name: str,
        site_id: str | None,
    ) -> MonitoringGroup:
        """Rename a group (admin only); ``site_id`` None keeps the current site."""
        group = self._group(principal, account_ref, group_ref, admin=True)
        changed = MonitoringGroup(
            id=group.id,
            account_id=group.account_id,
            name=name,
            site_id=site_id if site_id is not None else group.site_id,
        )
        try:
            return self._store.monitoring.update(changed)
        except (DuplicateRecord, InvalidRecord) as exc:
            raise _name_error(exc) from exc

    def delete(self, principal: Principal, account_ref: str, group_ref: str) -> None:
        """Delete a group and its members (admin only)."""
        group = self._group(principal, account_ref, group_ref, admin=True)
        self._store.monitoring.delete(group.id)

    def bulk_assign(
        self, principal: Principal, account_ref: str, group_ref: str, request: BulkAssignment
    ) -> None:
        """Add, change and remove members in one transaction (admin only)."""
        group = self._group(principal, account_ref, group_ref, admin=True)
        self._check_items(group.account_id, request)
        self._store.monitoring.bulk_assign(
            group.id,
            added=[(a.extension_id, a.permissions) for a in request.added],
            updated=[(a.extension_id, a.permissions) for a in request.updated],
            removed=[a.extension_id for a in request.removed],
        )

    def _group(
        self, principal: Principal, account_ref: str, group_ref: str, *, admin: bool = False
    ) -> MonitoringGroup:
        account = self._directory.account(principal, account_ref)
        if admin:
            self._require_admin(principal)
        if not group_ref.isdigit() or len(group_ref) > 19:
            raise InvalidParameter("groupId")
        group = self._store.monitoring.get(group_ref)
        if group is None or group.account_id != account.id:
            raise ResourceNotFound("groupId")
        return group

    def _require_admin(self, principal: Principal) -> None:
        if not self._directory.caller(principal).is_admin:
            raise PermissionRequired(GROUPS_PERMISSION, app=False)

    def _check_items(self, account_id: int, request: BulkAssignment) -> None:
        seen: set[int] = set()
        for item in (*request.added, *request.updated, *request.removed):
            ext = self._store.extensions.get(item.extension_id)
            if ext is None or ext.account_id != account_id:
                raise _item_error(item, f"Extension [{item.extension_id}] is not found")
            if ext.type not in MEMBER_TYPES:
                raise _item_error(
                    item,
                    f"Extension of type [{ext.type}] could not be a member of [call monitoring]",
                )
            if item.extension_id in seen:
                raise _item_error(item, f"Extension [{item.extension_id}] is listed more than once")
            seen.add(item.extension_id)


def _item_error(item: Assignment, message: str) -> ApiError:
    return ApiError(
        message,
        parameter_name=item.parameter,
        attributes={"parameterValue": str(item.extension_id)},
    )


def _name_error(exc: DuplicateRecord | InvalidRecord) -> ApiError:
    reason = (
        "the account already has a group with this name"
        if isinstance(exc, DuplicateRecord)
        else "the name must not be blank"
    )
    return InvalidParameter("name", f"{_BAD_NAME}: {reason}")
