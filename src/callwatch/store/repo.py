"""Records and repository protocols of the configuration store.

The records are our own shapes (frozen dataclasses), not RingCentral JSON: the API maps them to
RingCentral resources in ``callwatch.api.schemas``. Every repository is a ``typing.Protocol`` so
the SQLite implementation (``callwatch.store.sqlite``) can be swapped for PostgreSQL, and tests
can pass fakes. The store holds configuration only, never live call state.

Repository methods are synchronous and thread-safe; ``get``/``find_*`` return ``None`` when
nothing matches, ``create`` raises :class:`~callwatch.store.errors.DuplicateRecord` on a taken
unique key, ``update``/``revoke`` raise :class:`~callwatch.store.errors.RecordNotFound`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

DEVICE_TYPES = ("SoftPhone", "OtherPhone", "HardPhone")
"""Device types we create (RingCentral DeviceResource.type, subset)."""

MONITORING = "Monitoring"
"""Call-monitoring permission: the member may monitor the group's Monitored members."""
MONITORED = "Monitored"
"""Call-monitoring permission: the member may be monitored by the group's Monitoring members."""
MONITORING_PERMISSIONS = (MONITORING, MONITORED)
"""Every call-monitoring permission in the order the API lists them (ringcentral-api.md §2.7,
the bare API words)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    """A tenant: one company with a main number."""

    id: int
    """RingCentral-style numeric account id."""
    name: str
    main_number: str
    """Company number in E.164 (``+16505550100``); the password grant's ``username``."""
    sip_domain: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Extension:
    """A user (or other extension type) of an account."""

    id: int
    account_id: int
    number: str
    """Short extension number, e.g. ``"101"``; unique within the account."""
    name: str
    first_name: str
    last_name: str
    email: str | None = None
    """Login e-mail; unique across the store when set."""
    type: str = "User"
    status: str = "Enabled"
    password_hash: str | None = None
    """Salted scrypt hash (:func:`callwatch.store.passwords.hash_password`); None = no login."""
    is_admin: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class App:
    """An OAuth client application."""

    client_id: str
    client_secret_hash: str | None
    """SHA-256 of the secret (secrets are random, so a fast hash suffices); None = public app."""
    name: str
    account_id: int | None
    """The account a private app is bound to; None = usable by every account."""
    scopes: tuple[str, ...]
    grant_types: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Device:
    """A phone (soft, hard or "existing") of an extension, with its SIP credentials."""

    id: str
    """Numeric string such as ``"60727004"`` (RingCentral device ids are strings)."""
    account_id: int
    extension_id: int
    name: str
    type: str
    """One of :data:`DEVICE_TYPES`."""
    sku: str
    serial: str
    computer_name: str
    sip_username: str
    """User part of the device's AOR (``userName`` in sip-info); unique across the store."""
    sip_password: str
    """Digest password, stored retrievably: sip-info and sip-provision return it."""

    @property
    def authorization_id(self) -> str:
        """Digest username; always equal to :attr:`id` (RingCentral apps rely on it)."""
        return self.id


@dataclass(frozen=True, slots=True, kw_only=True)
class JwtCredential:
    """A revocable JWT "personal credential" (the signed token itself is not stored)."""

    jti: str
    extension_id: int
    account_id: int
    revoked: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRecord:
    """One OAuth access/refresh token pair; tokens are stored only as SHA-256 hex digests."""

    access_hash: str
    refresh_hash: str
    extension_id: int
    account_id: int
    client_id: str
    scopes: tuple[str, ...]
    session_id: str
    """Shared by every pair a refresh chain produced; revocation works per session."""
    endpoint_id: str
    access_expires_at: float
    """POSIX timestamp (UTC wall clock, so it survives restarts)."""
    refresh_expires_at: float
    revoked: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Trunk:
    """A SIP trunk: calls from its source addresses are accepted without digest auth."""

    id: str
    account_id: int
    name: str
    source_addresses: tuple[str, ...]
    """IP addresses in canonical ``ipaddress`` form; each belongs to at most one trunk."""
    number: str
    """The E.164 number the trunk's calls are routed to (usually the main number)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitoringGroup:
    """A call-monitoring group: who may monitor whom (ringcentral-api.md §2.7)."""

    id: str
    """Numeric string, like RingCentral's group ids."""
    account_id: int
    name: str
    """Unique within the account, compared case-insensitively."""
    site_id: str | None = None
    """The site the group belongs to (stored and echoed; callwatch has no sites)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitoringMember:
    """One extension's permissions in one call-monitoring group."""

    group_id: str
    extension_id: int
    permissions: frozenset[str]
    """A non-empty subset of :data:`MONITORING_PERMISSIONS`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionRecord:
    """A notification subscription (ringcentral-api.md §2.11); only WebHook ones are stored.

    WebSocket subscriptions live as long as their WebSocket session and are never persisted.
    """

    id: str
    """UUID string, like RingCentral's."""
    account_id: int
    extension_id: int
    """The owner: the token's extension…"""
    client_id: str
    """…and application (the 30-per-user-per-app limit counts per pair)."""
    event_filters: tuple[str, ...]
    """Canonical filter URIs with ``~`` resolved."""
    transport: str
    """``WebHook`` or ``WebSocket``."""
    created_at: float
    """POSIX timestamps (UTC wall clock, so they survive restarts)."""
    expires_at: float
    expires_in: int
    """The TTL asked for; renewals extend by it."""
    address: str | None = None
    """WebHook delivery URL."""
    verification_token: str | None = None
    """Sent back as ``Validation-Token`` on every WebHook delivery."""
    status: str = "Active"
    """``Active`` or ``Blacklisted``."""
    blacklisted_at: float | None = None
    blacklist_reason: str | None = None


