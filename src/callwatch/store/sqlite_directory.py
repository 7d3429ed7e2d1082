"""SQLite repositories of the directory: accounts, extensions, devices and trunks.

Each class maps one table (trunks: two) to its frozen record from :mod:`callwatch.store.repo`.
All SQL is parameterised.
"""

from __future__ import annotations

import ipaddress
import sqlite3

from callwatch.store.errors import InvalidRecord, RecordNotFound
from callwatch.store.repo import Account, Device, Extension, Trunk
from callwatch.store.sqlite_db import Database, must_change


class SqliteAccounts:
    """Accounts table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, account_id: int) -> Account | None:
        row = self._db.query_one("SELECT * FROM accounts WHERE id = ?", (account_id,))
        return _account(row) if row else None

    def find_by_main_number(self, number: str) -> Account | None:
        row = self._db.query_one("SELECT * FROM accounts WHERE main_number = ?", (number,))
        return _account(row) if row else None

    def list_all(self) -> list[Account]:
        return [_account(row) for row in self._db.query("SELECT * FROM accounts ORDER BY id")]

    def create(self, account: Account) -> Account:
        self._db.execute(
            "INSERT INTO accounts (id, name, main_number, sip_domain) VALUES (?, ?, ?, ?)",
            (account.id, account.name, account.main_number, account.sip_domain),
        )
        return account


def _account(row: sqlite3.Row) -> Account:
    return Account(
        id=row["id"], name=row["name"], main_number=row["main_number"], sip_domain=row["sip_domain"]
    )


_EXTENSION_COLUMNS = (
    "id, account_id, number, name, first_name, last_name, email, type, status, password_hash, "
    "is_admin"
)


class SqliteExtensions:
    """Extensions table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, extension_id: int) -> Extension | None:
        return self._one("id = ?", (extension_id,))

    def find_by_number(self, account_id: int, number: str) -> Extension | None:
        return self._one("account_id = ? AND number = ?", (account_id, number))

    def find_by_email(self, email: str) -> Extension | None:
        return self._one("email = ?", (email,))

    def list_for_account(self, account_id: int) -> list[Extension]:
        rows = self._db.query(
            "SELECT * FROM extensions WHERE account_id = ? ORDER BY length(number), number, id",
            (account_id,),
        )
        return [_extension(row) for row in rows]

    def create(self, extension: Extension) -> Extension:
        self._db.execute(
            f"INSERT INTO extensions ({_EXTENSION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            _extension_values(extension),
        )
        return extension

    def update(self, extension: Extension) -> Extension:
        values = _extension_values(extension)
        count = self._db.execute(
            "UPDATE extensions SET account_id=?, number=?, name=?, first_name=?, last_name=?, "
            "email=?, type=?, status=?, password_hash=?, is_admin=? WHERE id=?",
            (*values[1:], extension.id),
        )
        must_change(count, f"extension {extension.id}")
        return extension

    def _one(self, where: str, params: tuple[object, ...]) -> Extension | None:
        row = self._db.query_one(f"SELECT * FROM extensions WHERE {where}", params)
        return _extension(row) if row else None


def _extension_values(ext: Extension) -> tuple[object, ...]:
    return (
        ext.id,
        ext.account_id,
        ext.number,
        ext.name,
        ext.first_name,
        ext.last_name,
        ext.email,
        ext.type,
        ext.status,
        ext.password_hash,
        int(ext.is_admin),
    )


