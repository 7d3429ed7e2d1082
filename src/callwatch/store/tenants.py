"""Creating tenants, users, devices, apps, trunks, credentials and call-monitoring groups.

Import these from :mod:`callwatch.store.provisioning`, which re-exports them next to the demo
tenant; ``callwatch admin …`` and :func:`~callwatch.store.provisioning.provision_demo_tenant` use
them. Every function takes the store and an :class:`~callwatch.ids.IdGenerator` by keyword,
validates its input, generates RingCentral-style ids (numeric account/extension ids,
numeric-string device ids) and returns the stored record. Ids are random; a collision is
retried a few times before giving up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from callwatch.ids import IdGenerator
from callwatch.store.errors import InvalidRecord, StoreError
from callwatch.store.jwt_credentials import encode_credential, signing_key
from callwatch.store.numbers import normalize_e164
from callwatch.store.passwords import SALT_BYTES, hash_password, sha256_hex
from callwatch.store.repo import (
    DEVICE_TYPES,
    Account,
    App,
    Device,
    Extension,
    JwtCredential,
    MonitoringGroup,
    Store,
    Trunk,
)

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ALL_GRANT_TYPES = ("password", JWT_BEARER_GRANT, "refresh_token")
ALL_APP_SCOPES = (
    "CallControl",
    "EditExtensions",
    "EditPresence",
    "ReadAccounts",
    "ReadCallLog",
    "ReadPresence",
    "SubscriptionWebhook",
    "VoipCalling",
    "WebSocket",
    "WebSocketsSubscriptions",
)
"""App permissions of RingCentral's supervision surface (ringcentral-api.md §1 "App perm")."""

DEFAULT_SKUS = {"SoftPhone": "DV-1", "OtherPhone": "OP-1", "HardPhone": "HP-1"}
_ACCOUNT_ID_DIGITS = 9
_EXTENSION_ID_DIGITS = 11
_DEVICE_ID_DIGITS = 8
_SIP_USERNAME_DIGITS = 11
_SIP_PASSWORD_CHARS = 20
_CLIENT_ID_CHARS = 22
_CLIENT_SECRET_CHARS = 40
_MONITORING_GROUP_ID_DIGITS = 10
_ATTEMPTS = 8

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class CreatedApp:
    """An app and its client secret, which the store keeps only hashed."""

    app: App
    client_secret: str


def create_account(
    store: Store, *, ids: IdGenerator, name: str, main_number: str, sip_domain: str
) -> Account:
    """Create a tenant.

    Raises:
        InvalidRecord: ``main_number`` is not E.164.
        DuplicateRecord: another account has that main number.
    """
    number = normalize_e164(main_number)
    account_id = _unique(lambda: int(ids.digits(_ACCOUNT_ID_DIGITS)), store.accounts.get)
    account = Account(id=account_id, name=name, main_number=number, sip_domain=sip_domain)
    return store.accounts.create(account)


def create_extension(
    store: Store,
    *,
    ids: IdGenerator,
    account_id: int,
    number: str,
    first_name: str,
    last_name: str = "",
    email: str | None = None,
    password: str | None = None,
    is_admin: bool = False,
    type: str = "User",
) -> Extension:
    """Create an enabled extension; ``password`` (if given) is stored as a salted hash.

    Raises:
        InvalidRecord: ``number`` is not 1–8 digits or the account does not exist.
        DuplicateRecord: the number (in the account) or the e-mail is taken.
    """
    if not (number.isdigit() and 1 <= len(number) <= 8):
        raise InvalidRecord(f"extension number must be 1-8 digits: {number!r}")
    if store.accounts.get(account_id) is None:
        raise InvalidRecord(f"account {account_id} does not exist")
    extension = Extension(
        id=_unique(lambda: int(ids.digits(_EXTENSION_ID_DIGITS)), store.extensions.get),
        account_id=account_id,
        number=number,
        name=f"{first_name} {last_name}".strip(),
        first_name=first_name,
        last_name=last_name,
        email=email,
        type=type,
        password_hash=_password_hash(password, ids),
        is_admin=is_admin,
    )
    return store.extensions.create(extension)


def set_extension_password(
    store: Store, *, ids: IdGenerator, extension: Extension, password: str
) -> Extension:
    """Replace the extension's password."""
    updated = replace(extension, password_hash=_password_hash(password, ids))
    return store.extensions.update(updated)


