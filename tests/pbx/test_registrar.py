"""Tests for callwatch.pbx.registrar: digest challenges, RingCentral/SIPp answers, bindings.

The registrar runs over a real in-memory SQLite store with the demo tenant, a FakeClock and
REGISTER requests parsed from bytes. The RingCentral softphone SDK's RFC 2069 answer is computed
by hand with hashlib (an oracle independent of ``callwatch.sip.auth``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwatch.clock import FakeClock
from callwatch.config import SipSettings
from callwatch.ids import IdGenerator
from callwatch.pbx.location import LocationService
from callwatch.pbx.registrar import Registrar
from callwatch.sip.auth import DigestChallenge, build_credentials
from callwatch.sip.events import Address
from callwatch.sip.message import Request, Response, parse_message
from callwatch.sip.uri import NameAddr
from callwatch.store.provisioning import DemoTenant, provision_demo_tenant
from callwatch.store.repo import Device
from callwatch.store.sqlite import SqliteStore

SIP_DOMAIN = "sip.callwatch.local"
SECRET = b"registrar-test-nonce-secret-0123"
DATA = Path(__file__).parent.parent / "sip" / "data"
UDP = Address("UDP", "192.0.2.10", 5060)
TLS_7 = Address("TLS", "192.168.1.23", 53712, connection=7)
TLS_8 = Address("TLS", "192.168.1.23", 53799, connection=8)
CALL_ID = "reg-5c1d8e@192.0.2.10"
CNONCE = "0a4f113b"
SDK_NONCE_RE = re.compile(r', nonce="(.+?)"')
"""How ringcentral-softphone-ts extracts the nonce from the first WWW-Authenticate header."""
INSTANCE = "<urn:uuid:18f135d2-5f55-4203-b018-50c5a38fd547>"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


@dataclass(frozen=True)
class Tenant:
    store: SqliteStore
    demo: DemoTenant

    @property
    def softphone(self) -> Device:
        """The supervisor's RingCentral softphone (a flow-bound TLS device in these tests)."""
        return self.demo.user("101").devices[0]

    @property
    def desk_phone(self) -> Device:
        return self.demo.user("108").devices[0]


@pytest.fixture(scope="module")
def tenant() -> Iterator[Tenant]:
    store = SqliteStore(":memory:")
    demo = provision_demo_tenant(store, sip_domain=SIP_DOMAIN, ids=IdGenerator(3261))
    yield Tenant(store, demo)
    store.close()


@dataclass
class Harness:
    registrar: Registrar
    clock: FakeClock
    statuses: list[tuple[str, bool]] = field(default_factory=list)

    def send(self, request: Request, source: Address = UDP) -> Response:
        return self.registrar.handle_register(request, source)


def make_harness(tenant: Tenant, **overrides: object) -> Harness:
    options: dict[str, object] = {
        "domain": SIP_DOMAIN,
        "min_expires": 60,
        "max_expires": 3600,
        "default_expires": 1800,
        "max_bindings_per_device": 3,
        "nonce_lifetime": 300,
        "digest_algorithms": ["MD5", "SHA-256"],  # SHA-256 is opt-in; these tests opt in
    }
    options.update(overrides)
    clock = FakeClock()
    statuses: list[tuple[str, bool]] = []
    registrar = Registrar(
        store=tenant.store,
        location=LocationService(int(str(options["max_bindings_per_device"]))),
        settings=SipSettings.model_validate(options),
        secret=SECRET,
        clock=clock,
        on_status=lambda device, online: statuses.append((device.id, online)),
    )
    return Harness(registrar, clock, statuses)


@pytest.fixture
def harness(tenant: Tenant) -> Harness:
    return make_harness(tenant)


def request_from_lines(lines: Sequence[str]) -> Request:
    message = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(message, Request)
    return message


def register(
    user: str,
    *,
    contacts: Sequence[str] | None = None,
    expires: str | None = "3600",
    cseq: int = 1,
    call_id: str = CALL_ID,
    authorization: str | None = None,
) -> Request:
    """A plain UDP REGISTER for ``user``; one contact at 192.0.2.10 unless told otherwise."""
    if contacts is None:
        contacts = [f"<sip:{user}@192.0.2.10:5060>"]
    return request_from_lines(
        [
            f"REGISTER sip:{SIP_DOMAIN} SIP/2.0",
            f"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-reg-{cseq}",
            "Max-Forwards: 70",
            f"From: <sip:{user}@{SIP_DOMAIN}>;tag=4fa3",
            f"To: <sip:{user}@{SIP_DOMAIN}>",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} REGISTER",
            *(f"Contact: {c}" for c in contacts),
            *([f"Expires: {expires}"] if expires is not None else []),
            *([f"Authorization: {authorization}"] if authorization else []),
            "Content-Length: 0",
        ]
    )


