"""WebhookFeed against a real callwatch REST server: deliveries, renewal, a subscription lost
behind its back, duplicates, and clean-up (ringcentral-api.md §3.5)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from callwatch.client.api_errors import NotFound
from callwatch.client.webhook_feed import WebhookFeed
from tests.api import conftest as api_conftest
from tests.events.live import Live, live_server

from .test_rest import CUSTOMER
from .test_subscriptions import agent_filter, codes, login, take, until

template_db = api_conftest.template_db


@pytest.fixture
async def live(template_db: Path, tmp_path: Path) -> AsyncIterator[Live]:
    async with live_server(template_db, tmp_path) as server:
        yield server


async def test_a_call_arrives_once_and_close_deletes_the_subscription(live: Live) -> None:
    agent = live.extension("108")
    async with await login(live) as rest:
        async with WebhookFeed(rest, [agent_filter(agent.id)]) as feed:
            assert feed.subscription is not None
            subscription = feed.subscription
            assert subscription.info["deliveryMode"]["address"] == feed.address
            live.calls.full_call(customer=CUSTOMER, agent=agent)
            envelopes = await take(feed, 4)
            assert codes(envelopes) == ["Setup", "Proceeding", "Answered", "Disconnected"]
            # a retried delivery repeats the envelope: it is passed on once
            async with httpx.AsyncClient() as client:
                headers = {"Validation-Token": feed.verification_token}
                again = await client.post(feed.address, json=envelopes[0], headers=headers)
                assert again.status_code == 200
                stale = {**envelopes[1], "uuid": "other", "subscriptionId": "someone-else"}
                await client.post(feed.address, json=stale, headers=headers)
            live.calls.full_call(customer=CUSTOMER, agent=agent, tag="b")
            after = await take(feed, 1)
            assert codes(after) == ["Setup"] and after[0]["uuid"] != envelopes[0]["uuid"]
            assert (feed.stats.duplicates, feed.stats.stale) == (1, 1)
        with pytest.raises(NotFound):
            await subscription.read()


async def test_it_renews_before_expiry(live: Live) -> None:
    agent = live.extension("108")
    async with (
        await login(live) as rest,
        WebhookFeed(
            rest, [agent_filter(agent.id)], expires_in=600, renew_margin=601, check_interval=0.05
        ) as feed,
    ):
        await until(lambda: feed.stats.renewals >= 2)
        assert feed.subscription is not None
        info = await feed.subscription.read()
        assert info["status"] == "Active" and feed.stats.recreations == 0


async def test_a_subscription_lost_by_the_server_is_created_again(live: Live) -> None:
    agent = live.extension("108")
    resets: list[bool] = []
    async with (
        await login(live) as rest,
        WebhookFeed(
            rest, [agent_filter(agent.id)], check_interval=0.05, on_reset=resets.append
        ) as feed,
    ):
        assert feed.subscription is not None
        first = feed.subscription.id
        await rest.delete(f"/restapi/v1.0/subscription/{first}")  # e.g. an admin, or expiry
        await until(lambda: feed.stats.recreations == 1)
        assert feed.subscription.id != first and resets == [False]
        live.calls.full_call(customer=CUSTOMER, agent=agent)
        envelopes = await take(feed, 4)
        assert {e["subscriptionId"] for e in envelopes} == {feed.subscription.id}
        await asyncio.sleep(0.2)
        assert feed.stats.recreations == 1  # the new one is healthy: left alone
