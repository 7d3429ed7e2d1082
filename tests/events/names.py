"""Host names only a test knows: an injectable resolver for WebHook addresses.

``Names`` answers from a table the test may change at any time (a name's DNS "changes"), or from
answers queued for the next lookups (a rebinding name server answering differently each time),
and records every lookup. Unknown names fail like the system resolver does.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence


class Names:
    """``await names(host, port)`` → the host's addresses, as the system resolver would."""

    def __init__(self, table: Mapping[str, Sequence[str]] | None = None) -> None:
        self.table: dict[str, list[str]] = {h: list(a) for h, a in (table or {}).items()}
        self.lookups: list[str] = []
        self._queued: dict[str, list[list[str]]] = {}

    def queue(self, host: str, *answers: Sequence[str]) -> None:
        """Answer the next lookups of ``host`` with these, one each, before the table."""
        self._queued.setdefault(host, []).extend(list(a) for a in answers)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        queued = self._queued.get(host)
        if queued:
            return queued.pop(0)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.table[host])
