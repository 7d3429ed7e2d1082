"""Small RFC 3261 §25 grammar helpers shared by the parsers."""

from __future__ import annotations

import re

from callwatch.sip.errors import ParseError

_DIGITS = re.compile(r"[0-9]{1,10}")  # 1*DIGIT, ASCII only, capped so int() stays cheap


def is_uint(text: str) -> bool:
    """True for 1 to 10 ASCII digits (nothing else, no sign, no spaces)."""
    return _DIGITS.fullmatch(text) is not None


def parse_uint(text: str, what: str) -> int:
    """Parse an ASCII decimal of at most 10 digits, or raise ParseError naming ``what``."""
    text = text.strip()
    if _DIGITS.fullmatch(text) is None:
        raise ParseError(f"invalid {what} {text[:20]!r}")
    return int(text)