def invite(user: str, *, header: str | None = None, value: str | None = None) -> Request:
    lines = [
        f"INVITE sip:108@{SIP_DOMAIN} SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-inv-1",
        "Max-Forwards: 70",
        f"From: <sip:{user}@{SIP_DOMAIN}>;tag=9fxced76sl",
        f"To: <sip:108@{SIP_DOMAIN}>",
        "Call-ID: inv-3848276298220188511@192.0.2.10",
        "CSeq: 1 INVITE",
        f"Contact: <sip:{user}@192.0.2.10:5060>",
    ]
    if header is not None and value is not None:
        lines.append(f"{header}: {value}")
    return request_from_lines([*lines, "Content-Length: 0"])


def challenges(response: Response, header: str = "WWW-Authenticate") -> list[DigestChallenge]:
    return [DigestChallenge.parse(v) for v in response.headers.get_all(header)]


def answer(
    challenge: DigestChallenge,
    device: Device,
    *,
    username: str | None = None,
    password: str | None = None,
    method: str = "REGISTER",
    uri: str = f"sip:{SIP_DOMAIN}",
) -> str:
    """The Authorization value a qop-aware client (``build_credentials``) sends."""
    return build_credentials(
        challenge,
        method=method,
        uri=uri,
        username=device.authorization_id if username is None else username,
        password=device.sip_password if password is None else password,
        cnonce=CNONCE,
    ).serialize()


def first_challenge(harness: Harness, user: str) -> DigestChallenge:
    response = harness.send(register(user))
    assert response.status == 401
    return challenges(response)[0]


def login(
    harness: Harness,
    device: Device,
    *,
    source: Address = UDP,
    contacts: Sequence[str] | None = None,
    expires: str | None = "3600",
    cseq: int = 1,
    call_id: str = CALL_ID,
) -> Response:
    """Challenge, then answer with the device's MD5 credentials; return the final response."""
    challenge = first_challenge(harness, device.sip_username)
    request = register(
        device.sip_username,
        contacts=contacts,
        expires=expires,
        cseq=cseq,
        call_id=call_id,
        authorization=answer(challenge, device),
    )
    return harness.send(request, source)


def granted(response: Response) -> dict[str, int]:
    """Contact URI → expires, as listed by a 200 to REGISTER."""
    assert response.status == 200, response
    result: dict[str, int] = {}
    for value in response.headers.get_all("contact"):
        contact = NameAddr.parse(value)
        result[str(contact.uri)] = int(contact.params["expires"] or "")
    return result


def sdk_request(
    device: Device, *, authorization: str | None = None, port: int = 53712, cseq_offset: int = 0
) -> Request:
    """The ringcentral-softphone-ts REGISTER capture, re-pointed at our domain and device."""
    name = (
        "rc_softphone_sdk_register_auth.txt" if authorization else "rc_softphone_sdk_register.txt"
    )
    text = (DATA / name).read_text()
    text = text.replace("16505550100@sip.ringcentral.com", f"{device.sip_username}@{SIP_DOMAIN}")
    text = text.replace("sip:sip.ringcentral.com", f"sip:{SIP_DOMAIN}")
    text = text.replace("192.168.1.23:53712", f"192.168.1.23:{port}")
    if authorization:
        text = re.sub(r"Authorization: [^\r\n]*", lambda _: f"Authorization: {authorization}", text)
    message = parse_message(text.encode(), stream=True)
    assert isinstance(message, Request)
    if cseq_offset:  # the SDK's CSeq counter keeps rising across re-registrations
        cseq = message.cseq
        message.headers.set("CSeq", f"{cseq.seq + cseq_offset} {cseq.method}")
    return message


def sdk_authorization(nonce: str, *, username: str, password: str, realm: str) -> str:
    """utils.generateAuthorization of ringcentral-softphone-ts: MD5, no qop, quoted algorithm."""
    ha1 = md5(f"{username}:{realm}:{password}")
    ha2 = md5(f"REGISTER:sip:{realm}")
    response = md5(f"{ha1}:{nonce}:{ha2}")
    return (
        f'Digest algorithm="MD5", username="{username}", realm="{realm}", '
        f'nonce="{nonce}", uri="sip:{realm}", response="{response}"'
    )


def sdk_answer(device: Device, nonce: str) -> str:
    return sdk_authorization(
        nonce, username=device.authorization_id, password=device.sip_password, realm=SIP_DOMAIN
    )


def demo_json_device(tenant: Tenant, number: str) -> dict[str, str]:
    """A device's credentials and the SIP domain as a client reads them from demo.json."""
    demo = tenant.demo.to_json("https://127.0.0.1:8080")
    extensions = demo["extensions"]
    assert isinstance(extensions, list)
    for extension in extensions:
        assert isinstance(extension, dict)
        if extension["extension_number"] == number:
            devices = extension["devices"]
            assert isinstance(devices, list) and isinstance(devices[0], dict)
            fields = {k: v for k, v in devices[0].items() if isinstance(v, str)}
            assert isinstance(demo["sip_domain"], str)
            return {**fields, "sip_domain": demo["sip_domain"]}
    raise KeyError(number)


