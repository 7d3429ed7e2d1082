"""SIP digest authentication, server and client side, sans-I/O.

Theory of operation
-------------------
A UAS answers an unauthenticated request with 401/407 carrying one ``WWW-Authenticate`` /
``Proxy-Authenticate`` per offered algorithm (:meth:`DigestAuthenticator.challenge`); the UAC
answers with ``Authorization`` / ``Proxy-Authorization`` (:func:`build_credentials`), checked by
:meth:`DigestAuthenticator.verify`. RFC 3261 §22 (https://www.rfc-editor.org/rfc/rfc3261#section-22),
RFC 7616 (https://www.rfc-editor.org/rfc/rfc7616), RFC 8760 (https://www.rfc-editor.org/rfc/rfc8760).

Nonces are stateless: ``base64(ts || HMAC-SHA256(secret, ts || realm))`` where ``ts`` is the
``now`` passed in, packed as a big-endian double. Verifying recomputes the HMAC and checks the
age, so nothing is stored between the challenge and the answer. There is no ``nc`` replay
tracking: a captured answer can be replayed until its nonce goes stale (``nonce_lifetime``).

Compatibility rules (design/ringcentral-api.md §6.2, §6.3):

- Challenges are offered in the order given to the authenticator, MD5 first by default. RFC 8760
  §2.3 asks for the preferred algorithm on top, but the RingCentral softphone SDKs read only the
  first ``WWW-Authenticate`` header and only do MD5.
- A challenge never starts with ``nonce``: the SDKs extract it with the regex ``, nonce="(.+?)"``.
- Answers without ``qop`` (RFC 2069 style) are accepted even though the challenge offered
  ``qop="auth"``; ``algorithm`` may be quoted or bare.
- The digest ``uri`` is hashed as sent and need not equal the request-URI.

Parsing never raises anything but :class:`~callwatch.sip.errors.ParseError`. Unknown
parameters are ignored (RFC 7616 §3.3) and are not kept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum

from callwatch.sip.errors import ParseError

MAX_HEADER_LENGTH = 4096
"""Longest authentication header value we parse (STYLE.md rule 8; real ones are < 400)."""

_ALGORITHMS: dict[str, tuple[str, bool]] = {
    "MD5": ("md5", False),
    "MD5-sess": ("md5", True),
    "SHA-256": ("sha256", False),
    "SHA-256-sess": ("sha256", True),
}
"""Supported algorithm names (RFC 7616 §6.1 registry) → (hashlib name, is a -sess variant)."""
_CANONICAL = {name.lower(): name for name in _ALGORITHMS}
_QOPS = ("auth", "auth-int")

_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"  # RFC 3261 §25.1 token
_SCHEME_RE = re.compile(rf"[ \t]*({_TOKEN})(?:[ \t]+|\Z)")
_PARAM_RE = re.compile(
    rf"[ \t]*(?P<name>{_TOKEN})[ \t]*=[ \t]*"
    r'(?:"(?P<quoted>(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[^\x00-\x08\x0a-\x1f\x7f])*)"'
    r'|(?P<bare>[^\x00-\x20\x7f",\\]+))[ \t]*'
)
_COMMA_RE = re.compile(r"[ \t]*,")
_UNESCAPE_RE = re.compile(r"\\(.)")
_BARE_OK_RE = re.compile(_TOKEN)
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_NC_RE = re.compile(r"[0-9a-fA-F]{8}")
_HEX_RE = re.compile(r"[0-9a-fA-F]+")
_NONCE_TS = struct.Struct("!d")


class AuthResult(Enum):
    """Outcome of :meth:`DigestAuthenticator.verify`."""

    OK = "ok"
    STALE = "stale"  # right password, nonce too old: re-challenge with stale=true
    BAD_RESPONSE = "bad-response"  # wrong password (or malformed response / missing cnonce)
    BAD_NONCE = "bad-nonce"  # not a nonce we issued for this realm
    REALM_MISMATCH = "realm-mismatch"
    UNSUPPORTED_ALGORITHM = "unsupported-algorithm"  # unknown, or known but not offered
    UNSUPPORTED_QOP = "unsupported-qop"


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    """A ``WWW-Authenticate`` / ``Proxy-Authenticate`` Digest value (RFC 7616 §3.3)."""

    realm: str
    """Protection space; for our registrar the provisioned SIP domain."""
    nonce: str
    """Server nonce, echoed by the client."""
    algorithm: str = "MD5"
    """Canonical name if known (``MD5``, ``SHA-256``, ``…-sess``), else as received."""
    qop: tuple[str, ...] = ()
    """Offered quality-of-protection options, e.g. ``("auth",)``; empty means RFC 2069 style."""
    opaque: str | None = None
    """Opaque string the client must echo."""
    stale: bool = False
    """True when the previous answer had a right password but an expired nonce."""
    domain: tuple[str, ...] = ()
    """URIs of the protection space (space-separated on the wire)."""

    @classmethod
    def parse(cls, value: str) -> DigestChallenge:
        """Parse a challenge header value such as ``Digest realm="x", nonce="y"``.

        Raises:
            ParseError: (400) not a well-formed Digest challenge, or realm/nonce missing.
        """
        params = _parse_params(value, "challenge")
        return cls(
            realm=_required(params, "realm", "challenge"),
            nonce=_required(params, "nonce", "challenge"),
            algorithm=_canonical_algorithm(params.get("algorithm", "MD5")),
            qop=tuple(q for q in (p.strip(" \t") for p in params.get("qop", "").split(",")) if q),
            opaque=params.get("opaque"),
            stale=_parse_stale(params.get("stale")),
            domain=tuple(params.get("domain", "").split()),
        )

    def serialize(self) -> str:
        """Format as ``Digest realm="…", nonce="…", algorithm=MD5, qop="auth"``.

        ``realm`` always comes first so that ``nonce`` is preceded by ``", "`` (see module doc).

        Raises:
            ValueError: a value contains control characters.
        """
        return _format(
            ("realm", self.realm, True),
            ("nonce", self.nonce, True),
            ("algorithm", self.algorithm, False),
            ("qop", ",".join(self.qop) or None, True),
            ("opaque", self.opaque, True),
            ("stale", "true" if self.stale else None, False),
            ("domain", " ".join(self.domain) or None, True),
        )


@dataclass(frozen=True, slots=True)
class DigestCredentials:
    """An ``Authorization`` / ``Proxy-Authorization`` Digest value (RFC 7616 §3.4)."""

    username: str
    """For RingCentral devices the authorization id, not the SIP user."""
    realm: str
    """Realm the client hashed with (the RingCentral SDK uses its own domain setting)."""
    nonce: str
    """Nonce from the challenge."""
    uri: str
    """Digest URI, hashed as sent."""
    response: str
    """Hex digest proving knowledge of the password."""
    algorithm: str | None = None
    """Canonical name if known, else as received; ``None`` (absent) means MD5."""
    cnonce: str | None = None
    """Client nonce; present whenever ``qop`` is."""
    opaque: str | None = None
    """Echo of the challenge's opaque."""
    qop: str | None = None
    """Chosen quality of protection (``auth``/``auth-int``); ``None`` for RFC 2069 style."""
    nc: str | None = None
    """Nonce count exactly as sent (8 hex digits, hashed verbatim); present whenever ``qop`` is."""

    @property
    def effective_algorithm(self) -> str:
        """``algorithm``, or ``MD5`` when absent (RFC 7616 §3.3)."""
        return self.algorithm or "MD5"

    @classmethod
    def parse(cls, value: str) -> DigestCredentials:
        """Parse a credentials header value such as ``Digest username="u", realm="r", …``.

        Raises:
            ParseError: (400) not well-formed, a required parameter is missing, ``qop`` without
                ``cnonce``/``nc``, or ``nc`` is not 8 hex digits.
        """
        params = _parse_params(value, "credentials")
        algorithm = params.get("algorithm")
        required = ("username", "realm", "nonce", "uri", "response")
        creds = cls(
            **{name: _required(params, name, "credentials") for name in required},
            algorithm=None if algorithm is None else _canonical_algorithm(algorithm),
            cnonce=params.get("cnonce"),
            opaque=params.get("opaque"),
            qop=params.get("qop"),
            nc=params.get("nc"),
        )
        if creds.qop is not None and (creds.cnonce is None or creds.nc is None):
            raise ParseError("Digest credentials with qop need cnonce and nc")
        if creds.nc is not None and not _NC_RE.fullmatch(creds.nc):
            raise ParseError(f"Digest nc must be 8 hex digits, got {creds.nc!r}")
        return creds

    def serialize(self) -> str:
        """Format as ``Digest username="…", realm="…", nonce="…", uri="…", response="…", …``.

        Raises:
            ValueError: a value contains control characters.
        """
        return _format(
            ("username", self.username, True),
            ("realm", self.realm, True),
            ("nonce", self.nonce, True),
            ("uri", self.uri, True),
            ("response", self.response, True),
            ("algorithm", self.algorithm, False),
            ("cnonce", self.cnonce, True),
            ("opaque", self.opaque, True),
            ("qop", self.qop, False),
            ("nc", self.nc, False),
        )


