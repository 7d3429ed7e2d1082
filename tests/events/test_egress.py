"""callwatch.events.egress: the WebHook address policy, name resolution, and the guarded
connection — real sockets and real HTTP(S) receivers on loopback, names from an injected
resolver (or the system's, for ``localhost`` and numeric spellings)."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pydantic
import pytest

from callwatch.config import Settings
from callwatch.events.egress import (
    HTTPS_REQUIRED,
    AddressDenied,
    AddressGuard,
    AddressPolicy,
    denial,
    system_resolver,
)
from callwatch.events.settings import DEFAULT_DENIED_NETWORKS, EventsSettings
from callwatch.events.webhook import new_http_client
from callwatch.sip.aio.tls import ensure_self_signed, server_context

from .names import Names
from .receiver import Receiver, Reply

DEFAULT = AddressPolicy.of(EventsSettings())
PRIVATE = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")


def policy(**settings: object) -> AddressPolicy:
    return AddressPolicy.of(EventsSettings.model_validate(settings))


class TestPolicy:
    @pytest.mark.parametrize(
        "address",
        ["169.254.169.254", "169.254.0.1", "0.0.0.0", "0.1.2.3", "224.0.0.1", "239.255.255.250",
         "240.0.0.1", "255.255.255.255", "::", "fe80::1", "fe80::1%1", "ff02::1", "fd00:ec2::254",
         "::ffff:169.254.169.254", "::ffff:0.0.0.0", "::ffff:224.0.0.251"],
    )  # fmt: skip
    def test_never_a_receiver(self, address: str) -> None:
        assert DEFAULT.refusal(ipaddress.ip_address(address)) is not None

    @pytest.mark.parametrize(
        "address",
        ["127.0.0.1", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.10", "fd12::1", "8.8.8.8",
         "2001:db8::1", "::ffff:127.0.0.1", "fd00:ec2::253"],
    )  # fmt: skip
    def test_loopback_private_and_public_pass_by_default(self, address: str) -> None:
        assert DEFAULT.refusal(ipaddress.ip_address(address)) is None

    def test_the_reason_names_the_network(self) -> None:
        reason = DEFAULT.refusal(ipaddress.ip_address("::ffff:169.254.169.254"))
        assert reason == "::ffff:a9fe:a9fe is in the denied network 169.254.0.0/16"

    def test_mapped_networks_are_compared_as_ipv4(self) -> None:
        mapped = policy(webhook_denied_networks=["::ffff:10.0.0.0/104"])
        assert mapped.refusal(ipaddress.ip_address("10.9.8.7")) is not None
        assert mapped.refusal(ipaddress.ip_address("::ffff:10.9.8.7")) is not None
        assert mapped.refusal(ipaddress.ip_address("11.0.0.1")) is None
        assert mapped.denied == (ipaddress.IPv4Network("10.0.0.0/8"),)

    def test_allow_list_admits_only_its_networks_and_the_deny_list_wins(self) -> None:
        allowed = policy(webhook_allowed_networks=["192.0.2.0/24", "169.254.0.0/16"])
        assert allowed.refusal(ipaddress.ip_address("192.0.2.7")) is None
        assert allowed.refusal(ipaddress.ip_address("::ffff:192.0.2.7")) is None
        assert allowed.refusal(ipaddress.ip_address("127.0.0.1")) == (
            "127.0.0.1 is outside the allowed networks"
        )
        assert allowed.refusal(ipaddress.ip_address("169.254.169.254")) is not None

    def test_forbidding_private_ranges(self) -> None:
        strict = policy(webhook_denied_networks=[*DEFAULT_DENIED_NETWORKS, *PRIVATE])
        for address in ("127.0.0.1", "::1", "10.0.0.1", "192.168.0.1", "::ffff:172.16.0.1"):
            assert strict.refusal(ipaddress.ip_address(address)) is not None
        assert strict.refusal(ipaddress.ip_address("8.8.8.8")) is None

    def test_https_requirement(self) -> None:
        assert DEFAULT.scheme_refusal("http") is None
        assert policy(webhook_require_https=True).scheme_refusal("http") == "https is required"
        assert policy(webhook_require_https=True).scheme_refusal("https") is None

    @pytest.mark.parametrize("field", ["webhook_denied_networks", "webhook_allowed_networks"])
    @pytest.mark.parametrize("bad", ["not-a-net", "10.0.0.1/8", "300.0.0.0/8"])
    def test_bad_networks_are_a_settings_error(self, field: str, bad: str) -> None:
        with pytest.raises(pydantic.ValidationError, match="not an IP network"):
            EventsSettings.model_validate({field: [bad]})

    def test_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CALLWATCH_EVENTS__WEBHOOK_REQUIRE_HTTPS", "true")
        monkeypatch.setenv("CALLWATCH_EVENTS__WEBHOOK_ALLOWED_NETWORKS", '["192.0.2.0/24"]')
        events = Settings().events
        assert events.webhook_require_https is True
        assert events.webhook_allowed_networks == ["192.0.2.0/24"]
        assert events.webhook_denied_networks == list(DEFAULT_DENIED_NETWORKS)


class TestGuard:
    async def test_a_literal_address_is_not_looked_up(self) -> None:
        names = Names()
        guard = AddressGuard(DEFAULT, names)
        assert await guard.resolve("127.0.0.1", 80) == (ipaddress.ip_address("127.0.0.1"),)
        with pytest.raises(AddressDenied, match=r"169\.254\.0\.0/16"):
            await guard.resolve("169.254.169.254", 80)
        assert names.lookups == []

    async def test_one_denied_address_refuses_the_name(self) -> None:
        names = Names({"mixed.test": ["127.0.0.1", "169.254.169.254"]})
        with pytest.raises(AddressDenied) as caught:
            await AddressGuard(DEFAULT, names).resolve("mixed.test", 80)
        assert str(caught.value) == (
            "169.254.169.254 is in the denied network 169.254.0.0/16 (address of mixed.test)"
        )
        assert caught.value.public == "address is not allowed"

    async def test_numeric_spellings_are_resolved_then_checked(self) -> None:
        """``2852039166`` and ``0xa9.0xfe.0xa9.0xfe`` are 169.254.169.254 to getaddrinfo."""
        guard = AddressGuard(DEFAULT)
        for host in ("2852039166", "0xa9.0xfe.0xa9.0xfe", "169.254.43518"):
            with pytest.raises(AddressDenied, match=r"169\.254\.169\.254 is in the denied"):
                await guard.resolve(host, 80)

    async def test_localhost_is_resolved_and_checked(self) -> None:
        assert await AddressGuard(DEFAULT).resolve("localhost", 80)
        only_public = policy(webhook_allowed_networks=["192.0.2.0/24", "2001:db8::/32"])
        with pytest.raises(AddressDenied, match="outside the allowed networks"):
            await AddressGuard(only_public).resolve("localhost", 80)

    async def test_scheme_and_unresolvable_names(self) -> None:
        guard = AddressGuard(policy(webhook_require_https=True), Names())
        with pytest.raises(AddressDenied) as caught:
            await guard.check(httpx.URL("http://127.0.0.1/x"))
        assert caught.value.public == HTTPS_REQUIRED
        with pytest.raises(httpx.ConnectError, match=r"cannot resolve nowhere\.test"):
            await guard.check(httpx.URL("https://nowhere.test/x"))

    async def test_system_resolver(self) -> None:
        assert "127.0.0.1" in await system_resolver("localhost", 80)
        assert await system_resolver("2852039166", 80) == ["169.254.169.254"]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as started:
        yield started


class TestConnection:
    """The shared client connects to the address it checked, never to another."""

    async def test_a_name_is_connected_through_the_checked_address(
        self, receiver: Receiver
    ) -> None:
        names = Names({"hooks.test": ["127.0.0.1"]})
        async with new_http_client(AddressGuard(DEFAULT, names)) as client:
            response = await client.post(receiver.url_for("hooks.test"), content=b"x")
        assert response.status_code == 200
        (request,) = receiver.requests
        assert request.headers["host"] == f"hooks.test:{receiver.port}"
        assert names.lookups == ["hooks.test"]  # the system resolver does not know .test

    async def test_a_denied_answer_at_connection_time_is_never_connected(self) -> None:
        """DNS rebinding: whatever the name says when the connection opens is what is checked
        and connected to — here a listener the policy denies, which gets nothing."""
        async with Receiver() as allowed:
            names = Names({"rebind.test": ["127.0.0.2"]})
            deny = policy(webhook_denied_networks=["127.0.0.2/32"])
            async with (
                Receiver(host="127.0.0.2", port=allowed.port) as internal,
                new_http_client(AddressGuard(deny, names)) as client,
            ):
                with pytest.raises(httpx.ConnectError, match="address not allowed") as caught:
                    await client.post(internal.url_for("rebind.test"), content=b"x")
                assert denial(caught.value) is not None
                names.table["rebind.test"] = ["127.0.0.1"]
                ok = await client.post(internal.url_for("rebind.test"), content=b"x")
                assert ok.status_code == 200
                assert internal.requests == []
        assert len(allowed.requests) == 1

    async def test_every_address_is_tried_in_order(self, receiver: Receiver) -> None:
        names = Names({"two.test": ["127.0.0.3", "127.0.0.1"]})  # nobody on 127.0.0.3
        async with new_http_client(AddressGuard(DEFAULT, names)) as client:
            response = await client.post(receiver.url_for("two.test"), content=b"x")
        assert response.status_code == 200

    async def test_redirects_are_not_followed(self, receiver: Receiver) -> None:
        async with Receiver() as target:
            receiver.reply = lambda request: _redirect(target.url)
            async with new_http_client(AddressGuard(DEFAULT)) as client:
                response = await client.post(receiver.url, content=b"x")
            assert response.status_code == 307
            assert target.requests == []


class TestTls:
    """https through a checked address: SNI and certificate verification use the name."""

    async def test_sni_and_verification_use_the_name(self, tmp_path: Path) -> None:
        server, trust = _tls(tmp_path, "hooks.test")
        seen: list[str | None] = []

        def sni(sock: ssl.SSLObject, name: str | None, context: ssl.SSLContext) -> None:
            seen.append(name)

        server.sni_callback = sni
        names = Names({"hooks.test": ["127.0.0.1"]})
        async with (
            Receiver(tls=server) as receiver,
            new_http_client(AddressGuard(DEFAULT, names), verify=trust) as client,
        ):
            response = await client.post(receiver.url_for("hooks.test"), content=b"x")
        assert response.status_code == 200
        assert seen == ["hooks.test"]

    async def test_a_certificate_for_another_name_fails(self, tmp_path: Path) -> None:
        server, trust = _tls(tmp_path, "other.test")
        names = Names({"hooks.test": ["127.0.0.1"]})
        async with Receiver(tls=server) as receiver:
            async with new_http_client(AddressGuard(DEFAULT, names), verify=trust) as client:
                with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                    await client.post(receiver.url_for("hooks.test"), content=b"x")
            assert receiver.requests == []


def _tls(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = ensure_self_signed(tmp_path / name, [name])
    return server_context(cert, key), ssl.create_default_context(cafile=str(cert))


def _redirect(location: str) -> Reply:
    return Reply(status=307, headers={"Location": location})