class TestRfc3261Section22_1Challenge:
    """401 with one WWW-Authenticate per algorithm, shaped for the RingCentral SDK."""

    def test_register_without_credentials_is_challenged(
        self, harness: Harness, tenant: Tenant
    ) -> None:
        response = harness.send(register(tenant.softphone.sip_username))
        assert response.status == 401
        values = response.headers.get_all("WWW-Authenticate")
        assert [c.algorithm for c in challenges(response)] == ["MD5", "SHA-256"]
        for value, challenge in zip(values, challenges(response), strict=True):
            assert value.startswith(f'Digest realm="{SIP_DOMAIN}", nonce="')  # never first
            assert challenge.realm == tenant.demo.account.sip_domain
            assert challenge.qop == ("auth",)
            assert not challenge.stale
        match = SDK_NONCE_RE.search(values[0])
        assert match is not None and match[1] == challenges(response)[0].nonce
        assert not harness.registrar.is_online(tenant.softphone.id)
        assert harness.registrar.counters["challenged"] == 1

    def test_response_copies_the_transaction_headers(
        self, harness: Harness, tenant: Tenant
    ) -> None:
        request = register(tenant.softphone.sip_username, cseq=42)
        response = harness.send(request)
        for name in ("Via", "From", "To", "Call-ID", "CSeq"):
            assert response.headers.get(name) == request.headers.get(name)

    def test_device_may_be_named_by_its_id(self, harness: Harness, tenant: Tenant) -> None:
        device = tenant.softphone
        challenge = first_challenge(harness, device.id)
        assert challenge.realm == SIP_DOMAIN
        response = harness.send(register(device.id, authorization=answer(challenge, device)))
        assert response.status == 200
        assert harness.registrar.is_online(device.id)

    def test_realm_is_the_accounts_sip_domain_not_the_servers(self, tenant: Tenant) -> None:
        harness = make_harness(tenant, domain="pbx.example.net")
        challenge = first_challenge(harness, tenant.softphone.sip_username)
        assert challenge.realm == SIP_DOMAIN

    def test_unknown_user_is_challenged_alike_then_forbidden(
        self, harness: Harness, tenant: Tenant
    ) -> None:
        known = harness.send(register(tenant.softphone.sip_username))
        unknown = harness.send(register("19995550123"))
        assert unknown.status == known.status == 401
        assert [(c.realm, c.algorithm, c.qop) for c in challenges(unknown)] == [
            (c.realm, c.algorithm, c.qop) for c in challenges(known)
        ]
        credentials = answer(challenges(unknown)[0], tenant.softphone, username="19995550123")
        response = harness.send(register("19995550123", authorization=credentials))
        assert response.status == 403
        assert harness.registrar.counters["forbidden"] == 1