def compute_ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """``H(username:realm:password)``, what a store may keep instead of the password.

    For ``-sess`` algorithms this is still the plain hash; the session key is derived per
    request. RFC 7616 §3.4.2 (https://www.rfc-editor.org/rfc/rfc7616#section-3.4.2).

    Raises:
        ValueError: ``algorithm`` is not supported.
    """
    hash_name, _ = _algorithm_info(algorithm)
    return _h(hash_name, f"{username}:{realm}:{password}")


def build_credentials(
    challenge: DigestChallenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str,
    nc: int = 1,
    body: bytes = b"",
) -> DigestCredentials:
    """Answer ``challenge`` for a request (UAC side, RFC 3261 §22.2, RFC 7616 §3.4).

    Uses ``qop=auth`` when offered, else ``auth-int`` (hashing ``body``) when that alone is
    offered, else the RFC 2069 form without qop. ``cnonce`` is sent only with qop or ``-sess``.

    Raises:
        ValueError: unsupported algorithm, or ``nc`` outside 1..0xFFFFFFFF.
    """
    if not 0 < nc <= 0xFFFFFFFF:
        raise ValueError(f"nc out of range: {nc}")
    hash_name, sess = _algorithm_info(challenge.algorithm)
    offered = [q.lower() for q in challenge.qop]
    qop = next((q for q in _QOPS if q in offered), None)
    creds = DigestCredentials(
        username=username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response="",
        algorithm=challenge.algorithm,
        cnonce=cnonce if qop or sess else None,
        opaque=challenge.opaque,
        qop=qop,
        nc=f"{nc:08x}" if qop else None,
    )
    ha1 = compute_ha1(username, challenge.realm, password, challenge.algorithm)
    response = _expected_response(creds, hash_name, sess, ha1=ha1, method=method, body=body)
    return replace(creds, response=response or "")


