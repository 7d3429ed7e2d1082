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
from callwatch.sip.grammar import is_uint
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

    # -- queries ----------------------------------------------------------------

    def is_online(self, device_id: str) -> bool:
        """True while the device has a live binding."""
        return self.location.is_online(device_id, self._clock.monotonic())

    def bindings(self, device_id: str) -> list[Binding]:
        """The device's live bindings."""
        return self.location.bindings(device_id, self._clock.monotonic())

    # -- REGISTER ----------------------------------------------------------------

    def handle_register(self, request: Request, source: Address) -> Response:
        """Authenticate and apply one REGISTER; return the response to send."""
        outcome = self.authenticate(request, user=request.to.uri.user or "", proxy=False)
        if isinstance(outcome, Response):
            return outcome
        return self._apply(request, source, outcome)

    def authenticate(self, request: Request, *, user: str, proxy: bool) -> Device | Response:
        """The device whose digest credentials ``request`` carries, or the response to send.

        ``user`` names the device (SIP user name or id). ``proxy`` selects 407 with
        Proxy-Authenticate / Proxy-Authorization (calls) instead of 401 (registrations).
        """
        device = self._store.devices.find_by_sip_username(user) or self._store.devices.get(user)
        realm = self._realm(device)
        credentials = self._credentials(request, realm, proxy=proxy)
        if credentials is None:
            return self._challenge(request, realm, stale=False, proxy=proxy)
        if device is None or credentials.username not in (
            device.authorization_id,
            device.sip_username,
        ):
            return self._forbidden(request)
        result = self._authenticator(realm).verify(
            credentials, method=request.method, password=device.sip_password, now=self._wall()
        )
        if result is AuthResult.STALE:
            return self._challenge(request, realm, stale=True, proxy=proxy)
        if result is AuthResult.BAD_NONCE:
            return self._challenge(request, realm, stale=False, proxy=proxy)
        if result is not AuthResult.OK:
            return self._forbidden(request)
        return device

    def connection_closed(self, connection: int) -> None:
        """Drop bindings made over a closed connection (their flow is gone)."""
        for device_id in self.location.drop_connection(connection):
            self._notify(device_id, online=False)

    def expire(self) -> None:
        """Drop expired bindings and report devices that went offline."""
        for device_id in self.location.expire(self._clock.monotonic()):
            self._notify(device_id, online=False)

    # -- internals ----------------------------------------------------------------

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
        self.expire()  # report a lapsed registration as Offline before it is renewed
        now = self._clock.monotonic()
        if self._out_of_order(request, device, registration, now):
            return make_response(request, 500, "Out Of Order REGISTER")
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
        removed = [b.key for b, (_, e) in zip(bindings, contacts, strict=True) if e == 0]
        if self.location.would_exceed(device.id, added, now, removed):
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

    def _out_of_order(
        self, request: Request, device: Device, registration: _Registration, now: float
    ) -> bool:
        """RFC 3261 §10.3 step 7: a REGISTER older than the one that made a binding (same
        Call-ID, CSeq not higher) must not change it."""
        call_id, cseq = request.call_id, request.cseq.seq
        if registration.remove_all:
            stored = self.location.bindings(device.id, now)
        else:
            keys = [self._binding(request, Address("UDP", "", 0), device, c, e, now).key
                    for c, e in registration.contacts]  # fmt: skip
            stored = [b for k in keys if (b := self.location.get(device.id, k)) is not None]
        return any(b.call_id == call_id and b.cseq >= cseq for b in stored)

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

    def _credentials(
        self, request: Request, realm: str, *, proxy: bool
    ) -> DigestCredentials | None:
        header = "proxy-authorization" if proxy else "authorization"
        for value in request.headers.get_all(header):
            try:
                credentials = DigestCredentials.parse(value)
            except ParseError:
                continue
            if credentials.realm == realm:
                return credentials
        return None

    def _challenge(self, request: Request, realm: str, *, stale: bool, proxy: bool) -> Response:
        self.counters["challenged"] += 1
        response = make_response(request, 407 if proxy else 401)
        header = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        for challenge in self._authenticator(realm).challenge(self._wall(), stale=stale):
            response.headers.add(header, challenge.serialize())
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
                realm=realm,
                secret=self._secret,
                nonce_lifetime=self._settings.nonce_lifetime,
                algorithms=tuple(self._settings.digest_algorithms),
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
    if not is_uint(text.strip()):
        raise ParseError(f"invalid expires value {text.strip()[:20]!r}")
    return int(text)