class TestRfc3261Section22_4Answers:
    """Credentials: authorization id or SIP user name, MD5 / SHA-256, qop or RFC 2069 form."""

    @pytest.mark.parametrize("username", ["authorization_id", "sip_username"])
    @pytest.mark.parametrize("index", [0, 1], ids=["MD5", "SHA-256"])
    def test_qop_auth_answer_registers(
        self, harness: Harness, tenant: Tenant, username: str, index: int
    ) -> None:
        device = tenant.desk_phone
        response = harness.send(register(device.sip_username))
        challenge = challenges(response)[index]
        credentials = answer(challenge, device, username=getattr(device, username))
        assert "qop=auth" in credentials
        response = harness.send(register(device.sip_username, authorization=credentials))
        assert granted(response) == {f"sip:{device.sip_username}@192.0.2.10:5060": 3600}
        assert harness.registrar.is_online(device.id)
        assert harness.registrar.counters["registered"] == 1

    def test_ringcentral_softphone_sdk_rfc2069_answer(
        self, harness: Harness, tenant: Tenant
    ) -> None:
        """MD5, no qop, ``algorithm="MD5"`` quoted: what ringcentral-softphone-ts sends."""
        device = tenant.softphone
        response = harness.send(sdk_request(device), TLS_7)
        assert response.status == 401
        match = SDK_NONCE_RE.search(response.headers.get("WWW-Authenticate") or "")
        assert match is not None
        client = demo_json_device(tenant, "101")  # what the SDK is configured with
        authorization = sdk_authorization(
            match[1],
            username=client["authorization_id"],
            password=client["sip_password"],
            realm=client["sip_domain"],
        )
        response = harness.send(sdk_request(device, authorization=authorization), TLS_7)
        assert response.status == 200
        [contact] = response.headers.get_all("contact")
        assert contact == (
            f"<sip:16505550100@192.168.1.23:53712;transport=TLS;ob>;reg-id=1;"
            f'+sip.instance="{INSTANCE}";expires=3600'
        )
        [binding] = harness.registrar.bindings(device.id)
        assert binding.instance == INSTANCE
        assert binding.reg_id == "1"
        assert "expires" not in binding.contact.params
        assert binding.source == TLS_7
        assert binding.flow_bound
        assert (binding.call_id, binding.cseq) == ("907a70c3-1012-4037-b64c-e4228c38fb29", 4818)
        assert harness.statuses == [(device.id, True)]

    def test_ringcentral_sdk_answer_with_wrong_password_is_forbidden(
        self, harness: Harness, tenant: Tenant
    ) -> None:
        device = tenant.softphone
        response = harness.send(sdk_request(device), TLS_7)
        match = SDK_NONCE_RE.search(response.headers.get("WWW-Authenticate") or "")
        assert match is not None
        authorization = sdk_authorization(
            match[1], username=device.authorization_id, password="not-it", realm=SIP_DOMAIN
        )
        response = harness.send(sdk_request(device, authorization=authorization), TLS_7)
        assert response.status == 403
        assert not harness.registrar.is_online(device.id)
        assert harness.statuses == []

    def test_sipp_answer_with_sip_username_and_bare_algorithm(
        self, harness: Harness, tenant: Tenant
    ) -> None:
        """SIPp: ``username`` = SIP user, digest uri unlike the request-URI, ``algorithm=MD5``."""
        device = tenant.desk_phone
        nonce = first_challenge(harness, device.sip_username).nonce
        ha1 = md5(f"{device.sip_username}:{SIP_DOMAIN}:{device.sip_password}")
        digest = md5(f"{ha1}:{nonce}:{md5('REGISTER:sip:127.0.0.1:5060')}")
        text = (
            (DATA / "sipp_register_auth.txt").read_text().replace("101@", f"{device.sip_username}@")
        )
        authorization = (
            f'Authorization: Digest username="{device.sip_username}",realm="{SIP_DOMAIN}",'
            f'uri="sip:127.0.0.1:5060",nonce="{nonce}",response="{digest}",algorithm=MD5'
        )
        text = re.sub(r"Authorization: [^\r\n]*", lambda _: authorization, text)
        request = parse_message(text.encode())
        assert isinstance(request, Request)
        response = harness.send(request, Address("UDP", "127.0.0.1", 5062))
        assert granted(response) == {f"sip:{device.sip_username}@127.0.0.1:5062": 3600}

    def test_wrong_password_is_forbidden(self, harness: Harness, tenant: Tenant) -> None:
        device = tenant.desk_phone
        challenge = first_challenge(harness, device.sip_username)
        credentials = answer(challenge, device, password="wrong")
        response = harness.send(register(device.sip_username, authorization=credentials))
        assert response.status == 403
        assert "WWW-Authenticate" not in response.headers
        assert harness.registrar.counters["forbidden"] == 1

    def test_another_devices_credentials_are_forbidden(
        self, harness: Harness, tenant: Tenant
    ) -> None:
        challenge = first_challenge(harness, tenant.softphone.sip_username)
        credentials = answer(challenge, tenant.desk_phone)  # right password, wrong device
        response = harness.send(register(tenant.softphone.sip_username, authorization=credentials))
        assert response.status == 403
        assert not harness.registrar.is_online(tenant.softphone.id)
        assert not harness.registrar.is_online(tenant.desk_phone.id)

    def test_unsupported_algorithm_is_forbidden(self, harness: Harness, tenant: Tenant) -> None:
        device = tenant.desk_phone
        nonce = first_challenge(harness, device.sip_username).nonce
        credentials = (
            f'Digest username="{device.id}", realm="{SIP_DOMAIN}", nonce="{nonce}", '
            f'uri="sip:{SIP_DOMAIN}", response="{"0" * 64}", algorithm=SHA-512-256'
        )
        response = harness.send(register(device.sip_username, authorization=credentials))
        assert response.status == 403

    def test_credentials_for_another_realm_are_ignored(
        self, harness: Harness, tenant: Tenant
    ) -> None:
        device = tenant.desk_phone
        nonce = first_challenge(harness, device.sip_username).nonce
        foreign = DigestChallenge(realm="sip.ringcentral.com", nonce=nonce)
        response = harness.send(
            register(device.sip_username, authorization=answer(foreign, device))
        )
        assert response.status == 401
        assert challenges(response)[0].realm == SIP_DOMAIN

    def test_nonce_we_did_not_issue_is_rechallenged(self, harness: Harness, tenant: Tenant) -> None:
        device = tenant.desk_phone
        forged = DigestChallenge(realm=SIP_DOMAIN, nonce="Yzq7hQABAAC1d2Y2AAAAAI7dPxoAAAAA")
        response = harness.send(register(device.sip_username, authorization=answer(forged, device)))
        assert response.status == 401
        assert not challenges(response)[0].stale

    def test_nonce_is_reusable_within_its_lifetime(self, harness: Harness, tenant: Tenant) -> None:
        device = tenant.desk_phone
        challenge = first_challenge(harness, device.sip_username)
        for cseq in (2, 3):
            harness.clock.advance(100)
            request = register(
                device.sip_username, cseq=cseq, authorization=answer(challenge, device)
            )
            assert harness.send(request).status == 200