class DigestAuthenticator:
    """Issues challenges and verifies answers for one realm (UAS side, RFC 3261 §22.1)."""

    def __init__(
        self,
        *,
        realm: str,
        secret: bytes,
        nonce_lifetime: float = 300.0,
        algorithms: Sequence[str] = ("MD5", "SHA-256"),
    ) -> None:
        """Args:
        realm: the protection space, for the registrar the provisioned SIP domain.
        secret: HMAC key for nonces; share it between processes that verify each other's.
        nonce_lifetime: seconds (in the units of ``now``) a nonce stays fresh.
        algorithms: offered algorithms, in challenge order (MD5 first: see module doc).

        Raises:
            ValueError: empty secret or algorithm list, unknown algorithm, lifetime <= 0.
        """
        if not secret:
            raise ValueError("nonce secret must not be empty")
        if not nonce_lifetime > 0:
            raise ValueError(f"nonce_lifetime must be positive, got {nonce_lifetime}")
        if not algorithms:
            raise ValueError("at least one algorithm must be offered")
        self._realm = realm
        self._secret = secret
        self._lifetime = nonce_lifetime
        self._algorithms = tuple(_canonical_algorithm(a) for a in algorithms)
        for name in self._algorithms:
            _algorithm_info(name)

    @property
    def realm(self) -> str:
        """The realm challenges carry and answers must match."""
        return self._realm

    def challenge(self, now: float, *, stale: bool = False) -> list[DigestChallenge]:
        """One challenge per offered algorithm, all sharing a nonce minted at ``now``.

        Put each in its own ``WWW-Authenticate`` (or ``Proxy-Authenticate``) header, in order.
        Pass ``stale=True`` after :attr:`AuthResult.STALE` (RFC 7616 §3.3).
        """
        nonce = self.make_nonce(now)
        return [
            DigestChallenge(realm=self._realm, nonce=nonce, algorithm=a, qop=("auth",), stale=stale)
            for a in self._algorithms
        ]

    def make_nonce(self, now: float) -> str:
        """``base64(ts || HMAC-SHA256(secret, ts || realm))`` with ``ts`` = ``now`` packed."""
        stamp = _NONCE_TS.pack(now)
        return base64.b64encode(stamp + self._mac(stamp)).decode("ascii")

    def verify(
        self,
        credentials: DigestCredentials,
        *,
        method: str,
        password: str | None = None,
        ha1: str | None = None,
        now: float,
        body: bytes = b"",
    ) -> AuthResult:
        """Check an answer to one of our challenges (RFC 7616 §3.4, RFC 2069 form accepted).

        Args:
            credentials: the parsed Authorization / Proxy-Authorization value.
            method: the request method, hashed into HA2 (RFC 3261 §22.4).
            password: the user's password, or ``ha1``: :func:`compute_ha1` for
                ``credentials.effective_algorithm`` (give exactly one of the two).
            now: current time, in the units given to :meth:`challenge`.
            body: the request body, used only for ``qop=auth-int``.

        Returns:
            :attr:`AuthResult.OK`, or the first problem found. :attr:`AuthResult.STALE` is
            returned only when the response is right for an authentic but expired nonce.

        Raises:
            ValueError: neither or both of ``password`` and ``ha1`` given.
        """
        if (password is None) == (ha1 is None):
            raise ValueError("pass exactly one of password and ha1")
        algorithm = _canonical_algorithm(credentials.effective_algorithm)
        if algorithm not in self._algorithms:
            return AuthResult.UNSUPPORTED_ALGORITHM
        if credentials.realm != self._realm:
            return AuthResult.REALM_MISMATCH
        if credentials.qop is not None and credentials.qop.lower() not in _QOPS:
            return AuthResult.UNSUPPORTED_QOP
        issued = self._nonce_time(credentials.nonce)
        if issued is None:
            return AuthResult.BAD_NONCE
        if ha1 is None:
            assert password is not None
            ha1 = compute_ha1(credentials.username, self._realm, password, algorithm)
        if not self._response_matches(credentials, algorithm, ha1, method, body):
            return AuthResult.BAD_RESPONSE
        if not 0 <= now - issued <= self._lifetime:
            return AuthResult.STALE
        return AuthResult.OK

    def _response_matches(
        self, creds: DigestCredentials, algorithm: str, ha1: str, method: str, body: bytes
    ) -> bool:
        hash_name, sess = _algorithm_info(algorithm)
        expected = _expected_response(creds, hash_name, sess, ha1=ha1, method=method, body=body)
        if expected is None or not _HEX_RE.fullmatch(creds.response):
            return False
        return hmac.compare_digest(expected.encode(), creds.response.lower().encode())

    def _nonce_time(self, nonce: str) -> float | None:
        """The ``now`` a nonce was minted at, or None if we did not mint it for this realm."""
        try:
            raw = base64.b64decode(nonce.encode("ascii"), validate=True)
        except ValueError:
            return None
        if len(raw) != _NONCE_TS.size + hashlib.sha256().digest_size:
            return None
        if base64.b64encode(raw).decode("ascii") != nonce:
            return None  # non-canonical spelling of one of our nonces
        stamp, mac = raw[: _NONCE_TS.size], raw[_NONCE_TS.size :]
        if not hmac.compare_digest(mac, self._mac(stamp)):
            return None
        issued: float = _NONCE_TS.unpack(stamp)[0]
        return issued

    def _mac(self, stamp: bytes) -> bytes:
        return hmac.new(self._secret, stamp + self._realm.encode("utf-8"), "sha256").digest()


