"""callwatch.events.webhook against a real HTTP receiver on loopback: handshake, ordered
deliveries, retries, blacklisting, isolation of a dead receiver, refused addresses."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from callwatch.events.egress import AddressGuard, AddressPolicy
from callwatch.events.errors import AddressNotAllowed, InvalidSubscriptionField, WebhookRejected
from callwatch.events.settings import EventsSettings
from callwatch.events.tasks import TaskSet
from callwatch.events.webhook import (
    WebhookPool,
    WebhookValidator,
    check_address,
    new_http_client,
)
from callwatch.ids import IdGenerator
from callwatch.store.repo import SubscriptionRecord

from .calls import notification
from .names import Names
from .receiver import Received, Receiver, Reply

SETTINGS = EventsSettings(
    webhook_validation_timeout=0.3,
    webhook_timeout=0.3,
    webhook_retry_base=0.01,
    webhook_retry_max=0.04,
    webhook_blacklist_after=4,
    webhook_queue_size=100,
)
GUARD = AddressGuard(AddressPolicy.of(SETTINGS))


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    client = new_http_client(GUARD)
    yield client
    await client.aclose()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as started:
        yield started


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``check()`` holds (state seen from outside the worker)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def _validator(http: httpx.AsyncClient, guard: AddressGuard = GUARD) -> WebhookValidator:
    return WebhookValidator(http=http, guard=guard, ids=IdGenerator(1), settings=SETTINGS)


class TestHandshake:
    async def test_accepted(self, http: httpx.AsyncClient, receiver: Receiver) -> None:
        await _validator(http).validate(receiver.url)
        (request,) = receiver.requests
        assert request.method == "POST"
        assert request.body == b""
        assert len(request.headers["validation-token"]) == 32
        assert request.headers["user-agent"] == "RingCentral-Webhook/8.3"

    @pytest.mark.parametrize(
        ("reply", "message"),
        [
            (Reply(echo_token=False), "Validation-Token header was not echoed"),
            (Reply(status=204), "HTTP status 204"),
            (Reply(status=500), "HTTP status 500"),
            (Reply(delay=0.6), "no response within 0.3 s"),
            (Reply(body=b"x" * 1000), "larger than 1024 bytes"),
            (Reply(headers={"X-Padding": "p" * 1000}), "larger than 1024 bytes"),
        ],
    )
    async def test_rejected(
        self, http: httpx.AsyncClient, receiver: Receiver, reply: Reply, message: str
    ) -> None:
        receiver.reply = lambda request: reply
        with pytest.raises(WebhookRejected, match=message) as caught:
            await _validator(http).validate(receiver.url)
        assert caught.value.code == "SUB-525"
        assert caught.value.status == 400

    async def test_nobody_listening(self, http: httpx.AsyncClient) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with pytest.raises(WebhookRejected, match="ConnectError") as caught:
            await _validator(http).validate(f"http://127.0.0.1:{port}/hook")
        assert caught.value.code == "SUB-525"

    @pytest.mark.parametrize(
        "address",
        [None, "", "ftp://h/x", "http://", "/relative", "http://u:p@h/x", "http://h/a b",
         "https://" + "h" * 3000],
    )  # fmt: skip
    def test_bad_addresses(self, address: str | None) -> None:
        with pytest.raises(InvalidSubscriptionField) as caught:
            check_address(address)
        assert caught.value.parameter == "deliveryMode.address"


@dataclass
class Blacklists:
    calls: list[tuple[str, str]] = field(default_factory=list)

    async def __call__(self, subscription_id: str, reason: str) -> None:
        self.calls.append((subscription_id, reason))


def _record(address: str, *, token: str | None = "vt", ident: str = "sub-1") -> SubscriptionRecord:
    return SubscriptionRecord(
        id=ident, account_id=1, extension_id=2, client_id="app", event_filters=(),
        transport="WebHook", created_at=0.0, expires_at=1e12, expires_in=60, address=address,
        verification_token=token,
    )  # fmt: skip


@pytest.fixture
async def tasks() -> AsyncIterator[TaskSet]:
    owned = TaskSet("test")
    yield owned
    await owned.close()


def _numbers(received: list[Received]) -> list[int]:
    return [json.loads(r.body)["body"]["n"] for r in received]


class TestDelivery:
    async def test_in_order_with_the_documented_headers(
        self, http: httpx.AsyncClient, receiver: Receiver, tasks: TaskSet
    ) -> None:
        pool = WebhookPool(http=http, guard=GUARD, settings=SETTINGS, tasks=tasks)
        worker = pool.start(_record(receiver.url), on_blacklist=Blacklists())
        for n in range(30):
            worker.deliver(notification({"n": n}))
        received = await receiver.wait_for_deliveries(30)
        assert _numbers(received) == list(range(30))
        headers = received[0].headers
        assert headers["content-type"] == "application/json; charset=UTF-8"
        assert headers["user-agent"] == "RingCentral-Webhook/8.3"
        assert headers["accept"] == "application/json"
        assert headers["validation-token"] == "vt"
        await until(lambda: worker.sent == 30)

    async def test_no_validation_token_without_a_verification_token(
        self, http: httpx.AsyncClient, receiver: Receiver, tasks: TaskSet
    ) -> None:
        pool = WebhookPool(http=http, guard=GUARD, settings=SETTINGS, tasks=tasks)
        pool.start(_record(receiver.url, token=None), on_blacklist=Blacklists()).deliver(
            notification({"n": 1})
        )
        (received,) = await receiver.wait_for_deliveries(1)
        assert "validation-token" not in received.headers

    async def test_retries_after_500_keep_the_order(
        self, http: httpx.AsyncClient, receiver: Receiver, tasks: TaskSet
    ) -> None:
        failures = iter([500, 503])
        receiver.reply = lambda request: Reply(status=next(failures, 200))
        pool = WebhookPool(http=http, guard=GUARD, settings=SETTINGS, tasks=tasks)
        worker = pool.start(_record(receiver.url), on_blacklist=Blacklists())
        worker.deliver(notification({"n": 0}))
        worker.deliver(notification({"n": 1}))
        received = await receiver.wait_for_deliveries(4)
        assert _numbers(received) == [0, 0, 0, 1]
        await until(lambda: worker.sent == 2)
        assert worker.failed_attempts == 2

    async def test_a_timeout_is_a_failed_attempt(
        self, http: httpx.AsyncClient, receiver: Receiver, tasks: TaskSet
    ) -> None:
        slow = iter([0.6])
        receiver.reply = lambda request: Reply(delay=next(slow, 0.0))
        pool = WebhookPool(http=http, guard=GUARD, settings=SETTINGS, tasks=tasks)
        worker = pool.start(_record(receiver.url), on_blacklist=Blacklists())
        worker.deliver(notification({"n": 7}))
        received = await receiver.wait_for_deliveries(2)
        assert _numbers(received) == [7, 7]
        assert worker.failed_attempts == 1

    async def test_blacklisted_after_consecutive_failures(
        self, http: httpx.AsyncClient, receiver: Receiver, tasks: TaskSet
    ) -> None:
        receiver.reply = lambda request: Reply(status=500)
        blacklists = Blacklists()
        pool = WebhookPool(http=http, guard=GUARD, settings=SETTINGS, tasks=tasks)
        worker = pool.start(_record(receiver.url), on_blacklist=blacklists)
        for n in range(5):
            worker.deliver(notification({"n": n}))
        assert worker.task is not None
        await asyncio.wait_for(worker.task, 5)
        assert blacklists.calls == [("sub-1", "WebHook responded with HTTP status 500")]
        assert _numbers(receiver.deliveries) == [0, 0, 0, 0]
        assert pool.stats() == ()
        worker.deliver(notification({"n": 9}))  # after blacklisting: nothing is queued any more
        assert worker.stats().queued == 0

    async def test_unreachable_reason_reads_like_ringcentral(
        self, http: httpx.AsyncClient, tasks: TaskSet
    ) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        blacklists = Blacklists()
        pool = WebhookPool(http=http, guard=GUARD, settings=SETTINGS, tasks=tasks)
        worker = pool.start(_record(f"http://127.0.0.1:{port}/x"), on_blacklist=blacklists)
        worker.deliver(notification({"n": 1}))
        assert worker.task is not None
        await asyncio.wait_for(worker.task, 5)
        assert blacklists.calls[0][1].startswith("I/O operation is failed. Details: [")

    async def test_dead_receiver_does_not_delay_a_healthy_one(
        self, http: httpx.AsyncClient, receiver: Receiver, tasks: TaskSet
    ) -> None:
        patient = SETTINGS.model_copy(update={"webhook_timeout": 5.0})
        async with Receiver(lambda request: Reply(delay=10.0)) as dead:
            pool = WebhookPool(http=http, guard=GUARD, settings=patient, tasks=tasks)
            stuck = pool.start(_record(dead.url, ident="dead"), on_blacklist=Blacklists())
            healthy = pool.start(_record(receiver.url, ident="ok"), on_blacklist=Blacklists())
            started = time.monotonic()
            for n in range(20):
                stuck.deliver(notification({"n": n}))
                healthy.deliver(notification({"n": n}))
            received = await receiver.wait_for_deliveries(20, timeout=2.0)
            assert time.monotonic() - started < 2.0
            assert _numbers(received) == list(range(20))
            assert stuck.sent == 0

    async def test_overflow_drops_for_that_subscriber_only(
        self,
        http: httpx.AsyncClient,
        receiver: Receiver,
        tasks: TaskSet,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        small = SETTINGS.model_copy(update={"webhook_queue_size": 5, "webhook_timeout": 5.0})
        async with Receiver(lambda request: Reply(delay=10.0)) as dead:
            pool = WebhookPool(http=http, guard=GUARD, settings=small, tasks=tasks)
            stuck = pool.start(_record(dead.url, ident="dead"), on_blacklist=Blacklists())
            healthy = pool.start(_record(receiver.url, ident="ok"), on_blacklist=Blacklists())
            with caplog.at_level(logging.WARNING, logger="callwatch.events.bus"):
                for n in range(5):
                    stuck.deliver(notification({"n": n}))
                    healthy.deliver(notification({"n": n}))
                await receiver.wait_for_deliveries(5)
                for n in range(5, 20):
                    stuck.deliver(notification({"n": n}))
            assert stuck.stats().dropped > 0
            assert healthy.stats().dropped == 0
            assert "webhook:dead is full" in caplog.text


def _guard(names: Names | None = None, **settings: object) -> AddressGuard:
    return AddressGuard(AddressPolicy.of(SETTINGS.model_copy(update=settings)), names)


class TestRefusedAddresses:
    """The address policy at creation: refused before anything is sent (400 CMN-101)."""

    @pytest.mark.parametrize(
        "host",
        ["169.254.169.254", "[fe80::1]", "0.0.0.0", "[::]", "[::ffff:169.254.169.254]",
         "2852039166", "224.0.0.1", "[ff02::1]", "[fd00:ec2::254]"],
    )  # fmt: skip
    async def test_never_a_receiver(
        self, http: httpx.AsyncClient, receiver: Receiver, host: str
    ) -> None:
        """0.0.0.0 and :: would reach the receiver on this host: nothing may arrive."""
        with pytest.raises(AddressNotAllowed) as caught:
            await _validator(http).validate(receiver.url_for(host))
        assert caught.value.code == "CMN-101" and caught.value.status == 400
        assert caught.value.parameter == "deliveryMode.address"
        assert caught.value.message == (
            "Parameter [deliveryMode.address] value is invalid: address is not allowed"
        )
        assert receiver.requests == []

    async def test_metadata_path(self, http: httpx.AsyncClient) -> None:
        with pytest.raises(AddressNotAllowed):
            await _validator(http).validate("http://169.254.169.254/latest/meta-data/")

    async def test_a_name_is_checked_by_what_it_resolves_to(
        self, http: httpx.AsyncClient, receiver: Receiver, caplog: pytest.LogCaptureFixture
    ) -> None:
        names = Names({"metadata.test": ["169.254.169.254"], "hooks.test": ["127.0.0.1"]})
        guard = _guard(names)
        async with new_http_client(guard) as client:
            with (
                caplog.at_level(logging.INFO, logger="callwatch.events.webhook"),
                pytest.raises(AddressNotAllowed),
            ):
                await _validator(client, guard).validate("http://metadata.test/x")
            await _validator(client, guard).validate(receiver.url_for("hooks.test"))
        assert "169.254.169.254 is in the denied network" in caplog.text  # the log has why
        assert len(receiver.requests) == 1

    async def test_localhost_outside_the_allow_list(
        self, http: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        """The real system resolver: ``localhost`` is loopback, which the allow-list leaves out."""
        public = _guard(webhook_allowed_networks=["192.0.2.0/24", "2001:db8::/32"])
        async with new_http_client(public) as client:
            with pytest.raises(AddressNotAllowed):
                await _validator(client, public).validate(receiver.url_for("localhost"))
        await _validator(http).validate(receiver.url_for("localhost"))  # the default allows it
        assert len(receiver.requests) == 1

    async def test_allow_list(self, receiver: Receiver) -> None:
        guard = _guard(webhook_allowed_networks=["127.0.0.1/32"])
        async with new_http_client(guard) as client:
            await _validator(client, guard).validate(receiver.url)
            with pytest.raises(AddressNotAllowed):
                await _validator(client, guard).validate(receiver.url_for("127.0.0.2"))
        assert len(receiver.requests) == 1

    async def test_https_required(self, receiver: Receiver) -> None:
        guard = _guard(webhook_require_https=True)
        async with new_http_client(guard) as client:
            with pytest.raises(AddressNotAllowed) as caught:
                await _validator(client, guard).validate(receiver.url)
        assert caught.value.message.endswith("value is invalid: address must use https")
        assert receiver.requests == []

    async def test_rebinding_between_check_and_connection(self, receiver: Receiver) -> None:
        """The check says 127.0.0.1; the connection's own lookup says metadata: refused."""
        names = Names()
        names.queue("rebind.test", ["127.0.0.1"], ["169.254.169.254"])
        guard = _guard(names)
        async with new_http_client(guard) as client:
            with pytest.raises(AddressNotAllowed):
                await _validator(client, guard).validate(receiver.url_for("rebind.test"))
        assert names.lookups == ["rebind.test", "rebind.test"]
        assert receiver.requests == []

    async def test_redirect_is_not_followed(
        self, http: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        async with Receiver() as target:
            receiver.reply = lambda request: Reply(status=302, headers={"Location": target.url})
            with pytest.raises(WebhookRejected, match="HTTP status 302"):
                await _validator(http).validate(receiver.url)
            assert target.requests == []


class TestRefusedAtDelivery:
    """An address refused after creation: failed attempts, never POSTed, then blacklisted."""

    async def test_dns_now_says_metadata(
        self,
        receiver: Receiver,
        tasks: TaskSet,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        names = Names({"hooks.test": ["127.0.0.1"]})
        guard = _guard(names)
        blacklists = Blacklists()
        async with Receiver() as other, new_http_client(guard) as client:
            pool = WebhookPool(http=client, guard=guard, settings=SETTINGS, tasks=tasks)
            moving = pool.start(
                _record(receiver.url_for("hooks.test"), ident="moving"), on_blacklist=blacklists
            )
            steady = pool.start(_record(other.url, ident="steady"), on_blacklist=blacklists)
            moving.deliver(notification({"n": 0}))
            await receiver.wait_for_deliveries(1)
            names.table["hooks.test"] = ["169.254.169.254"]
            with caplog.at_level(logging.WARNING, logger="callwatch.events.webhook"):
                for n in range(1, 4):
                    moving.deliver(notification({"n": n}))
                    steady.deliver(notification({"n": n}))
                assert moving.task is not None
                await asyncio.wait_for(moving.task, 5)
                assert _numbers(await other.wait_for_deliveries(3)) == [1, 2, 3]
        assert _numbers(receiver.deliveries) == [0]  # the pooled connection was not used either
        assert blacklists.calls == [("moving", "WebHook address is not allowed")]
        assert moving.failed_attempts == SETTINGS.webhook_blacklist_after
        refusals = [r for r in caplog.records if "denied network" in r.getMessage()]
        assert len(refusals) == SETTINGS.webhook_blacklist_after  # one line per attempt
        assert "169.254.169.254 is in the denied network 169.254.0.0/16" in refusals[0].message
        assert steady.sent == 3 and steady.failed_attempts == 0

    async def test_rebinding_at_connection_time_is_a_failed_attempt(
        self, receiver: Receiver, tasks: TaskSet
    ) -> None:
        """Only the connection's own lookup sees the denied answer: still refused, and the
        next attempt (a fair answer again) delivers."""
        names = Names({"rebind.test": ["127.0.0.1"]})
        names.queue("rebind.test", ["127.0.0.1"], ["169.254.169.254"])
        guard = _guard(names)
        async with new_http_client(guard) as client:
            pool = WebhookPool(http=client, guard=guard, settings=SETTINGS, tasks=tasks)
            worker = pool.start(_record(receiver.url_for("rebind.test")), on_blacklist=Blacklists())
            worker.deliver(notification({"n": 5}))
            assert _numbers(await receiver.wait_for_deliveries(1)) == [5]
            await until(lambda: worker.sent == 1)
        assert worker.failed_attempts == 1

    async def test_a_redirect_is_a_failed_attempt(self, receiver: Receiver, tasks: TaskSet) -> None:
        blacklists = Blacklists()
        async with Receiver() as target, new_http_client(GUARD) as client:
            receiver.reply = lambda request: Reply(status=307, headers={"Location": target.url})
            pool = WebhookPool(http=client, guard=GUARD, settings=SETTINGS, tasks=tasks)
            worker = pool.start(_record(receiver.url), on_blacklist=blacklists)
            worker.deliver(notification({"n": 1}))
            assert worker.task is not None
            await asyncio.wait_for(worker.task, 5)
            assert target.requests == []
        assert blacklists.calls == [("sub-1", "WebHook responded with HTTP status 307")]
