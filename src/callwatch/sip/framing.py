"""Content-Length framing of SIP messages on stream transports (RFC 3261 §18.3, RFC 5626 §3.5.1).

A :class:`StreamFramer` is fed whatever bytes a TCP or TLS read returned and hands back complete
messages. Between messages, a bare CRLF is skipped and a double CRLF is a keep-alive "ping" to
be answered with one CRLF "pong" (RFC 5626 §4.4.1); both are reported as :data:`KEEPALIVE`.
Framing errors are fatal for the connection: the caller answers 400 if it can and closes.
"""

from __future__ import annotations

from callwatch.sip.errors import MessageTooLarge, ParseError
from callwatch.sip.message import MAX_MESSAGE_SIZE

KEEPALIVE = b"\r\n\r\n"
"""What :meth:`StreamFramer.feed` yields for a keep-alive ping."""


class StreamFramer:
    """Splits a byte stream into SIP messages."""

    __slots__ = ("_buffer", "_max_size")

    def __init__(self, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self._buffer = bytearray()
        self._max_size = max_size

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return every complete message (or KEEPALIVE) now available.

        Raises:
            ParseError: the stream cannot be framed (no valid Content-Length).
            MessageTooLarge: a message would exceed the size limit.
        """
        self._buffer += data
        out: list[bytes] = []
        while True:
            item = self._next()
            if item is None:
                return out
            out.append(item)

    def _next(self) -> bytes | None:
        buf = self._buffer
        if buf.startswith(b"\r\n\r\n"):
            del buf[:4]
            return KEEPALIVE
        while buf.startswith(b"\r\n") and len(buf) >= 4:
            del buf[:2]
        if bytes(buf) in (b"\r\n", b"\r", b"\r\n\r"):
            return None
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > self._max_size:
                raise MessageTooLarge("header section exceeds the size limit")
            return None
        length = _content_length(bytes(buf[:end]))
        total = end + 4 + length
        if total > self._max_size:
            raise MessageTooLarge(f"message of {total} bytes exceeds {self._max_size}")
        if len(buf) < total:
            return None
        message = bytes(buf[:total])
        del buf[:total]
        return message


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() in (b"content-length", b"l"):
            value = value.strip()
            if not value.isascii() or not value.isdigit() or len(value) > 10:
                raise ParseError("invalid Content-Length on a stream transport")
            return int(value)
    raise ParseError("missing Content-Length on a stream transport")
