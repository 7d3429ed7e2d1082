"""SIP/SIPS URIs and name-addr values (RFC 3261 §19.1, §20.10, §25.1).

``SipUri`` is the parsed ``sip:user:password@host:port;params?headers`` form. ``NameAddr`` is what
From, To, Contact, Route and Record-Route carry: an optional display name, a URI in angle brackets
(or a bare addr-spec) and header parameters such as ``tag`` or ``expires``.

Parameters keep their order; their names compare case-insensitively and are stored lower-case.
Parsing never raises anything but :class:`~callwatch.sip.errors.ParseError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from callwatch.sip.errors import ParseError
from callwatch.sip.grammar import is_uint

Params = dict[str, str | None]

_SCHEMES = ("sip", "sips")
_DEFAULT_PORTS = {"sip": 5060, "sips": 5061}


def split_quoted(text: str, sep: str) -> list[str]:
    """Split ``text`` on ``sep`` outside double quotes and angle brackets."""
    if '"' not in text and "<" not in text:
        return text.split(sep)
    parts: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    start = 0
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif quoted:
            if ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">" and depth:
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if quoted:
        raise ParseError(f"unterminated quoted string in {text!r}")
    parts.append(text[start:])
    return parts


def parse_params(text: str) -> Params:
    """Parse ``;name=value;flag`` (the leading ``;`` optional) into an ordered dict."""
    params: Params = {}
    for item in split_quoted(text, ";"):
        item = item.strip()
        if not item:
            continue
        name, eq, value = item.partition("=")
        name = name.strip().lower()
        if not name:
            raise ParseError(f"empty parameter name in {text!r}")
        params[name] = value.strip() if eq else None
    return params


def format_params(params: Params) -> str:
    """Format parameters as ``;name=value;flag``."""
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def _parse_hostport(text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ParseError(f"unterminated IPv6 reference in {text!r}")
        host, rest = text[: end + 1], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ParseError(f"junk after IPv6 reference in {text!r}")
        port_text = rest[1:] if rest else ""
    else:
        host, _, port_text = text.partition(":")
    if not host or any(c in host for c in ' \t<>"@'):
        raise ParseError(f"invalid host in {text!r}")
    if not port_text:
        return host, None
    if not is_uint(port_text) or not 0 < int(port_text) < 65536:
        raise ParseError(f"invalid port in {text!r}")
    return host, int(port_text)


@dataclass(frozen=True, slots=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI."""

    host: str
    """Host name, IPv4 address or bracketed IPv6 reference."""
    user: str | None = None
    """User part, still %-escaped as received."""
    port: int | None = None
    scheme: str = "sip"
    password: str | None = None
    params: Params = field(default_factory=dict)
    """URI parameters (``transport``, ``lr``, ``ob``…), names lower-case."""
    headers: str | None = None
    """The raw ``?hname=hvalue&…`` part without the ``?``."""

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse a SIP or SIPS URI.

        Raises:
            ParseError: not a SIP URI (status 416 for another scheme).
        """
        text = text.strip()
        if any(c in text for c in ' <>"\t'):
            raise ParseError(f"invalid character in URI {text[:80]!r}")
        scheme, colon, rest = text.partition(":")
        scheme = scheme.lower()
        if not colon or not rest:
            raise ParseError(f"not a URI: {text!r}")
        if scheme not in _SCHEMES:
            raise ParseError(f"unsupported URI scheme {scheme!r}", status_hint=416)
        rest, qmark, headers = rest.partition("?")
        user: str | None = None
        password: str | None = None
        at = rest.rfind("@")
        if at >= 0:
            userinfo, rest = rest[:at], rest[at + 1 :]
            user, pcolon, pw = userinfo.partition(":")
            password = pw if pcolon else None
            if not user:
                raise ParseError(f"empty user part in {text!r}")
        hostport, _, param_text = rest.partition(";")
        host, port = _parse_hostport(hostport)
        return cls(
            host=host,
            user=user,
            port=port,
            scheme=scheme,
            password=password,
            params=parse_params(param_text),
            headers=headers if qmark else None,
        )

    def __str__(self) -> str:
        userinfo = ""
        if self.user is not None:
            userinfo = self.user if self.password is None else f"{self.user}:{self.password}"
            userinfo += "@"
        port = f":{self.port}" if self.port is not None else ""
        headers = f"?{self.headers}" if self.headers is not None else ""
        return f"{self.scheme}:{userinfo}{self.host}{port}{format_params(self.params)}{headers}"

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, upper-case, if any."""
        value = self.params.get("transport")
        return value.upper() if value else None

    @property
    def effective_port(self) -> int:
        """The port, or the scheme's default."""
        return self.port if self.port is not None else _DEFAULT_PORTS[self.scheme]

    def with_params(self, **params: str | None) -> SipUri:
        """A copy with ``params`` added or replaced."""
        return replace(self, params={**self.params, **params})

    def without_params(self, *names: str) -> SipUri:
        """A copy without the named parameters."""
        return replace(self, params={k: v for k, v in self.params.items() if k not in names})

    def address_of_record(self) -> str:
        """``scheme:user@host`` lower-cased host, the key a registrar binds under."""
        user = f"{self.user}@" if self.user else ""
        return f"{self.scheme}:{user}{self.host.lower()}"


def _unquote(text: str) -> str:
    inner = text[1:-1]
    out: list[str] = []
    escaped = False
    for ch in inner:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        else:
            out.append(ch)
    return "".join(out)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class NameAddr:
    """``"Display" <uri>;params`` as carried by From, To, Contact and Route headers."""

    uri: SipUri
    display_name: str | None = None
    params: Params = field(default_factory=dict)
    """Header parameters (``tag``, ``expires``, ``q``, ``reg-id``, ``+sip.instance``…)."""

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        """Parse a name-addr or addr-spec with header parameters (RFC 3261 §20.10)."""
        text = text.strip()
        display: str | None = None
        if text.startswith('"'):
            end = _closing_quote(text)
            display = _unquote(text[: end + 1])
            text = text[end + 1 :].lstrip()
            if not text.startswith("<"):
                raise ParseError(f"display name without <uri> in {text!r}")
        lt = text.find("<")
        if lt >= 0:
            gt = text.find(">", lt)
            if gt < 0:
                raise ParseError(f"missing '>' in {text!r}")
            if display is None and text[:lt].strip():
                display = text[:lt].strip()
            uri_text, param_text = text[lt + 1 : gt], text[gt + 1 :].strip()
            if param_text and not param_text.startswith(";"):
                raise ParseError(f"junk after '>' in {text!r}")
        else:
            uri_text, _, param_text = text.partition(";")
        return cls(SipUri.parse(uri_text), display, parse_params(param_text))

    def __str__(self) -> str:
        display = f"{_quote(self.display_name)} " if self.display_name else ""
        return f"{display}<{self.uri}>{format_params(self.params)}"

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (RFC 3261 §19.3)."""
        return self.params.get("tag")

    def with_tag(self, tag: str) -> NameAddr:
        """A copy carrying ``tag``."""
        return replace(self, params={**self.params, "tag": tag})


def _closing_quote(text: str) -> int:
    escaped = False
    for i in range(1, len(text)):
        ch = text[i]
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            return i
    raise ParseError(f"unterminated display name in {text!r}")