class TestRfc7616Section3_3Stale:
    """A right answer to an expired nonce is re-challenged with ``stale=true``."""

    def test_stale_nonce_gets_401_stale_true(self, harness: Harness, tenant: Tenant) -> None:
        device = tenant.desk_phone
        old = first_challenge(harness, device.sip_username)
        harness.clock.advance(301)
        response = harness.send(register(device.sip_username, authorization=answer(old, device)))
        assert response.status == 401
        fresh = challenges(response)
        assert [c.stale for c in fresh] == [True, True]
        assert "stale=true" in (response.headers.get("WWW-Authenticate") or "")
        assert fresh[0].nonce != old.nonce
        retry = register(device.sip_username, cseq=2, authorization=answer(fresh[0], device))
        assert harness.send(retry).status == 200

    def test_nonce_at_exactly_its_lifetime_is_fresh(self, harness: Harness, tenant: Tenant) -> None:
        device = tenant.desk_phone
        challenge = first_challenge(harness, device.sip_username)
        harness.clock.advance(300)
        request = register(device.sip_username, authorization=answer(challenge, device))
        assert harness.send(request).status == 200

    def test_wrong_password_with_stale_nonce_is_forbidden(
        self, harness: Harness, tenant: Tenant
    ) -> None:
        device = tenant.desk_phone
        old = first_challenge(harness, device.sip_username)
        harness.clock.advance(301)
        credentials = answer(old, device, password="wrong")
        response = harness.send(register(device.sip_username, authorization=credentials))
        assert response.status == 403


class TestRfc3261Section22_3ProxyAuthentication:
    """``authenticate(proxy=True)``: 407 with Proxy-Authenticate for calls."""

    def test_invite_without_credentials_gets_407(self, harness: Harness, tenant: Tenant) -> None:
        device = tenant.desk_phone
        outcome = harness.registrar.authenticate(
            invite(device.sip_username), user=device.sip_username, proxy=True
        )
        assert isinstance(outcome, Response)
        assert outcome.status == 407
        assert "WWW-Authenticate" not in outcome.headers
        assert [c.algorithm for c in challenges(outcome, "Proxy-Authenticate")] == [
            "MD5",
            "SHA-256",
        ]
        assert challenges(outcome, "Proxy-Authenticate")[0].realm == SIP_DOMAIN

    def test_proxy_authorization_yields_the_device(self, harness: Harness, tenant: Tenant) -> None:
        device = tenant.desk_phone
        first = harness.registrar.authenticate(
            invite(device.sip_username), user=device.sip_username, proxy=True
        )
        assert isinstance(first, Response)
        challenge = challenges(first, "Proxy-Authenticate")[0]
        credentials = answer(challenge, device, method="INVITE", uri=f"sip:108@{SIP_DOMAIN}")
        request = invite(device.sip_username, header="Proxy-Authorization", value=credentials)
        outcome = harness.registrar.authenticate(request, user=device.sip_username, proxy=True)
        assert outcome == device
        assert not harness.registrar.is_online(device.id)  # authenticating binds nothing

    def test_authorization_header_does_not_answer_a_proxy_challenge(
        self, harness: Harness, tenant: Tenant
    ) -> None:
        device = tenant.desk_phone
        challenge = first_challenge(harness, device.sip_username)
        credentials = answer(challenge, device, method="INVITE", uri=f"sip:108@{SIP_DOMAIN}")
        request = invite(device.sip_username, header="Authorization", value=credentials)
        outcome = harness.registrar.authenticate(request, user=device.sip_username, proxy=True)
        assert isinstance(outcome, Response)
        assert outcome.status == 407

    def test_answer_hashed_for_another_method_is_forbidden(
        self, harness: Harness, tenant: Tenant
    ) -> None:
        device = tenant.desk_phone
        challenge = first_challenge(harness, device.sip_username)
        credentials = answer(challenge, device, method="REGISTER", uri=f"sip:108@{SIP_DOMAIN}")
        request = invite(device.sip_username, header="Proxy-Authorization", value=credentials)
        outcome = harness.registrar.authenticate(request, user=device.sip_username, proxy=True)
        assert isinstance(outcome, Response)
        assert outcome.status == 403


