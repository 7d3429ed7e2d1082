"""Password and secret hashing.

User passwords are hashed with scrypt (RFC 7914) and a per-password salt; the encoded form is
``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`` so parameters can be raised later without breaking
stored hashes. Random secrets (OAuth client secrets, access and refresh tokens) have enough
entropy for a plain SHA-256 digest, which also makes them indexable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

SCRYPT_N = 2**14  # RFC 7914 §2 cost; 16 MiB with r=8, ~30 ms on a laptop
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_DKLEN = 32
SALT_BYTES = 16
_SCHEME = "scrypt"


def hash_password(password: str, *, salt: bytes) -> str:
    """Hash ``password`` with scrypt and ``salt`` (pass ``IdGenerator.secret_bytes(16)``).

    Returns:
        The self-describing encoded hash to store.
    """
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return "$".join(
        (_SCHEME, str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest))
    )


def verify_password(password: str, encoded: str) -> bool:
    """True if ``password`` matches ``encoded``; False for a mismatch or a malformed hash."""
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != _SCHEME:
        return False
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, expected = _unb64(parts[4]), _unb64(parts[5])
        digest = _scrypt(password, salt, n, r, p)
    except ValueError:
        return False
    return hmac.compare_digest(digest, expected)


def sha256_hex(secret: str) -> str:
    """The SHA-256 hex digest of a random secret or token."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secret_matches(secret: str, digest: str) -> bool:
    """Constant-time check of ``secret`` against a :func:`sha256_hex` digest."""
    return hmac.compare_digest(sha256_hex(secret), digest)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=0, dklen=SCRYPT_DKLEN
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError("bad base64 in password hash") from exc
