"""Persistent configuration: accounts, extensions, apps, devices, credentials, tokens, trunks,
call-monitoring groups.

Never live call state. :class:`Store` and the repository protocols live in
:mod:`callwatch.store.repo`; :class:`SqliteStore` is the default implementation; creation
functions and the demo tenant are in :mod:`callwatch.store.provisioning`.
"""

from callwatch.store.errors import DuplicateRecord, InvalidRecord, RecordNotFound, StoreError
from callwatch.store.repo import (
    Account,
    App,
    Device,
    Extension,
    JwtCredential,
    MonitoringGroup,
    MonitoringMember,
    Store,
    TokenRecord,
    Trunk,
)
from callwatch.store.sqlite import SqliteStore

__all__ = [
    "Account",
    "App",
    "Device",
    "DuplicateRecord",
    "Extension",
    "InvalidRecord",
    "JwtCredential",
    "MonitoringGroup",
    "MonitoringMember",
    "RecordNotFound",
    "SqliteStore",
    "Store",
    "StoreError",
    "TokenRecord",
    "Trunk",
]