class TestRfc3261Section10_3Bindings:
    """Contacts, expiry values, removal and the 200's contact list."""

    def test_expires_header_applies_to_contacts_without_a_parameter(
        self, harness: Harness, tenant: Tenant
    ) -> None:
        response = login(harness, tenant.desk_phone, expires="600")
        assert list(granted(response).values()) == [600]

    def test_default_expiry_without_header_or_parameter(
        self, harness: Harness, tenant: Tenant
    ) -> None:
        response = login(harness, tenant.desk_phone, expires=None)
        assert list(granted(response).values()) == [1800]

    def test_expires_parameter_overrides_the_header(self, harness: Harness, tenant: Tenant) -> None:
        contacts = ["<sip:a@192.0.2.10>;expires=120", "<sip:b@192.0.2.10>"]
        response = login(harness, tenant.desk_phone, contacts=contacts, expires="600")
        assert granted(response) == {"sip:a@192.0.2.10": 120, "sip:b@192.0.2.10": 600}

    def test_comma_separated_contacts(self, harness: Harness, tenant: Tenant) -> None:
        contacts = ["<sip:a@192.0.2.10>;expires=120, <sip:b@192.0.2.10>;q=0.5"]
        response = login(harness, tenant.desk_phone, contacts=contacts)
        assert granted(response) == {"sip:a@192.0.2.10": 120, "sip:b@192.0.2.10": 3600}

    def test_longer_than_maximum_is_clamped(self, harness: Harness, tenant: Tenant) -> None:
        contacts = ["<sip:a@192.0.2.10>;expires=7200", "<sip:b@192.0.2.10>"]
        response = login(harness, tenant.desk_phone, contacts=contacts, expires="86400")
        assert granted(response) == {"sip:a@192.0.2.10": 3600, "sip:b@192.0.2.10": 3600}

    @pytest.mark.parametrize(
        ("contacts", "expires"),
        [(None, "30"), (["<sip:a@192.0.2.10>;expires=59", "<sip:b@192.0.2.10>"], "3600")],
    )
    def test_shorter_than_minimum_is_423(
        self, harness: Harness, tenant: Tenant, contacts: list[str] | None, expires: str
    ) -> None:
        """RFC 3261 §10.3 step 7: 423 Interval Too Brief with Min-Expires; nothing is bound."""
        response = login(harness, tenant.desk_phone, contacts=contacts, expires=expires)
        assert (response.status, response.reason) == (423, "Interval Too Brief")
        assert response.headers.get("Min-Expires") == "60"
        assert "Contact" not in response.headers
        assert not harness.registrar.is_online(tenant.desk_phone.id)
        assert harness.statuses == []

    def test_minimum_itself_is_accepted(self, harness: Harness, tenant: Tenant) -> None:
        response = login(harness, tenant.desk_phone, expires="60")
        assert list(granted(response).values()) == [60]

    def test_200_lists_every_live_binding_with_its_remaining_time(
        self, harness: Harness, tenant: Tenant
    ) -> None:
        device = tenant.desk_phone
        login(harness, device, contacts=["<sip:a@192.0.2.10>"])
        harness.clock.advance(100)
        response = login(harness, device, contacts=["<sip:b@192.0.2.10>"], cseq=2)
        assert granted(response) == {"sip:a@192.0.2.10": 3500, "sip:b@192.0.2.10": 3600}
        assert response.headers.get("Date") == "Thu, 01 Jan 2026 00:01:40 GMT"

    def test_register_without_contact_queries_the_bindings(
        self, harness: Harness, tenant: Tenant
    ) -> None:
        device = tenant.desk_phone
        login(harness, device, expires="600")
        harness.clock.advance(60)
        response = login(harness, device, contacts=[], expires=None, cseq=2)
        assert granted(response) == {f"sip:{device.sip_username}@192.0.2.10:5060": 540}
        assert harness.statuses == [(device.id, True)]

    def test_expires_zero_removes_one_binding(self, harness: Harness, tenant: Tenant) -> None:
        device = tenant.desk_phone
        login(harness, device, contacts=["<sip:a@192.0.2.10>", "<sip:b@192.0.2.10>"])
        response = login(harness, device, contacts=["<sip:a@192.0.2.10>;expires=0"], cseq=2)
        assert granted(response) == {"sip:b@192.0.2.10": 3600}
        assert harness.statuses == [(device.id, True)]

    def test_removing_the_last_binding_turns_the_device_offline(
        self, harness: Harness, tenant: Tenant
    ) -> None:
        device = tenant.desk_phone
        login(harness, device)
        response = login(harness, device, expires="0", cseq=2)
        assert granted(response) == {}
        assert not harness.registrar.is_online(device.id)
        assert harness.statuses == [(device.id, True), (device.id, False)]
        assert harness.registrar.counters["unregistered"] == 1

    def test_unregistered_device_is_not_reported_offline_again(
        self, harness: Harness, tenant: Tenant
    ) -> None:
        device = tenant.desk_phone
        login(harness, device)
        login(harness, device, expires="0", cseq=2)
        harness.registrar.expire()
        assert harness.statuses == [(device.id, True), (device.id, False)]

    def test_contact_star_with_expires_zero_removes_all(
        self, harness: Harness, tenant: Tenant
    ) -> None:
        """RFC 3261 §10.2.2."""
        device = tenant.desk_phone
        login(harness, device, contacts=["<sip:a@192.0.2.10>", "<sip:b@192.0.2.10>"])
        response = login(harness, device, contacts=["*"], expires="0", cseq=2)
        assert granted(response) == {}
        assert harness.registrar.bindings(device.id) == []
        assert harness.statuses == [(device.id, True), (device.id, False)]

    @pytest.mark.parametrize(
        ("contacts", "expires"),
        [
            (["*"], "3600"),
            (["*"], None),  # the default expiry is not 0
            (["*", "<sip:a@192.0.2.10>"], "0"),
            (["*, <sip:a@192.0.2.10>"], "0"),
        ],
    )
    def test_malformed_contact_star_is_400(
        self, harness: Harness, tenant: Tenant, contacts: list[str], expires: str | None
    ) -> None:
        device = tenant.desk_phone
        login(harness, device)
        response = login(harness, device, contacts=contacts, expires=expires, cseq=2)
        assert response.status == 400
        assert harness.registrar.is_online(device.id)

    @pytest.mark.parametrize(
        ("contacts", "expires"),
        [(None, "soon"), (None, "-1"), (["<sip:a@192.0.2.10>;expires=1e3"], "3600")],
    )
    def test_invalid_expiry_is_400(
        self, harness: Harness, tenant: Tenant, contacts: list[str] | None, expires: str
    ) -> None:
        response = login(harness, tenant.desk_phone, contacts=contacts, expires=expires)
        assert response.status == 400
        assert "invalid expires value" in response.reason
        assert not harness.registrar.is_online(tenant.desk_phone.id)

    def test_non_ascii_digit_expiry_is_400(self, harness: Harness, tenant: Tenant) -> None:
        response = login(harness, tenant.desk_phone, expires="²")
        assert response.status == 400

    def test_binding_limit_per_device(self, tenant: Tenant) -> None:
        harness = make_harness(tenant, max_bindings_per_device=2)
        device = tenant.desk_phone
        login(harness, device, contacts=["<sip:a@192.0.2.10>", "<sip:b@192.0.2.10>"])
        response = login(harness, device, contacts=["<sip:c@192.0.2.10>"], cseq=2)
        assert (response.status, response.reason) == (403, "Too Many Bindings")
        refresh = login(harness, device, contacts=["<sip:a@192.0.2.10>"], expires="600", cseq=3)
        assert granted(refresh) == {"sip:a@192.0.2.10": 600, "sip:b@192.0.2.10": 3600}

    def test_binding_limit_counts_removals_in_the_same_request(self, tenant: Tenant) -> None:
        harness = make_harness(tenant, max_bindings_per_device=2)
        device = tenant.desk_phone
        login(harness, device, contacts=["<sip:a@192.0.2.10>", "<sip:b@192.0.2.10>"])
        contacts = ["<sip:a@192.0.2.10>;expires=0", "<sip:c@192.0.2.10>"]
        response = login(harness, device, contacts=contacts, cseq=2)
        assert granted(response) == {"sip:b@192.0.2.10": 3600, "sip:c@192.0.2.10": 3600}

    def test_out_of_order_register_does_not_update_the_binding(
        self, harness: Harness, tenant: Tenant
    ) -> None:
        device = tenant.desk_phone
        login(harness, device, cseq=6)
        late = login(harness, device, expires="0", cseq=5)  # delayed older REGISTER (UDP)
        assert late.status >= 400
        assert harness.registrar.is_online(device.id)

    def test_new_call_id_with_lower_cseq_updates(self, harness: Harness, tenant: Tenant) -> None:
        """Step 7: a different Call-ID (a rebooted phone) always updates the binding."""
        device = tenant.desk_phone
        login(harness, device, cseq=6)
        response = login(harness, device, expires="600", cseq=1, call_id="rebooted@192.0.2.10")
        assert list(granted(response).values()) == [600]
        [binding] = harness.registrar.bindings(device.id)
        assert (binding.call_id, binding.cseq) == ("rebooted@192.0.2.10", 1)


