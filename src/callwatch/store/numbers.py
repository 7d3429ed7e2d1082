"""Phone-number helpers (E.164, ITU-T E.164 §6)."""

from __future__ import annotations

import re

from callwatch.store.errors import InvalidRecord

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_SEPARATORS = re.compile(r"[\s().-]")


def normalize_e164(number: str) -> str:
    """Canonical E.164 form of ``number``: separators removed, leading ``+`` added.

    Raises:
        InvalidRecord: the result is not 7–15 digits after ``+`` with a non-zero first digit.
    """
    text = _SEPARATORS.sub("", number.strip())
    if not text.startswith("+"):
        text = "+" + text
    if not _E164.match(text):
        raise InvalidRecord(f"not an E.164 phone number: {number!r}")
    return text


def is_e164(number: str) -> bool:
    """True if :func:`normalize_e164` accepts ``number``."""
    try:
        normalize_e164(number)
    except InvalidRecord:
        return False
    return True
