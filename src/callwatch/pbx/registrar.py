"""REGISTER handling: digest authentication against a device's SIP credentials, then bindings.

Theory of operation (RFC 3261 §10.3, RFC 5626 §6, ringcentral-api.md §6.2):

1. The To URI's user part names the device (its SIP user name, or its id).
2. Without credentials the answer is 401 with one challenge per algorithm (MD5 first), realm =
   the account's SIP domain, ``nonce`` never the first parameter. Unknown users are challenged
   the same way, so the response does not reveal which users exist.
3. Credentials are matched to the device by authorization id (= device id) or SIP user name, and
   checked with :class:`~callwatch.sip.auth.DigestAuthenticator`: responses without qop and a
   quoted ``algorithm`` are accepted (RingCentral's softphone SDK sends exactly that). A right
   answer to an expired nonce is re-challenged with ``stale=true``; a wrong one gets 403.
4. Contacts are bound with their expiry (``expires`` parameter, else ``Expires``, else the
   default; clamped to the maximum; 423 below the minimum), ``Contact: *`` with ``Expires: 0``
   removes all, and the 200 lists every live binding.

Nonces are stamped with wall-clock seconds so they stay verifiable across a restart (the HMAC
secret is persisted in the store).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from callwatch.clock import Clock
from callwatch.config import SipSettings
from callwatch.pbx.location import Binding, LocationService
from callwatch.sip.auth import AuthResult, DigestAuthenticator, DigestCredentials
from callwatch.sip.errors import ParseError
from callwatch.sip.events import Address
from callwatch.sip.message import Request, Response, make_response
from callwatch.sip.uri import NameAddr
from callwatch.store.repo import Device, Store

StatusCallback = Callable[[Device, bool], None]
"""Called with (device, online) whenever a device turns Online or Offline."""

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, NOTIFY, REFER, REGISTER"
SUPPORTED = "path, outbound, timer, replaces"


@dataclass(frozen=True, slots=True)
class _Registration:
    device: Device
    contacts: list[tuple[NameAddr, int]]
    remove_all: bool


class Registrar:
    """Answers REGISTER requests and keeps the location service."""

    def __init__(
        self,
        *,
        store: Store,
        location: LocationService,
        settings: SipSettings,
        secret: bytes,
        clock: Clock,
        on_status: StatusCallback | None = None,
    ) -> None:
        self._store = store
        self.location = location
        self._settings = settings
        self._secret = secret
        self._clock = clock
        self._on_status = on_status
        self._authenticators: dict[str, DigestAuthenticator] = {}
        self.counters = {"registered": 0, "challenged": 0, "forbidden": 0, "unregistered": 0}

    # -- queries ----------------------------------------------------------------------------

    def is_online(self, device_id: str) -> bool:
        """True while the device has a live binding."""
        return self.location.is_online(device_id, self._clock.monotonic())

    def bindings(self, device_id: str) -> list[Binding]:
        """The device's live bindings."""
        return self.location.bindings(device_id, self._clock.monotonic())

    # -- REGISTER -------------------------------------------------------------------------------

    def handle_register(self, request: Request, source: Address) -> Response:
        """Authenticate and apply one REGISTER; return the response to send."""
        user = request.to.uri.user or ""
        device = self._store.devices.find_by_sip_username(user) or self._store.devices.get(user)
        realm = self._realm(device)
        credentials = self._credentials(request, realm)
        if credentials is None:
            return self._challenge(request, realm, stale=False)
        if device is None or credentials.username not in (
            device.authorization_id,
            device.sip_username,
        ):
            return self._forbidden(request)
        result = self._authenticator(realm).verify(
            credentials, method=request.method, password=device.sip_password, now=self._wall()
        )
        if result is AuthResult.STALE:
            return self._challenge(request, realm, stale=True)
        if result is AuthResult.BAD_NONCE:
            return self._challenge(request, realm, stale=False)
        if result is not AuthResult.OK:
            return self._forbidden(request)
        return self._apply(request, source, device)

    def connection_closed(self, connection: int) -> None:
        """Drop bindings made over a closed connection (their flow is gone)."""
        for device_id in self.location.drop_connection(connection):
            self._notify(device_id, online=False)

    def expire(self) -> None:
        """Drop expired bindings and report devices that went offline."""
        for device_id in self.location.expire(self._clock.monotonic()):
            self._notify(device_id, online=False)

    # -- internals ------------------------------------------------------------------------------

    def _apply(self, request: Request, source: Address, device: Device) -> Response:
        try:
            registration = self._parse_contacts(request, device)
        except ParseError as exc:
            return make_response(request, 400, str(exc)[:120])
        too_brief = [e for _, e in registration.contacts if 0 < e < self._settings.min_expires]
        if too_brief:
            return make_response(
                request, 423, headers=[("Min-Expires", str(self._settings.min_expires))]
            )
        now = self._clock.monotonic()
        was_online = self.location.is_online(device.id, now)
        if registration.remove_all:
            self.location.remove_all(device.id)
        else:
            error = self._bind(request, source, device, registration.contacts, now)
            if error is not None:
                return error
        online = self.location.is_online(device.id, now)
        if online != was_online:
            self._notify(device.id, online=online)
        self.counters["registered" if online else "unregistered"] += 1
        return self._ok(request, device, now)

    def _bind(
        self,
        request: Request,
        source: Address,
        device: Device,
        contacts: list[tuple[NameAddr, int]],
        now: float,
    ) -> Response | None:
        bindings = [self._binding(request, source, device, c, e, now) for c, e in contacts]
        added = [b.key for b, (_, e) in zip(bindings, contacts, strict=True) if e > 0]
        if self.location.would_exceed(device.id, added, now):
            return make_response(request, 403, "Too Many Bindings")
        for binding, (_, expires) in zip(bindings, contacts, strict=True):
            if expires == 0:
                self.location.remove(device.id, binding.key)
            else:
                self.location.update(binding)
        return None

    def _binding(
        self,
        request: Request,
        source: Address,
        device: Device,
        contact: NameAddr,
        expires: int,
        now: float,
    ) -> Binding:
        params = {k: v for k, v in contact.params.items() if k != "expires"}
        instance = params.get("+sip.instance")
        return Binding(
            device_id=device.id,
            contact=NameAddr(contact.uri, contact.display_name, params),
            source=source,
            expires_at=now + expires,
            call_id=request.call_id,
            cseq=request.cseq.seq,
            instance=instance.strip('"') if instance else None,
            reg_id=params.get("reg-id"),
        )

    def _parse_contacts(self, request: Request, device: Device) -> _Registration:
        raw = request.headers.get_all("contact")
        default = _expires_value(request.headers.get("expires"), self._settings.default_expires)
        if any(v.strip() == "*" for v in raw):
            if len(raw) != 1 or default != 0:
                raise ParseError("Contact: * requires Expires: 0 and no other contact")
            return _Registration(device, [], remove_all=True)
        contacts = [
            (c, min(_expires_value(c.params.get("expires"), default), self._settings.max_expires))
            for c in request.contacts
        ]
        return _Registration(device, contacts, remove_all=False)

    def _ok(self, request: Request, device: Device, now: float) -> Response:
        response = make_response(request, 200)
        for binding in self.location.bindings(device.id, now):
            expires = binding.remaining(now)
            contact = NameAddr(
                binding.contact.uri,
                binding.contact.display_name,
                {**binding.contact.params, "expires": str(expires)},
            )
            response.headers.add("Contact", str(contact))
        response.headers.add("Date", self._clock.utcnow().strftime("%a, %d %b %Y %H:%M:%S GMT"))
        return response

    def _credentials(self, request: Request, realm: str) -> DigestCredentials | None:
        for value in request.headers.get_all("authorization"):
            try:
                credentials = DigestCredentials.parse(value)
            except ParseError:
                continue
            if credentials.realm == realm:
                return credentials
        return None

    def _challenge(self, request: Request, realm: str, *, stale: bool) -> Response:
        self.counters["challenged"] += 1
        response = make_response(request, 401)
        for challenge in self._authenticator(realm).challenge(self._wall(), stale=stale):
            response.headers.add("WWW-Authenticate", challenge.serialize())
        return response

    def _forbidden(self, request: Request) -> Response:
        self.counters["forbidden"] += 1
        return make_response(request, 403)

    def _realm(self, device: Device | None) -> str:
        if device is not None:
            account = self._store.accounts.get(device.account_id)
            if account is not None:
                return account.sip_domain
        return self._settings.domain

    def _authenticator(self, realm: str) -> DigestAuthenticator:
        if realm not in self._authenticators:
            self._authenticators[realm] = DigestAuthenticator(
                realm=realm, secret=self._secret, nonce_lifetime=self._settings.nonce_lifetime
            )
        return self._authenticators[realm]

    def _wall(self) -> float:
        return self._clock.utcnow().timestamp()

    def _notify(self, device_id: str, *, online: bool) -> None:
        if self._on_status is None:
            return
        device = self._store.devices.get(device_id)
        if device is not None:
            self._on_status(device, online)


def _expires_value(text: str | None, default: int) -> int:
    if text is None:
        return default
    text = text.strip()
    if not text.isdigit():
        raise ParseError(f"invalid expires value {text[:20]!r}")
    return int(text)
