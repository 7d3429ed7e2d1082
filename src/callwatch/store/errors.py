"""Errors raised by the configuration store.

Hierarchy::

    StoreError                    base class; never raised directly
    ├── RecordNotFound            an update/revoke named a record that does not exist
    ├── DuplicateRecord           a unique key (number, e-mail, SIP username, …) is taken
    └── InvalidRecord             a value cannot be stored (bad E.164 number, bad IP address, …)

The API maps them to RingCentral error bodies (404 CMN-102, 409/400 CMN-101).
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every store error."""


class RecordNotFound(StoreError):
    """The record an operation refers to does not exist."""


class DuplicateRecord(StoreError):
    """A unique key of the record is already used by another record."""


class InvalidRecord(StoreError, ValueError):
    """A field value is malformed and cannot be stored."""