def create_device(
    store: Store,
    *,
    ids: IdGenerator,
    extension: Extension,
    type: str,
    name: str,
    sku: str | None = None,
    serial: str | None = None,
    computer_name: str = "",
) -> Device:
    """Create a device with generated SIP credentials; its authorization id equals its id.

    Raises:
        InvalidRecord: ``type`` is not one of :data:`~callwatch.store.repo.DEVICE_TYPES`.
    """
    if type not in DEVICE_TYPES:
        raise InvalidRecord(f"device type must be one of {', '.join(DEVICE_TYPES)}: {type!r}")
    device_id = _unique(lambda: ids.digits(_DEVICE_ID_DIGITS), store.devices.get)
    username = _unique(lambda: ids.digits(_SIP_USERNAME_DIGITS), store.devices.find_by_sip_username)
    device = Device(
        id=device_id,
        account_id=extension.account_id,
        extension_id=extension.id,
        name=name,
        type=type,
        sku=sku or DEFAULT_SKUS[type],
        serial=serial if serial is not None else device_id,
        computer_name=computer_name,
        sip_username=username,
        sip_password=ids.token(_SIP_PASSWORD_CHARS),
    )
    return store.devices.create(device)


def create_app(
    store: Store,
    *,
    ids: IdGenerator,
    name: str,
    account_id: int | None = None,
    scopes: Sequence[str] = ALL_APP_SCOPES,
    grant_types: Sequence[str] = ALL_GRANT_TYPES,
    client_secret: str | None = None,
) -> CreatedApp:
    """Create a confidential OAuth app; a random secret is generated unless one is given."""
    secret = client_secret if client_secret is not None else ids.token(_CLIENT_SECRET_CHARS)
    app = App(
        client_id=_unique(lambda: ids.token(_CLIENT_ID_CHARS), store.apps.get),
        client_secret_hash=sha256_hex(secret),
        name=name,
        account_id=account_id,
        scopes=tuple(scopes),
        grant_types=tuple(grant_types),
    )
    return CreatedApp(app=store.apps.create(app), client_secret=secret)


def create_trunk(
    store: Store,
    *,
    ids: IdGenerator,
    account_id: int,
    name: str,
    source_addresses: Sequence[str],
    number: str,
) -> Trunk:
    """Create a trunk whose calls from ``source_addresses`` skip digest authentication.

    Raises:
        InvalidRecord: an address is not an IP address or ``number`` is not E.164.
        DuplicateRecord: an address already belongs to a trunk, or the name is taken.
    """
    trunk = Trunk(
        id=_unique(lambda: ids.digits(_DEVICE_ID_DIGITS), store.trunks.get),
        account_id=account_id,
        name=name,
        source_addresses=tuple(source_addresses),
        number=normalize_e164(number),
    )
    return store.trunks.create(trunk)


def create_monitoring_group(
    store: Store, *, ids: IdGenerator, account_id: int, name: str, site_id: str | None = None
) -> MonitoringGroup:
    """Create an empty call-monitoring group with a numeric-string id.

    Raises:
        InvalidRecord: ``name`` is blank.
        DuplicateRecord: the account already has a group of that name (case-insensitive).
    """
    group = MonitoringGroup(
        id=_unique(lambda: ids.digits(_MONITORING_GROUP_ID_DIGITS), store.monitoring.get),
        account_id=account_id,
        name=name,
        site_id=site_id,
    )
    return store.monitoring.create(group)


def issue_jwt_credential(
    store: Store,
    *,
    ids: IdGenerator,
    extension: Extension,
    issued_at: datetime | None = None,
    expires_at: datetime | None = None,
) -> str:
    """Store a revocable credential for ``extension`` and return it signed as a JWT.

    The JWT is what ``platform.login(jwt=…)`` takes; revoke it with
    ``store.credentials.revoke(jti)``.
    """
    credential = JwtCredential(
        jti=ids.token(24), extension_id=extension.id, account_id=extension.account_id
    )
    store.credentials.create(credential)
    key = signing_key(store, ids)
    return encode_credential(credential, key=key, issued_at=issued_at, expires_at=expires_at)


def _password_hash(password: str | None, ids: IdGenerator) -> str | None:
    if password is None:
        return None
    if not password:
        raise InvalidRecord("password must not be empty")
    return hash_password(password, salt=ids.secret_bytes(SALT_BYTES))


def _unique(generate: Callable[[], T], lookup: Callable[[T], object | None]) -> T:
    for _ in range(_ATTEMPTS):
        candidate = generate()
        if lookup(candidate) is None:
            return candidate
    raise StoreError(f"could not generate a unique id in {_ATTEMPTS} attempts")