def _expected_response(
    creds: DigestCredentials, hash_name: str, sess: bool, *, ha1: str, method: str, body: bytes
) -> str | None:
    """RFC 7616 §3.4.1 response for ``creds``; None when a needed cnonce or nc is missing."""
    qop = creds.qop
    missing_cnonce = creds.cnonce is None and (sess or qop is not None)
    if missing_cnonce or (qop is not None and creds.nc is None):
        return None
    if sess:
        ha1 = _h(hash_name, f"{ha1}:{creds.nonce}:{creds.cnonce}")
    a2 = f"{method}:{creds.uri}"
    if qop is not None and qop.lower() == "auth-int":
        a2 += ":" + hashlib.new(hash_name, body).hexdigest()
    ha2 = _h(hash_name, a2)
    if qop is None:
        return _h(hash_name, f"{ha1}:{creds.nonce}:{ha2}")
    return _h(hash_name, f"{ha1}:{creds.nonce}:{creds.nc}:{creds.cnonce}:{qop}:{ha2}")


def _h(hash_name: str, text: str) -> str:
    return hashlib.new(hash_name, text.encode("utf-8")).hexdigest()


def _algorithm_info(algorithm: str) -> tuple[str, bool]:
    info = _ALGORITHMS.get(_canonical_algorithm(algorithm))
    if info is None:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    return info


