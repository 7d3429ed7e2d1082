"""The location service: contact bindings per device, with expiry (RFC 3261 §10.3, RFC 5626).

Pure and clock-driven: every method that depends on time takes ``now`` (monotonic seconds).
A device is Online while it has at least one unexpired binding. Bindings are keyed by the
RFC 5626 instance id and reg-id when the contact carries them (a re-registration from a new
address or port replaces the old binding), otherwise by the contact URI.

A binding made over a stream transport remembers the connection it arrived on (the flow); requests
to that device go back over it. When the connection closes, outbound (RFC 5626) bindings are
dropped, since such a device cannot be reached any other way; others fall back to their Contact.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from callwatch.sip.events import Address
from callwatch.sip.uri import NameAddr


@dataclass(frozen=True, slots=True)
class Binding:
    """One registered contact of a device."""

    device_id: str
    contact: NameAddr
    """The Contact as registered (without the ``expires`` parameter)."""
    source: Address
    """Where the REGISTER came from: the flow requests to this contact are sent over."""
    expires_at: float
    call_id: str
    cseq: int
    instance: str | None = None
    reg_id: str | None = None

    @property
    def key(self) -> str:
        """What identifies this binding among the device's bindings."""
        if self.instance is not None:
            return f"{self.instance};reg-id={self.reg_id}"
        return str(self.contact.uri)

    @property
    def flow_bound(self) -> bool:
        """True if the device is reachable only over the flow it registered on.

        That is an RFC 5626 outbound registration (``reg-id`` or ``ob``) made over a stream
        transport, or a contact that is not routable at all (``*.invalid``, RFC 7118 style).
        """
        if self.source.connection is None:
            return False
        uri = self.contact.uri
        return self.reg_id is not None or "ob" in uri.params or uri.host.endswith(".invalid")

    @property
    def destination(self) -> Address:
        """Where requests to this contact go (RFC 3263 simplified, RFC 5626 §5.2).

        An outbound (flow-bound) binding, or a contact that cannot be routed (``*.invalid``),
        is reached over the flow it registered on; any other contact at its own address, with
        the transport its URI names (TLS for ``sips:``), else the one it registered over.
        """
        uri = self.contact.uri
        if self.flow_bound or uri.host.endswith(".invalid"):
            return self.source
        transport = "TLS" if uri.scheme == "sips" else (uri.transport or self.source.transport)
        port = uri.port or (5061 if transport == "TLS" else 5060)
        host = uri.host[1:-1] if uri.host.startswith("[") else uri.host
        return Address(transport.upper(), host, port)

    def remaining(self, now: float) -> int:
        """Whole seconds left before expiry (never negative)."""
        return max(0, int(self.expires_at - now + 0.5))


class LocationService:
    """Bindings for every device, with a limit per device."""

    def __init__(self, max_bindings_per_device: int = 10) -> None:
        self._bindings: dict[str, dict[str, Binding]] = {}
        self._max = max_bindings_per_device

    def bindings(self, device_id: str, now: float) -> list[Binding]:
        """The device's live bindings, most recent registration last."""
        return [b for b in self._bindings.get(device_id, {}).values() if b.expires_at > now]

    def is_online(self, device_id: str, now: float) -> bool:
        """True while the device has a live binding."""
        return bool(self.bindings(device_id, now))

    def online_devices(self, now: float) -> set[str]:
        """Every device with a live binding."""
        return {d for d in self._bindings if self.is_online(d, now)}

    def would_exceed(
        self, device_id: str, new_keys: Iterable[str], now: float, removed: Iterable[str] = ()
    ) -> bool:
        """True if adding ``new_keys`` (after removing ``removed``) would pass the limit."""
        current = {b.key for b in self.bindings(device_id, now)} - set(removed)
        return len(current | set(new_keys)) > self._max

    def get(self, device_id: str, key: str) -> Binding | None:
        """The binding stored under ``key`` (live or not)."""
        return self._bindings.get(device_id, {}).get(key)

    def update(self, binding: Binding) -> None:
        """Add or refresh a binding (it becomes the most recent)."""
        table = self._bindings.setdefault(binding.device_id, {})
        table.pop(binding.key, None)
        table[binding.key] = binding

    def remove(self, device_id: str, key: str) -> None:
        """Remove one binding, if present."""
        table = self._bindings.get(device_id)
        if table is not None:
            table.pop(key, None)
            if not table:
                del self._bindings[device_id]

    def remove_all(self, device_id: str) -> None:
        """Remove every binding of the device (``Contact: *``, RFC 3261 §10.2.2)."""
        self._bindings.pop(device_id, None)

    def expire(self, now: float) -> set[str]:
        """Drop expired bindings; return the devices that went offline."""
        offline: set[str] = set()
        for device_id in list(self._bindings):
            live = {k: b for k, b in self._bindings[device_id].items() if b.expires_at > now}
            if live:
                self._bindings[device_id] = live
            else:
                del self._bindings[device_id]
                offline.add(device_id)
        return offline

    def drop_connection(self, connection: int) -> set[str]:
        """Remove flow-bound bindings made over ``connection``; return devices left without any."""
        affected: set[str] = set()
        for device_id, table in list(self._bindings.items()):
            kept = {
                k: b
                for k, b in table.items()
                if not (b.flow_bound and b.source.connection == connection)
            }
            if len(kept) != len(table):
                affected.add(device_id)
                if kept:
                    self._bindings[device_id] = kept
                else:
                    del self._bindings[device_id]
        return {d for d in affected if d not in self._bindings}

    def next_expiry(self) -> float | None:
        """The earliest expiry among all bindings (when to call :meth:`expire`)."""
        times = [b.expires_at for t in self._bindings.values() for b in t.values()]
        return min(times, default=None)
