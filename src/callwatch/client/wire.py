"""RingCentral JSON as the client sees it: type aliases and narrowing helpers (pure).

The REST client hands out RingCentral's camelCase JSON as plain dicts (:data:`JsonObject`);
only a few shapes the SDK itself depends on become dataclasses (``Token``, ``SipInfo``). The
helpers here read one field with the right type or raise :class:`ResponseError`, so a server
that sends something unexpected fails with a message naming the field, never a ``KeyError``.
"""

from __future__ import annotations

import json
from typing import Any, TypeAlias

from callwatch.client.api_errors import ResponseError

JsonValue: TypeAlias = "dict[str, JsonValue] | list[JsonValue] | str | int | float | bool | None"
"""Any JSON value (request bodies)."""
JsonObject: TypeAlias = dict[str, Any]
"""A JSON object as parsed — RingCentral resources and notification envelopes.

Values are typed ``Any`` on purpose, as ``httpx.Response.json()`` does: app code indexes
RingCentral's nested JSON (``envelope["body"]["parties"][0]["status"]["code"]``) and a recursive
union would force a cast at every step. The SDK itself reads the fields it depends on through
the checked helpers below; that is the documented exception to "no Any in public signatures".
"""

__all__ = [
    "JsonObject",
    "JsonValue",
    "decode_object",
    "int_field",
    "object_field",
    "objects_field",
    "optional_text",
    "text_field",
]


def decode_object(text: str | bytes, *, what: str) -> JsonObject:
    """Parse ``text`` as one JSON object.

    Raises:
        ResponseError: not JSON, or JSON that is not an object.
    """
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise ResponseError(f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise ResponseError(f"{what} is not a JSON object")
    return value


def object_field(obj: JsonObject, key: str) -> JsonObject:
    """``obj[key]`` as an object (missing or null → ``{}``)."""
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ResponseError(f"[{key}] is not an object")
    return value


def objects_field(obj: JsonObject, key: str) -> list[JsonObject]:
    """``obj[key]`` as a list of objects (missing or null → ``[]``)."""
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ResponseError(f"[{key}] is not a list of objects")
    return [item for item in value if isinstance(item, dict)]


def text_field(obj: JsonObject, key: str) -> str:
    """``obj[key]`` as a string; ids sent as numbers (RingCentral's extension ids) are accepted.

    Raises:
        ResponseError: missing, or neither a string nor an integer.
    """
    value = optional_text(obj, key)
    if value is None:
        raise ResponseError(f"[{key}] is missing")
    return value


def optional_text(obj: JsonObject, key: str) -> str | None:
    """``obj[key]`` as a string, or None when missing/null."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ResponseError(f"[{key}] is not a string")
    return str(value)


def int_field(obj: JsonObject, key: str, default: int | None = None) -> int:
    """``obj[key]`` as an integer (numeric strings accepted), or ``default`` when missing.

    Raises:
        ResponseError: missing without a default, or not an integer.
    """
    value = obj.get(key)
    if value is None:
        if default is None:
            raise ResponseError(f"[{key}] is missing")
        return default
    if isinstance(value, bool):
        raise ResponseError(f"[{key}] is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ResponseError(f"[{key}] is not an integer")