def _canonical_algorithm(name: str) -> str:
    return _CANONICAL.get(name.lower(), name)


def _parse_params(value: str, what: str) -> dict[str, str]:
    """Split ``Digest name=value, name="value", …`` into lower-case names → unescaped values."""
    if len(value) > MAX_HEADER_LENGTH:
        raise ParseError(f"Digest {what} longer than {MAX_HEADER_LENGTH} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ParseError(f"Digest {what} is not valid Unicode text") from None
    scheme = _SCHEME_RE.match(value)
    if scheme is None:
        raise ParseError(f"missing authentication scheme in {what} {value!r}")
    if scheme[1].lower() != "digest":
        raise ParseError(f"unsupported authentication scheme {scheme[1]!r}")
    if scheme.end() == len(value):
        raise ParseError(f"Digest {what} has no parameters")
    params: dict[str, str] = {}
    pos = scheme.end()
    while pos < len(value) or not params:
        if params:
            comma = _COMMA_RE.match(value, pos)
            if comma is None:
                raise ParseError(f"expected ',' at offset {pos} in Digest {what}")
            pos = comma.end()
        param = _PARAM_RE.match(value, pos)
        if param is None:
            raise ParseError(f"malformed parameter at offset {pos} in Digest {what}")
        name = param["name"].lower()
        if name in params:
            raise ParseError(f"duplicate parameter {name!r} in Digest {what}")
        quoted = param["quoted"]
        params[name] = param["bare"] if quoted is None else _UNESCAPE_RE.sub(r"\1", quoted)
        pos = param.end()
    return params


def _required(params: dict[str, str], name: str, what: str) -> str:
    value = params.get(name)
    if value is None:
        raise ParseError(f"Digest {what} has no {name}")
    return value


def _parse_stale(value: str | None) -> bool:
    if value is None or value.lower() == "false":
        return False
    if value.lower() == "true":
        return True
    raise ParseError(f"Digest stale must be true or false, got {value!r}")


def _format(*params: tuple[str, str | None, bool]) -> str:
    """``Digest a="x", b=y`` from (name, value or None to omit, always quote) triples."""
    items = (f"{n}={_quote(v) if q else _token_or_quote(v)}" for n, v, q in params if v is not None)
    return "Digest " + ", ".join(items)


def _quote(value: str) -> str:
    if _CONTROL_RE.search(value):
        raise ValueError(f"control character in digest parameter {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _token_or_quote(value: str) -> str:
    return value if _BARE_OK_RE.fullmatch(value) else _quote(value)