class TestExpiryAndStatus:
    """Bindings expire on the clock; ``on_status`` hears every Online/Offline transition."""

    def test_status_callback_on_transitions_only(self, harness: Harness, tenant: Tenant) -> None:
        device = tenant.desk_phone
        login(harness, device, contacts=["<sip:a@192.0.2.10>"], expires="600")
        login(harness, device, contacts=["<sip:a@192.0.2.10>"], expires="600", cseq=2)
        login(harness, device, contacts=["<sip:b@192.0.2.10>"], expires="120", cseq=3)
        assert harness.statuses == [(device.id, True)]
        harness.clock.advance(120)
        harness.registrar.expire()
        assert harness.registrar.is_online(device.id)
        assert harness.statuses == [(device.id, True)]

    def test_expiry_turns_the_device_offline(self, harness: Harness, tenant: Tenant) -> None:
        device = tenant.desk_phone
        login(harness, device, expires="600")
        harness.clock.advance(599)
        assert harness.registrar.is_online(device.id)
        harness.clock.advance(1)
        assert not harness.registrar.is_online(device.id)  # even before expire() runs
        assert harness.registrar.bindings(device.id) == []
        harness.registrar.expire()
        harness.registrar.expire()
        assert harness.statuses == [(device.id, True), (device.id, False)]

    def test_reregistering_after_a_lapse_reports_offline_first(
        self, harness: Harness, tenant: Tenant
    ) -> None:
        device = tenant.desk_phone
        login(harness, device, expires="600")
        harness.clock.advance(600)  # lapsed; the periodic expire() has not run yet
        login(harness, device, expires="600", cseq=2)
        harness.registrar.expire()
        assert harness.statuses == [(device.id, True), (device.id, False), (device.id, True)]

    def test_registering_again_after_expiry_is_a_new_transition(
        self, harness: Harness, tenant: Tenant
    ) -> None:
        device = tenant.desk_phone
        login(harness, device, expires="600")
        harness.clock.advance(600)
        harness.registrar.expire()
        login(harness, device, expires="600", cseq=2)
        assert harness.statuses == [(device.id, True), (device.id, False), (device.id, True)]

    def test_devices_are_independent(self, harness: Harness, tenant: Tenant) -> None:
        login(harness, tenant.desk_phone, expires="600")
        login(harness, tenant.softphone, expires="1200")
        harness.clock.advance(600)
        harness.registrar.expire()
        assert harness.statuses[-1] == (tenant.desk_phone.id, False)
        assert harness.registrar.is_online(tenant.softphone.id)