def _extension(row: sqlite3.Row) -> Extension:
    return Extension(
        id=row["id"],
        account_id=row["account_id"],
        number=row["number"],
        name=row["name"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        email=row["email"],
        type=row["type"],
        status=row["status"],
        password_hash=row["password_hash"],
        is_admin=bool(row["is_admin"]),
    )


_DEVICE_COLUMNS = (
    "id, account_id, extension_id, name, type, sku, serial, computer_name, sip_username, "
    "sip_password"
)


class SqliteDevices:
    """Devices table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, device_id: str) -> Device | None:
        return self._one("id = ?", (device_id,))

    def find_by_sip_username(self, username: str) -> Device | None:
        return self._one("sip_username = ?", (username,))

    def list_for_extension(self, extension_id: int) -> list[Device]:
        return self._many("extension_id = ?", (extension_id,))

    def list_for_account(self, account_id: int) -> list[Device]:
        return self._many("account_id = ?", (account_id,))

    def create(self, device: Device) -> Device:
        self._db.execute(
            f"INSERT INTO devices ({_DEVICE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
            _device_values(device),
        )
        return device

    def update(self, device: Device) -> Device:
        count = self._db.execute(
            "UPDATE devices SET account_id=?, extension_id=?, name=?, type=?, sku=?, serial=?, "
            "computer_name=?, sip_username=?, sip_password=? WHERE id=?",
            (*_device_values(device)[1:], device.id),
        )
        must_change(count, f"device {device.id}")
        return device

    def _one(self, where: str, params: tuple[object, ...]) -> Device | None:
        row = self._db.query_one(f"SELECT * FROM devices WHERE {where}", params)
        return _device(row) if row else None

    def _many(self, where: str, params: tuple[object, ...]) -> list[Device]:
        rows = self._db.query(
            f"SELECT * FROM devices WHERE {where} ORDER BY length(id), id", params
        )
        return [_device(row) for row in rows]


def _device_values(device: Device) -> tuple[object, ...]:
    return (
        device.id,
        device.account_id,
        device.extension_id,
        device.name,
        device.type,
        device.sku,
        device.serial,
        device.computer_name,
        device.sip_username,
        device.sip_password,
    )


def _device(row: sqlite3.Row) -> Device:
    return Device(
        id=row["id"],
        account_id=row["account_id"],
        extension_id=row["extension_id"],
        name=row["name"],
        type=row["type"],
        sku=row["sku"],
        serial=row["serial"],
        computer_name=row["computer_name"],
        sip_username=row["sip_username"],
        sip_password=row["sip_password"],
    )


def canonical_address(address: str) -> str:
    """The canonical text of an IP address (``::ffff:a.b.c.d`` becomes ``a.b.c.d``).

    Raises:
        InvalidRecord: ``address`` is not an IPv4 or IPv6 address.
    """
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError as exc:
        raise InvalidRecord(f"not an IP address: {address!r}") from exc
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return ip.compressed


class SqliteTrunks:
    """Trunks and their source addresses."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, trunk_id: str) -> Trunk | None:
        row = self._db.query_one("SELECT * FROM trunks WHERE id = ?", (trunk_id,))
        return self._trunk(row) if row else None

    def find_by_source(self, address: str) -> Trunk | None:
        try:
            canonical = canonical_address(address)
        except InvalidRecord:
            return None
        row = self._db.query_one(
            "SELECT trunks.* FROM trunks JOIN trunk_sources ON trunks.id = trunk_sources.trunk_id "
            "WHERE trunk_sources.address = ?",
            (canonical,),
        )
        return self._trunk(row) if row else None

    def list_for_account(self, account_id: int) -> list[Trunk]:
        rows = self._db.query(
            "SELECT * FROM trunks WHERE account_id = ? ORDER BY name", (account_id,)
        )
        return [self._trunk(row) for row in rows]

    def create(self, trunk: Trunk) -> Trunk:
        addresses = tuple(dict.fromkeys(canonical_address(a) for a in trunk.source_addresses))
        with self._db.transaction():
            self._db.execute(
                "INSERT INTO trunks (id, account_id, name, number) VALUES (?, ?, ?, ?)",
                (trunk.id, trunk.account_id, trunk.name, trunk.number),
            )
            for position, address in enumerate(addresses):
                self._db.execute(
                    "INSERT INTO trunk_sources (address, trunk_id, position) VALUES (?, ?, ?)",
                    (address, trunk.id, position),
                )
        return self._require(trunk.id)

    def _require(self, trunk_id: str) -> Trunk:
        trunk = self.get(trunk_id)
        if trunk is None:
            raise RecordNotFound(f"trunk {trunk_id} does not exist")
        return trunk

    def _trunk(self, row: sqlite3.Row) -> Trunk:
        sources = self._db.query(
            "SELECT address FROM trunk_sources WHERE trunk_id = ? ORDER BY position", (row["id"],)
        )
        return Trunk(
            id=row["id"],
            account_id=row["account_id"],
            name=row["name"],
            source_addresses=tuple(source["address"] for source in sources),
            number=row["number"],
        )
