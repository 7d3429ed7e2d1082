"""Pydantic models of the RingCentral JSON shapes, one module per resource.

Attributes are snake_case; the wire names are camelCase aliases (``serialize_by_alias``), except
for the OAuth token response, which RingCentral sends in snake_case.
"""
