"""Provisioning: the creation functions of :mod:`callwatch.store.tenants` and the demo tenant.

:func:`provision_demo_tenant` builds the tenant ``callwatch demo`` runs on — a supervisor, two
agents, a user without monitoring rights, an OAuth app, a PSTN trunk and the call-monitoring
group "Support" (101 Monitoring; 108 and 102 Monitored; 109 in no group) — and is idempotent:
every piece is looked up by its natural key (main number, extension number, device type and
name, app name, trunk name, group name) and created only if missing; an existing group's
members are left as they are unless it has none. The demo's plain passwords, client
secret and JWTs are kept in ``store.secrets`` under ``demo.*`` so a second call (or a restart)
returns the same values; that is acceptable for a demo tenant only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from callwatch.ids import IdGenerator
from callwatch.store.errors import StoreError
from callwatch.store.repo import (
    MONITORED,
    MONITORING,
    MONITORING_PERMISSIONS,
    Account,
    App,
    Device,
    Extension,
    MonitoringGroup,
    Store,
    Trunk,
)
from callwatch.store.tenants import (
    ALL_APP_SCOPES,
    ALL_GRANT_TYPES,
    JWT_BEARER_GRANT,
    CreatedApp,
    create_account,
    create_app,
    create_device,
    create_extension,
    create_monitoring_group,
    create_trunk,
    issue_jwt_credential,
    set_extension_password,
)

__all__ = [
    "ALL_APP_SCOPES",
    "ALL_GRANT_TYPES",
    "DEMO_MAIN_NUMBER",
    "JWT_BEARER_GRANT",
    "CreatedApp",
    "DemoGroupMember",
    "DemoMonitoringGroup",
    "DemoTenant",
    "DemoUser",
    "JsonValue",
    "create_account",
    "create_app",
    "create_device",
    "create_extension",
    "create_monitoring_group",
    "create_trunk",
    "issue_jwt_credential",
    "provision_demo_tenant",
    "set_extension_password",
]

JsonValue: TypeAlias = "dict[str, JsonValue] | list[JsonValue] | str | int | float | bool | None"

DEMO_ACCOUNT_NAME = "Callwatch Demo"
DEMO_MAIN_NUMBER = "+16505550100"
DEMO_APP_NAME = "callwatch demo app"
DEMO_TRUNK_NAME = "pstn"
DEMO_TRUNK_SOURCES = ("127.0.0.1", "::1")
DEMO_EMAIL_DOMAIN = "demo.callwatch.local"
DEMO_GROUP_NAME = "Support"
_DEMO_GROUP_MEMBERS = (("101", (MONITORING,)), ("108", (MONITORED,)), ("102", (MONITORED,)))
_PASSWORD_CHARS = 12


@dataclass(frozen=True, slots=True)
class _DeviceSpec:
    type: str
    name: str
    sku: str | None = None
    computer_name: str = ""


@dataclass(frozen=True, slots=True)
class _UserSpec:
    number: str
    first_name: str
    last_name: str
    role: str
    is_admin: bool
    devices: tuple[_DeviceSpec, ...]


_EXISTING_PHONE = _DeviceSpec("OtherPhone", "Existing Phone")
_DEMO_USERS = (
    _UserSpec(
        "101",
        "Sam",
        "Supervisor",
        "supervisor",
        True,
        (_DeviceSpec("SoftPhone", "Softphone - Digital Line", "DV-1", "LMRC8531"), _EXISTING_PHONE),
    ),
    _UserSpec("108", "Alice", "Agent", "agent", False, (_DeviceSpec("HardPhone", "Desk Phone"),)),
    _UserSpec("102", "Bob", "Agent", "agent", False, (_EXISTING_PHONE,)),
    _UserSpec("109", "Nina", "Nomonitor", "no-monitoring", False, (_EXISTING_PHONE,)),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoUser:
    """One demo extension with its plain credentials."""

    role: str
    """``supervisor``, ``agent`` or ``no-monitoring`` (may not monitor anyone)."""
    extension: Extension
    password: str
    jwt: str
    devices: tuple[Device, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoGroupMember:
    """One member of a demo call-monitoring group."""

    extension: Extension
    permissions: frozenset[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoMonitoringGroup:
    """A call-monitoring group of the demo tenant, members ordered by extension number."""

    group: MonitoringGroup
    members: tuple[DemoGroupMember, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoTenant:
    """Everything a demo client needs to log in and register."""

    account: Account
    app: App
    client_secret: str
    trunk: Trunk
    users: tuple[DemoUser, ...]
    monitoring_groups: tuple[DemoMonitoringGroup, ...] = ()

    @property
    def client_id(self) -> str:
        return self.app.client_id

    def user(self, number: str) -> DemoUser:
        """The demo user with extension ``number``.

        Raises:
            KeyError: there is no such demo extension.
        """
        for user in self.users:
            if user.extension.number == number:
                return user
        raise KeyError(number)

    def to_json(self, server_url: str) -> dict[str, JsonValue]:
        """The tenant as written to ``demo.json`` (snake_case keys, plain secrets)."""
        return {
            "server_url": server_url,
            "account_id": self.account.id,
            "main_number": self.account.main_number,
            "client_id": self.app.client_id,
            "client_secret": self.client_secret,
            "sip_domain": self.account.sip_domain,
            "trunk": {
                "id": self.trunk.id,
                "name": self.trunk.name,
                "source_addresses": list(self.trunk.source_addresses),
                "number": self.trunk.number,
            },
            "extensions": [self._user_json(user) for user in self.users],
            "monitoring_groups": [_group_json(group) for group in self.monitoring_groups],
        }

    def _user_json(self, user: DemoUser) -> dict[str, JsonValue]:
        ext = user.extension
        return {
            "extension_number": ext.number,
            "extension_id": ext.id,
            "name": ext.name,
            "role": user.role,
            "email": ext.email,
            "username": self.account.main_number,
            "password": user.password,
            "jwt": user.jwt,
            "devices": [_device_json(device) for device in user.devices],
        }


def _group_json(demo: DemoMonitoringGroup) -> dict[str, JsonValue]:
    return {
        "id": demo.group.id,
        "name": demo.group.name,
        "members": [
            {
                "extension_number": member.extension.number,
                "extension_id": member.extension.id,
                "permissions": [p for p in MONITORING_PERMISSIONS if p in member.permissions],
            }
            for member in demo.members
        ],
    }


def _device_json(device: Device) -> dict[str, JsonValue]:
    return {
        "id": device.id,
        "type": device.type,
        "name": device.name,
        "sip_username": device.sip_username,
        "sip_password": device.sip_password,
        "authorization_id": device.authorization_id,
    }


def provision_demo_tenant(store: Store, *, sip_domain: str, ids: IdGenerator) -> DemoTenant:
    """Create the demo tenant, or return it unchanged if it exists (idempotent).

    Args:
        store: where to create it.
        sip_domain: the SIP domain of a newly created account (an existing one keeps its own).
        ids: random source for ids, passwords and secrets.
    """
    account = _ensure_account(store, ids, sip_domain)
    created = _ensure_app(store, ids, account)
    users = tuple(_ensure_user(store, ids, account, spec) for spec in _DEMO_USERS)
    return DemoTenant(
        account=account,
        app=created.app,
        client_secret=created.client_secret,
        trunk=_ensure_trunk(store, ids, account),
        users=users,
        monitoring_groups=(_ensure_monitoring_group(store, ids, account),),
    )


def _ensure_account(store: Store, ids: IdGenerator, sip_domain: str) -> Account:
    existing = store.accounts.find_by_main_number(DEMO_MAIN_NUMBER)
    if existing is not None:
        return existing
    return create_account(
        store, ids=ids, name=DEMO_ACCOUNT_NAME, main_number=DEMO_MAIN_NUMBER, sip_domain=sip_domain
    )


def _ensure_app(store: Store, ids: IdGenerator, account: Account) -> CreatedApp:
    secret = store.secrets.get_or_create("demo.client_secret", lambda: ids.token(40))
    for app in store.apps.list_for_account(account.id):
        if app.name == DEMO_APP_NAME:
            return CreatedApp(app=app, client_secret=secret)
    return create_app(
        store, ids=ids, name=DEMO_APP_NAME, account_id=account.id, client_secret=secret
    )


def _ensure_user(store: Store, ids: IdGenerator, account: Account, spec: _UserSpec) -> DemoUser:
    password = store.secrets.get_or_create(
        f"demo.password.{spec.number}", lambda: ids.token(_PASSWORD_CHARS)
    )
    extension = store.extensions.find_by_number(account.id, spec.number)
    if extension is None:
        extension = create_extension(
            store,
            ids=ids,
            account_id=account.id,
            number=spec.number,
            first_name=spec.first_name,
            last_name=spec.last_name,
            email=f"{spec.first_name.lower()}@{DEMO_EMAIL_DOMAIN}",
            password=password,
            is_admin=spec.is_admin,
        )
    elif extension.password_hash is None:
        extension = set_extension_password(store, ids=ids, extension=extension, password=password)
    ext = extension
    jwt = store.secrets.get_or_create(
        f"demo.jwt.{spec.number}", lambda: issue_jwt_credential(store, ids=ids, extension=ext)
    )
    devices = tuple(_ensure_device(store, ids, ext, device) for device in spec.devices)
    return DemoUser(role=spec.role, extension=ext, password=password, jwt=jwt, devices=devices)


def _ensure_device(store: Store, ids: IdGenerator, ext: Extension, spec: _DeviceSpec) -> Device:
    for device in store.devices.list_for_extension(ext.id):
        if device.type == spec.type and device.name == spec.name:
            return device
    return create_device(
        store,
        ids=ids,
        extension=ext,
        type=spec.type,
        name=spec.name,
        sku=spec.sku,
        serial=spec.computer_name or None,
        computer_name=spec.computer_name,
    )


def _ensure_trunk(store: Store, ids: IdGenerator, account: Account) -> Trunk:
    for trunk in store.trunks.list_for_account(account.id):
        if trunk.name == DEMO_TRUNK_NAME:
            return trunk
    return create_trunk(
        store,
        ids=ids,
        account_id=account.id,
        name=DEMO_TRUNK_NAME,
        source_addresses=DEMO_TRUNK_SOURCES,
        number=account.main_number,
    )


def _ensure_monitoring_group(
    store: Store, ids: IdGenerator, account: Account
) -> DemoMonitoringGroup:
    group = store.monitoring.find_by_name(account.id, DEMO_GROUP_NAME)
    if group is None:
        group = create_monitoring_group(store, ids=ids, account_id=account.id, name=DEMO_GROUP_NAME)
    members = store.monitoring.list_members(group.id)
    if not members:
        added = [
            (_existing(store.extensions.find_by_number(account.id, number), number).id, perms)
            for number, perms in _DEMO_GROUP_MEMBERS
        ]
        members = store.monitoring.bulk_assign(group.id, added=added)
    demo_members = tuple(
        DemoGroupMember(
            extension=_existing(store.extensions.get(member.extension_id), member.extension_id),
            permissions=member.permissions,
        )
        for member in members
    )
    return DemoMonitoringGroup(group=group, members=demo_members)


def _existing(extension: Extension | None, what: object) -> Extension:
    if extension is None:
        raise StoreError(f"extension {what} is missing")
    return extension
