"""SIP header fields: an ordered, case-insensitive multidict, and the typed headers the core needs.

Names are matched case-insensitively and compact forms (RFC 3261 §7.3.3, RFC 3841, RFC 4028) are
expanded for look-up, while each field keeps the spelling it arrived with. Headers we create use
canonical spelling, except the ``p-rc-api-*`` family that RingCentral sends in lower case.

List-valued headers (``Via: a, b``) may arrive as several fields or as one comma-separated field;
:meth:`Headers.get_all` returns the individual values either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache

from callwatch.sip.errors import ParseError
from callwatch.sip.grammar import is_uint
from callwatch.sip.uri import Params, format_params, parse_params, split_quoted

# RFC 3261 §7.3.3 plus the compact forms registered later (IANA "Header Fields" registry).
COMPACT_FORMS: dict[str, str] = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
    "o": "event",
    "r": "refer-to",
    "b": "referred-by",
    "u": "allow-events",
    "x": "session-expires",
    "a": "accept-contact",
    "j": "reject-contact",
    "d": "request-disposition",
    "y": "identity",
}

# Canonical spellings for headers we write; anything else is title-cased word by word.
_CANONICAL: dict[str, str] = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "min-se": "Min-SE",
    "mime-version": "MIME-Version",
    "rack": "RAck",
    "rseq": "RSeq",
}
_LOWERCASE_NAMES = ("p-rc-api-",)

# Headers whose value is a comma-separated list (RFC 3261 §7.3.1); others are never split.
LIST_HEADERS = frozenset(
    {
        "via",
        "contact",
        "route",
        "record-route",
        "allow",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
        "accept",
        "accept-encoding",
        "accept-language",
        "allow-events",
        "path",
        "service-route",
    }
)


@lru_cache(maxsize=512)
def header_key(name: str) -> str:
    """The look-up key of a header name: lower-case, compact forms expanded."""
    key = name.strip().lower()
    return COMPACT_FORMS.get(key, key)


def canonical_name(name: str) -> str:
    """The spelling we use when we write a header named ``name``."""
    key = header_key(name)
    if key in _CANONICAL:
        return _CANONICAL[key]
    if key.startswith(_LOWERCASE_NAMES):
        return key
    return "-".join(part.capitalize() for part in key.split("-"))


class Headers:
    """Ordered header fields with case-insensitive, compact-form-aware look-up."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: list[tuple[str, str, str]] = [(header_key(n), n, v) for n, v in fields]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((name, value) for _, name, value in self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = header_key(name)
        return any(k == key for k, _, _ in self._fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"

    def copy(self) -> Headers:
        """A shallow copy."""
        new = Headers()
        new._fields = list(self._fields)
        return new

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first field's value, or ``default``."""
        key = header_key(name)
        for k, _, value in self._fields:
            if k == key:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value, with comma-separated list headers split into items."""
        key = header_key(name)
        values = [v for k, _, v in self._fields if k == key]
        if key not in LIST_HEADERS:
            return values
        items: list[str] = []
        for value in values:
            items.extend(item.strip() for item in split_quoted(value, ",") if item.strip())
        return items

    def add(self, name: str, value: str) -> None:
        """Append a field, spelled as given."""
        self._fields.append((header_key(name), name, value))

    def prepend(self, name: str, value: str) -> None:
        """Insert a field before all others (a proxy's new top Via)."""
        self._fields.insert(0, (header_key(name), name, value))

    def set(self, name: str, value: str) -> None:
        """Replace every field called ``name`` by one field, in the first one's place."""
        key = header_key(name)
        for i, (k, _, _) in enumerate(self._fields):
            if k == key:
                self._fields[i] = (key, name, value)
                self._fields[i + 1 :] = [f for f in self._fields[i + 1 :] if f[0] != key]
                return
        self._fields.append((key, name, value))

    def remove(self, name: str) -> None:
        """Delete every field called ``name``."""
        key = header_key(name)
        self._fields = [f for f in self._fields if f[0] != key]

    def remove_first(self, name: str) -> None:
        """Delete the first value of ``name`` (the top Via of a comma list, or the first field)."""
        key = header_key(name)
        for i, (k, n, value) in enumerate(self._fields):
            if k != key:
                continue
            items = split_quoted(value, ",") if key in LIST_HEADERS else [value]
            items = [item for item in items if item.strip()] or [""]
            if len(items) > 1:
                self._fields[i] = (k, n, ",".join(items[1:]).strip())
            else:
                del self._fields[i]
            return


@dataclass(frozen=True, slots=True)
class Via:
    """One Via value (RFC 3261 §20.42, RFC 3581 ``rport``)."""

    transport: str
    host: str
    port: int | None = None
    params: Params = field(default_factory=dict)
    protocol: str = "SIP/2.0"

    @classmethod
    def parse(cls, text: str) -> Via:
        """Parse ``SIP/2.0/UDP host:port;branch=…``."""
        sent_protocol, _, rest = text.strip().partition(" ")
        parts = [p.strip() for p in sent_protocol.split("/")]
        if len(parts) != 3 or not all(parts):
            raise ParseError(f"invalid Via sent-protocol in {text!r}")
        hostport, _, param_text = rest.strip().partition(";")
        hostport = hostport.strip()
        if not hostport:
            raise ParseError(f"Via without sent-by in {text!r}")
        host, port = _split_hostport(hostport, text)
        return cls(
            transport=parts[2].upper(),
            host=host,
            port=port,
            params=parse_params(param_text),
            protocol=f"{parts[0]}/{parts[1]}",
        )

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.protocol}/{self.transport} {self.host}{port}{format_params(self.params)}"

    @property
    def branch(self) -> str | None:
        """The transaction branch (RFC 3261 §8.1.1.7)."""
        return self.params.get("branch")

    def with_params(self, **params: str | None) -> Via:
        """A copy with ``params`` added or replaced."""
        return replace(self, params={**self.params, **params})


def _split_hostport(hostport: str, whole: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        end = hostport.find("]")
        host, rest = hostport[: end + 1], hostport[end + 1 :]
        if end < 0 or (rest and not rest.startswith(":")):
            raise ParseError(f"invalid IPv6 sent-by in {whole!r}")
        port_text = rest[1:]
    else:
        host, _, port_text = hostport.partition(":")
    if not host or any(c.isspace() or ord(c) < 32 for c in host):
        raise ParseError(f"invalid Via host in {whole!r}")
    if not port_text:
        return host, None
    if not is_uint(port_text.strip()) or not 0 < int(port_text) < 65536:
        raise ParseError(f"invalid Via port in {whole!r}")
    return host, int(port_text)


@dataclass(frozen=True, slots=True)
class CSeq:
    """``CSeq: <number> <method>`` (RFC 3261 §20.16)."""

    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        """Parse a CSeq value; the number must fit 31 bits."""
        number, _, method = text.strip().partition(" ")
        method = method.strip()
        if not is_uint(number) or not method or " " in method:
            raise ParseError(f"invalid CSeq {text!r}")
        seq = int(number)
        if seq >= 2**31:
            raise ParseError(f"CSeq number out of range in {text!r}")
        return cls(seq, method)

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"
