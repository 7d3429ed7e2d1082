"""Account and extension resources (ringcentral-api.md §2.4; SPEC GetExtensionInfoResponse)."""

from __future__ import annotations

from enum import StrEnum

from callwatch.api.schemas.common import ApiModel, Navigation, Paging
from callwatch.store.repo import Account, Extension


class ExtensionStatus(StrEnum):
    ENABLED = "Enabled"
    DISABLED = "Disabled"
    FROZEN = "Frozen"
    NOT_ACTIVATED = "NotActivated"
    UNASSIGNED = "Unassigned"


class ExtensionType(StrEnum):
    USER = "User"
    DEPARTMENT = "Department"
    ANNOUNCEMENT = "Announcement"
    VOICEMAIL = "Voicemail"
    DIGITAL_USER = "DigitalUser"
    VIRTUAL_USER = "VirtualUser"
    FAX_USER = "FaxUser"
    PAGING_ONLY = "PagingOnly"
    SHARED_LINES_GROUP = "SharedLinesGroup"
    DELEGATED_LINES_GROUP = "DelegatedLinesGroup"
    GROUP_CALL_PICKUP = "GroupCallPickup"
    IVR_MENU = "IvrMenu"
    APPLICATION_EXTENSION = "ApplicationExtension"
    PROXY_ADMIN = "ProxyAdmin"
    ROOM_CONNECTOR = "RoomConnector"
    PARK_LOCATION = "ParkLocation"
    LIMITED = "Limited"
    BOT = "Bot"
    SITE = "Site"
    ROOM = "Room"
    FLEXIBLE_USER = "FlexibleUser"
    UNKNOWN = "Unknown"


class Contact(ApiModel):
    first_name: str
    last_name: str
    email: str | None = None
    email_as_login_name: bool | None = None


class Enabled(ApiModel):
    enabled: bool


class ExtensionPermissions(ApiModel):
    admin: Enabled
    international_calling: Enabled


class AccountRef(ApiModel):
    id: str
    """A string here, as in SPEC's single-extension ``account`` object."""
    uri: str


class ExtensionResource(ApiModel):
    """An extension in a list (``id`` is an integer)."""

    id: int
    uri: str
    extension_number: str
    name: str
    type: str
    status: str
    contact: Contact
    permissions: ExtensionPermissions
    hidden: bool = False


class ExtensionInfo(ExtensionResource):
    """A single extension (adds the account reference)."""

    account: AccountRef


class ExtensionList(ApiModel):
    uri: str
    records: list[ExtensionResource]
    paging: Paging
    navigation: Navigation


class AccountInfo(ApiModel):
    id: int
    uri: str
    main_number: str
    status: str = "Confirmed"
    setup_wizard_state: str = "Completed"


def account_uri(base_url: str, account_id: int) -> str:
    return f"{base_url}/restapi/v1.0/account/{account_id}"


def extension_uri(base_url: str, ext: Extension) -> str:
    return f"{account_uri(base_url, ext.account_id)}/extension/{ext.id}"


def extension_resource(ext: Extension, base_url: str) -> ExtensionResource:
    """The list-record form of ``ext``."""
    return ExtensionResource(
        id=ext.id,
        uri=extension_uri(base_url, ext),
        extension_number=ext.number,
        name=ext.name,
        type=ext.type,
        status=ext.status,
        contact=Contact(
            first_name=ext.first_name,
            last_name=ext.last_name,
            email=ext.email,
            email_as_login_name=True if ext.email else None,
        ),
        permissions=ExtensionPermissions(
            admin=Enabled(enabled=ext.is_admin), international_calling=Enabled(enabled=False)
        ),
    )


def extension_info(ext: Extension, base_url: str) -> ExtensionInfo:
    """The single-resource form of ``ext``."""
    account = AccountRef(id=str(ext.account_id), uri=account_uri(base_url, ext.account_id))
    return ExtensionInfo(**dict(extension_resource(ext, base_url)), account=account)


def account_info(account: Account, base_url: str) -> AccountInfo:
    """The account resource."""
    return AccountInfo(
        id=account.id, uri=account_uri(base_url, account.id), main_number=account.main_number
    )
