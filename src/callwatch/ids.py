"""Identifier generators over an injectable random source.

Everything that needs a tag, branch, Call-ID, nonce, token or RingCentral-style id gets an
:class:`IdGenerator` passed in, so tests can seed it and production uses ``secrets``.
"""

from __future__ import annotations

import random
import secrets
import string

_ALNUM = string.ascii_letters + string.digits
RFC3261_BRANCH_MAGIC = "z9hG4bK"  # RFC 3261 §8.1.1.7


class IdGenerator:
    """Makes random identifiers; pass ``seed`` for reproducible tests."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng: random.Random = (
            random.Random(seed) if seed is not None else secrets.SystemRandom()
        )

    def token(self, length: int = 16) -> str:
        """A random alphanumeric string."""
        return "".join(self._rng.choice(_ALNUM) for _ in range(length))

    def hex(self, nbytes: int = 16) -> str:
        """A random lower-case hex string of ``2 * nbytes`` characters."""
        return self._rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()

    def digits(self, length: int) -> str:
        """A random decimal string that does not start with 0."""
        first = str(self._rng.randint(1, 9))
        return first + "".join(str(self._rng.randint(0, 9)) for _ in range(length - 1))

    def integer(self, low: int, high: int) -> int:
        """A random integer in ``[low, high]``."""
        return self._rng.randint(low, high)

    def branch(self) -> str:
        """A Via branch carrying the RFC 3261 magic cookie."""
        return RFC3261_BRANCH_MAGIC + self.token(16)

    def tag(self) -> str:
        """A From/To tag."""
        return self.token(12)

    def call_id(self, host: str) -> str:
        """A globally unique Call-ID."""
        return f"{self.token(20)}@{host}"

    def secret_bytes(self, nbytes: int = 32) -> bytes:
        """Random bytes for keys and secrets."""
        return self._rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big")
