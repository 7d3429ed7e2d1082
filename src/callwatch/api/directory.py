"""Read access to accounts, extensions and devices for the REST routes.

Rules (ringcentral-api.md §1–2.5): ``~`` means the token owner's account or extension; a numeric
id of any other account — existing or not — is 404 CMN-102 so other tenants stay invisible; ids
that are neither ``~`` nor digits are 400 CMN-101. Every user of an account may read its
extensions; devices (and their SIP credentials) of another extension need an admin user, else
403 CMN-408 ``ReadCompanyDevices``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from callwatch.api.errors import InvalidParameter, PermissionRequired, ResourceNotFound
from callwatch.api.tokens import Principal
from callwatch.store.repo import Account, Device, Extension, Store

CURRENT = "~"
COMPANY_DEVICES_PERMISSION = "ReadCompanyDevices"


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtensionFilter:
    """Filters of the extension list (all optional; list filters match any value)."""

    extension_number: str | None = None
    statuses: tuple[str, ...] = ()
    types: tuple[str, ...] = ()


class DirectoryService:
    """Resolves path ids against the caller and reads directory records."""

    def __init__(self, *, store: Store) -> None:
        self._store = store

    def account(self, principal: Principal, account_ref: str) -> Account:
        """The caller's account, if ``account_ref`` names it."""
        account_id = self._account_id(principal, account_ref)
        account = self._store.accounts.get(account_id)
        if account is None:
            raise ResourceNotFound("accountId")
        return account

    def extension(self, principal: Principal, account_ref: str, extension_ref: str) -> Extension:
        """An extension of the caller's account."""
        account_id = self._account_id(principal, account_ref)
        if extension_ref == CURRENT:
            extension_id = principal.extension_id
        else:
            extension_id = _numeric(extension_ref, "extensionId")
        ext = self._store.extensions.get(extension_id)
        if ext is None or ext.account_id != account_id:
            raise ResourceNotFound("extensionId")
        return ext

    def extensions(
        self, principal: Principal, account_ref: str, selection: ExtensionFilter
    ) -> list[Extension]:
        """The account's extensions matching ``selection``, ordered by number."""
        account_id = self._account_id(principal, account_ref)
        return [
            ext
            for ext in self._store.extensions.list_for_account(account_id)
            if _matches(ext, selection)
        ]

    def extension_devices(
        self, principal: Principal, account_ref: str, extension_ref: str
    ) -> tuple[Extension, Sequence[Device]]:
        """An extension the caller may see the devices of, and its devices."""
        ext = self.extension(principal, account_ref, extension_ref)
        self._require_device_access(principal, ext.id)
        return ext, self._store.devices.list_for_extension(ext.id)

    def device(self, principal: Principal, account_ref: str, device_id: str) -> Device:
        """A device of the caller's account that the caller may see (with its credentials)."""
        account_id = self._account_id(principal, account_ref)
        _numeric(device_id, "deviceId")
        device = self._store.devices.get(device_id)
        if device is None or device.account_id != account_id:
            raise ResourceNotFound("deviceId")
        self._require_device_access(principal, device.extension_id)
        return device

    def owner(self, device: Device) -> Extension | None:
        """The extension a device belongs to."""
        return self._store.extensions.get(device.extension_id)

    def caller(self, principal: Principal) -> Extension:
        """The token owner's extension."""
        ext = self._store.extensions.get(principal.extension_id)
        if ext is None:
            raise ResourceNotFound("extensionId")
        return ext

    def _account_id(self, principal: Principal, account_ref: str) -> int:
        if account_ref == CURRENT:
            return principal.account_id
        if _numeric(account_ref, "accountId") != principal.account_id:
            raise ResourceNotFound("accountId")
        return principal.account_id

    def _require_device_access(self, principal: Principal, extension_id: int) -> None:
        if extension_id == principal.extension_id:
            return
        if not self.caller(principal).is_admin:
            raise PermissionRequired(COMPANY_DEVICES_PERMISSION, app=False)


def _numeric(value: str, parameter: str) -> int:
    if not value.isdigit() or len(value) > 19:
        raise InvalidParameter(parameter)
    return int(value)


def _matches(ext: Extension, selection: ExtensionFilter) -> bool:
    if selection.extension_number is not None and ext.number != selection.extension_number:
        return False
    if selection.statuses and ext.status not in selection.statuses:
        return False
    return not selection.types or ext.type in selection.types