MemberAssignment = tuple[int, Collection[str]]
"""``(extension id, permissions)`` as :meth:`MonitoringGroupRepo.bulk_assign` takes it."""


class AccountRepo(Protocol):
    def get(self, account_id: int) -> Account | None: ...
    def find_by_main_number(self, number: str) -> Account | None: ...
    def list_all(self) -> Sequence[Account]: ...
    def create(self, account: Account) -> Account: ...


class ExtensionRepo(Protocol):
    def get(self, extension_id: int) -> Extension | None: ...
    def find_by_number(self, account_id: int, number: str) -> Extension | None: ...
    def find_by_email(self, email: str) -> Extension | None:
        """Case-insensitive e-mail lookup."""
        ...

    def list_for_account(self, account_id: int) -> Sequence[Extension]:
        """Extensions ordered by number."""
        ...

    def create(self, extension: Extension) -> Extension: ...
    def update(self, extension: Extension) -> Extension: ...


class AppRepo(Protocol):
    def get(self, client_id: str) -> App | None: ...
    def list_for_account(self, account_id: int) -> Sequence[App]:
        """Apps bound to the account (not the global ones)."""
        ...

    def create(self, app: App) -> App: ...
    def update(self, app: App) -> App: ...


class DeviceRepo(Protocol):
    def get(self, device_id: str) -> Device | None:
        """Also the lookup by digest username, since authorization id == device id."""
        ...

    def find_by_sip_username(self, username: str) -> Device | None: ...
    def list_for_extension(self, extension_id: int) -> Sequence[Device]:
        """Devices ordered by id."""
        ...

    def list_for_account(self, account_id: int) -> Sequence[Device]: ...
    def create(self, device: Device) -> Device: ...
    def update(self, device: Device) -> Device: ...


class CredentialRepo(Protocol):
    def get(self, jti: str) -> JwtCredential | None: ...
    def list_for_extension(self, extension_id: int) -> Sequence[JwtCredential]: ...
    def create(self, credential: JwtCredential) -> JwtCredential: ...
    def revoke(self, jti: str) -> None: ...


class TokenRepo(Protocol):
    def create(self, record: TokenRecord) -> TokenRecord: ...
    def find_by_access_hash(self, access_hash: str) -> TokenRecord | None: ...
    def find_by_refresh_hash(self, refresh_hash: str) -> TokenRecord | None: ...
    def rotate(self, old: TokenRecord, new: TokenRecord) -> bool:
        """Atomically revoke ``old`` and store ``new``; False if ``old`` was already revoked."""
        ...

    def revoke_session(self, session_id: str) -> int:
        """Revoke every pair of the session; returns how many were active."""
        ...

    def purge_expired(self, now: float) -> int:
        """Delete pairs whose refresh token expired before ``now``; returns the count."""
        ...


class TrunkRepo(Protocol):
    def get(self, trunk_id: str) -> Trunk | None: ...
    def find_by_source(self, address: str) -> Trunk | None:
        """The trunk owning this source IP (any textual form of it), if any."""
        ...

    def list_for_account(self, account_id: int) -> Sequence[Trunk]: ...
    def create(self, trunk: Trunk) -> Trunk: ...


