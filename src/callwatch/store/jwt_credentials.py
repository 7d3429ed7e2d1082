"""JWT "personal credentials" for the ``urn:ietf:params:oauth:grant-type:jwt-bearer`` grant.

A credential is an HS256-signed JWT (RFC 7519) whose key is the server secret kept in the
store's ``secrets`` table. Claims: ``iss`` (:data:`ISSUER`), ``sub`` (extension id),
``account_id``, ``jti`` (the revocable :class:`~callwatch.store.repo.JwtCredential` key) and,
optionally, ``iat``/``exp``. Time claims are checked by the caller against its injected clock,
never against ``time.time()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import jwt

from callwatch.ids import IdGenerator
from callwatch.store.repo import JwtCredential, Store

ISSUER = "callwatch"
ALGORITHM = "HS256"
SIGNING_KEY_SECRET = "jwt-signing-key"
"""Name of the server secret in ``store.secrets``."""
_KEY_BYTES = 32
_REQUIRED = ("iss", "sub", "jti", "account_id")


class InvalidJwtCredential(ValueError):
    """The assertion is not a credential we issued (bad signature, shape or claims)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JwtClaims:
    """The verified claims of a credential."""

    jti: str
    extension_id: int
    account_id: int
    expires_at: float | None
    """POSIX ``exp`` if the credential expires."""


def signing_key(store: Store, ids: IdGenerator) -> str:
    """The server's HS256 key, created on first use and stable afterwards."""
    return store.secrets.get_or_create(SIGNING_KEY_SECRET, lambda: ids.hex(_KEY_BYTES))


def encode_credential(
    credential: JwtCredential,
    *,
    key: str,
    issued_at: datetime | None = None,
    expires_at: datetime | None = None,
) -> str:
    """Sign ``credential`` into a compact JWT."""
    claims: dict[str, str | int] = {
        "iss": ISSUER,
        "sub": str(credential.extension_id),
        "account_id": str(credential.account_id),
        "jti": credential.jti,
    }
    if issued_at is not None:
        claims["iat"] = int(issued_at.timestamp())
    if expires_at is not None:
        claims["exp"] = int(expires_at.timestamp())
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def decode_credential(token: str, *, key: str) -> JwtClaims:
    """Verify the signature and claim shapes of ``token`` (not revocation, not expiry).

    Raises:
        InvalidJwtCredential: with a message safe to show to the client.
    """
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
    except jwt.InvalidTokenError as exc:
        raise InvalidJwtCredential("JWT credential is invalid") from exc
    return _claims(claims)


def _claims(claims: dict[str, object]) -> JwtClaims:
    if any(name not in claims for name in _REQUIRED):
        raise InvalidJwtCredential("JWT credential lacks required claims")
    exp = claims.get("exp")
    try:
        return JwtClaims(
            jti=str(claims["jti"]),
            extension_id=int(str(claims["sub"])),
            account_id=int(str(claims["account_id"])),
            expires_at=float(exp) if isinstance(exp, int | float) else None,
        )
    except ValueError as exc:
        raise InvalidJwtCredential("JWT credential has malformed claims") from exc
