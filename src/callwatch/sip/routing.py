"""Transport-layer rules of the SIP core, sans-I/O (RFC 3261 §18, RFC 3581).

Theory of operation: a server stamps the top Via of each request it receives with the address
the request really came from (``received``, and ``rport`` when the client asked for it), and
sends responses back along that Via — on the same connection for stream transports, otherwise
to ``received``:``rport``. :func:`salvage_headers` reads the few headers needed to answer a
request that did not parse, so that a malformed request still gets a 400 with a reason instead
of silence (ARCHITECTURE.md "bad input gets a clear answer").
"""

from __future__ import annotations

import re

from callwatch.sip.errors import ParseError
from callwatch.sip.events import Address
from callwatch.sip.headers import Headers, Via, header_key

__all__ = ["response_destination", "salvage_headers", "same_peer", "stamp_via"]

_PORT = re.compile(r"[0-9]{1,5}")
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")  # RFC 3261 §25.1 token
SALVAGED_HEADERS = ("via", "from", "to", "call-id", "cseq")
"""What a response needs from its request (RFC 3261 §8.2.6.2)."""


def _unbracket(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def stamp_via(via: Via, source: Address) -> Via:
    """``via`` with ``received`` and ``rport`` set as RFC 3261 §18.2.1 and RFC 3581 §4 say."""
    params: dict[str, str | None] = {}
    if "rport" in via.params and via.params["rport"] is None:
        params["rport"] = str(source.port)
    if params or _unbracket(via.host).lower() != _unbracket(source.host).lower():
        params["received"] = _unbracket(source.host)
    return via.with_params(**params) if params else via


def response_destination(via: Via, source: Address) -> Address:
    """Where a response to a request with (stamped) top ``via`` from ``source`` goes
    (RFC 3261 §18.2.2, RFC 3581 §4): the same connection on stream transports, otherwise
    ``received`` (or sent-by) and ``rport`` (or the sent-by port, or 5060)."""
    if source.reliable:
        return source
    host = via.params.get("received") or _unbracket(via.host)
    rport = via.params.get("rport")
    port = int(rport) if rport and _PORT.fullmatch(rport) else (via.port or 5060)
    return Address(transport=source.transport, host=host, port=port)


def same_peer(a: Address, b: Address) -> bool:
    """True when ``a`` and ``b`` name the same peer (a None connection matches any)."""
    if (a.transport, a.host, a.port) != (b.transport, b.host, b.port):
        return False
    return a.connection is None or b.connection is None or a.connection == b.connection


def salvage_headers(data: bytes) -> Headers | None:
    """Via/From/To/Call-ID/CSeq of a malformed request, if its start line is a request."""
    head = data.lstrip(b"\r\n").split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    lines = head.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")
    words = lines[0].split(" ")
    if len(words) != 3 or not words[2].startswith("SIP/") or not _TOKEN.fullmatch(words[0]):
        return None
    if words[0] == "ACK":  # never answered (RFC 3261 §17.2.1)
        return None
    fields: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon and header_key(name) in SALVAGED_HEADERS and value.strip():
            fields.append((name.strip(), value.strip()))
    headers = Headers(fields)
    if any(name not in headers for name in SALVAGED_HEADERS):
        return None
    try:
        Via.parse(headers.get_all("via")[0])
    except (ParseError, IndexError):
        return None
    return headers
