"""The relay's UDP port pool and the media error tree.

Errors::

    MediaError                      base of everything media/ raises to its callers
    ├── PortsExhausted              no free port pair to bind (503)
    ├── UnknownStream (KeyError)    no stream with that id (481-like for the pbx)
    ├── MediaLimitError             a configured limit would be exceeded (503)
    └── MediaStateError             the verb does not fit the stream's state (500)

``status_hint`` is the SIP status the pbx answers with when the error ends an offer/answer.
"""

from __future__ import annotations

from collections import deque

__all__ = [
    "MediaError",
    "MediaLimitError",
    "MediaStateError",
    "PortPool",
    "PortsExhausted",
    "UnknownStream",
]


class MediaError(Exception):
    """Base class of every error the media plane raises to the pbx."""

    status_hint: int = 500


class PortsExhausted(MediaError):
    """Every port pair of the pool is in use (or could not be bound)."""

    status_hint = 503


class UnknownStream(MediaError, KeyError):
    """A verb named a stream id the relay does not hold (deleted, or never created)."""

    status_hint = 481

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown stream"


class MediaLimitError(MediaError):
    """A limit (streams per relay, forks per stream) would be exceeded."""

    status_hint = 503


class MediaStateError(MediaError):
    """The request conflicts with the stream's current wiring (e.g. fork into a bridged leg)."""


class PortPool:
    """Even RTP ports in ``[port_min, port_max]``; RTCP is always the odd port above.

    Ports are handed out round-robin and a released port goes to the back of the queue, so a
    port is reused as late as possible: stray packets for an ended call then hit a closed port
    rather than the next call (RFC 3550 §11 pairs RTP on even and RTCP on the next odd port).

    Raises:
        ValueError: the range holds no even/odd pair.
    """

    def __init__(self, port_min: int, port_max: int) -> None:
        first = port_min + (port_min & 1)
        if not 0 < first < port_max <= 65535:
            raise ValueError(f"port range {port_min}-{port_max} holds no RTP/RTCP pair")
        self.port_min = port_min
        self.port_max = port_max
        self._free: deque[int] = deque(range(first, port_max, 2))
        self._used: set[int] = set()

    def allocate(self) -> int:
        """Take the least recently used free even port.

        Raises:
            PortsExhausted: none is free.
        """
        if not self._free:
            raise PortsExhausted(f"all {len(self._used)} ports of {self} are in use")
        port = self._free.popleft()
        self._used.add(port)
        return port

    def release(self, port: int) -> None:
        """Give ``port`` back (to the end of the queue); releasing a free port is an error."""
        if port not in self._used:
            raise ValueError(f"port {port} is not allocated from {self}")
        self._used.remove(port)
        self._free.append(port)

    @property
    def available(self) -> int:
        """Free port pairs."""
        return len(self._free)

    @property
    def in_use(self) -> int:
        """Allocated port pairs."""
        return len(self._used)

    def __repr__(self) -> str:
        return f"PortPool({self.port_min}, {self.port_max})"