class TestRfc5626Section6Flows:
    """Outbound registrations over TLS: re-registration from a new flow, closed connections."""

    def sdk_login(
        self, harness: Harness, device: Device, source: Address, cseq_offset: int = 0
    ) -> Response:
        first = sdk_request(device, port=source.port, cseq_offset=cseq_offset)
        response = harness.send(first, source)
        match = SDK_NONCE_RE.search(response.headers.get("WWW-Authenticate") or "")
        assert match is not None
        request = sdk_request(
            device,
            authorization=sdk_answer(device, match[1]),
            port=source.port,
            cseq_offset=cseq_offset,
        )
        return harness.send(request, source)

    def test_reregistration_from_a_new_flow_replaces_the_binding(
        self, harness: Harness, tenant: Tenant
    ) -> None:
        device = tenant.softphone
        self.sdk_login(harness, device, TLS_7)
        response = self.sdk_login(harness, device, TLS_8, cseq_offset=10)
        assert granted(response) == {"sip:16505550100@192.168.1.23:53799;transport=TLS;ob": 3600}
        [binding] = harness.registrar.bindings(device.id)
        assert binding.source == TLS_8
        harness.registrar.connection_closed(7)  # the old flow: nothing left on it
        assert harness.registrar.is_online(device.id)
        harness.registrar.connection_closed(8)
        assert not harness.registrar.is_online(device.id)
        assert harness.statuses == [(device.id, True), (device.id, False)]

    def test_closing_a_connection_keeps_routable_bindings(
        self, harness: Harness, tenant: Tenant
    ) -> None:
        device = tenant.desk_phone
        login(harness, device, source=TLS_7, contacts=["<sip:a@192.0.2.10;transport=tls>"])
        harness.registrar.connection_closed(7)
        assert harness.registrar.is_online(device.id)
        assert harness.statuses == [(device.id, True)]

    def test_closing_an_unrelated_connection_changes_nothing(
        self, harness: Harness, tenant: Tenant
    ) -> None:
        self.sdk_login(harness, tenant.softphone, TLS_7)
        harness.registrar.connection_closed(99)
        assert harness.registrar.is_online(tenant.softphone.id)
        assert harness.statuses == [(tenant.softphone.id, True)]


class TestExpiryProperty:
    @settings(max_examples=40, deadline=None)
    @given(value=st.integers(min_value=0, max_value=10**9))
    def test_any_expires_value(self, tenant: Tenant, value: int) -> None:
        """0 removes, below the minimum is 423, otherwise min(value, maximum) is granted."""
        harness = make_harness(tenant)
        response = login(harness, tenant.desk_phone, expires=str(value))
        if value == 0:
            assert granted(response) == {}
        elif value < 60:
            assert response.status == 423
        else:
            assert list(granted(response).values()) == [min(value, 3600)]


def test_default_settings_challenge_with_md5_only(tenant: Tenant) -> None:
    """baresip 1.0 gives up on a SHA-256 challenge, so the default offers MD5 alone."""
    registrar = Registrar(
        store=tenant.store,
        location=LocationService(),
        settings=SipSettings(domain=SIP_DOMAIN),
        secret=SECRET,
        clock=FakeClock(),
    )
    device = tenant.softphone
    response = registrar.handle_register(sdk_request(device), TLS_7)
    assert response.status == 401
    challenges = response.headers.get_all("www-authenticate")
    assert len(challenges) == 1 and "algorithm=MD5" in challenges[0]