class SecretRepo(Protocol):
    def get(self, name: str) -> str | None: ...
    def get_or_create(self, name: str, factory: Callable[[], str]) -> str:
        """The stored value of ``name``, storing ``factory()`` first if there is none.

        ``factory`` runs outside the store's lock and may use the store; if two callers race,
        both factories may run but both callers get the one value that was stored first.
        """
        ...


class MonitoringGroupRepo(Protocol):
    """Call-monitoring groups and their members.

    Members are extensions of the group's account, one record per extension per group;
    deleting a group deletes its members.
    """

    def get(self, group_id: str) -> MonitoringGroup | None: ...
    def find_by_name(self, account_id: int, name: str) -> MonitoringGroup | None:
        """Case-insensitive name lookup within the account."""
        ...

    def list_for_account(
        self, account_id: int, *, member_extension_id: int | None = None
    ) -> Sequence[MonitoringGroup]:
        """Groups ordered by name; only those containing ``member_extension_id`` if given."""
        ...

    def create(self, group: MonitoringGroup) -> MonitoringGroup:
        """Raises DuplicateRecord (id or name taken) or InvalidRecord (blank name)."""
        ...

    def update(self, group: MonitoringGroup) -> MonitoringGroup:
        """Change name and site; the account cannot change (RecordNotFound if not in it)."""
        ...

    def delete(self, group_id: str) -> None:
        """Delete the group and its members (RecordNotFound if there is no such group)."""
        ...

    def list_members(self, group_id: str) -> Sequence[MonitoringMember]:
        """Members ordered by extension number."""
        ...

    def bulk_assign(
        self,
        group_id: str,
        added: Sequence[MemberAssignment] = (),
        updated: Sequence[MemberAssignment] = (),
        removed: Sequence[int] = (),
    ) -> Sequence[MonitoringMember]:
        """Apply every change in one transaction, or none of them; returns the members.

        ``added`` and ``updated`` both set the extension's permissions to exactly the given
        set (adding it if it is not a member); an empty set removes it, as does ``removed``.
        Removing a non-member is a no-op.

        Raises:
            RecordNotFound: no such group.
            InvalidRecord: an extension does not exist or belongs to another account, a
                permission is not in :data:`MONITORING_PERMISSIONS`, or an extension is named
                more than once.
        """
        ...

    def groups_where(self, extension_id: int, permission: str) -> Sequence[MonitoringGroup]:
        """Groups in which the extension holds ``permission``, ordered by name."""
        ...

    def memberships_in_account(self, account_id: int) -> Sequence[MonitoringMember]:
        """Every member record of every group of the account (input of
        :func:`callwatch.pbx.permissions.may_monitor`)."""
        ...


class SubscriptionRepo(Protocol):
    """Persisted (WebHook) notification subscriptions."""

    def get(self, subscription_id: str) -> SubscriptionRecord | None: ...
    def create(self, record: SubscriptionRecord) -> SubscriptionRecord: ...
    def update(self, record: SubscriptionRecord) -> SubscriptionRecord:
        """Replace every mutable field (RecordNotFound if there is no such subscription)."""
        ...

    def delete(self, subscription_id: str) -> bool:
        """Delete it; False if there was none."""
        ...

    def list_for_owner(self, extension_id: int, client_id: str) -> Sequence[SubscriptionRecord]:
        """The owner's subscriptions (expired ones too), oldest first."""
        ...

    def list_active(self, now: float) -> Sequence[SubscriptionRecord]:
        """Every ``Active`` subscription not expired at ``now`` (to resume delivery)."""
        ...

    def purge_expired(self, before: float) -> int:
        """Delete subscriptions that expired before ``before``; returns the count."""
        ...


class Store(Protocol):
    """Every repository of one store, plus its lifecycle."""

    @property
    def accounts(self) -> AccountRepo: ...
    @property
    def extensions(self) -> ExtensionRepo: ...
    @property
    def apps(self) -> AppRepo: ...
    @property
    def devices(self) -> DeviceRepo: ...
    @property
    def credentials(self) -> CredentialRepo: ...
    @property
    def tokens(self) -> TokenRepo: ...
    @property
    def trunks(self) -> TrunkRepo: ...
    @property
    def secrets(self) -> SecretRepo: ...
    @property
    def monitoring(self) -> MonitoringGroupRepo: ...
    @property
    def subscriptions(self) -> SubscriptionRepo: ...
    def close(self) -> None: ...
