"""The official RingCentral Python SDK (``ringcentral`` 0.9.2), unmodified, receives telephony
session notifications from a real callwatch server over the WebSocket gateway.

The server is the real composition root (:class:`callwatch.app.CallwatchServer`) running in its
own thread and event loop: the SDK's REST calls are synchronous (``requests``) and would
otherwise block the loop serving them. The SDK's WebSocket client runs in the test's own loop.
The call is driven through the pbx's real publish path, ``PbxService.on_session``, on the
server's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from ringcentral import SDK
from ringcentral.websocket import WebSocketEvents

from callwatch.app import CallwatchServer, provision_demo, server_url
from callwatch.pbx.events import PartyStatusChanged
from callwatch.pbx.sessions import TelephonySession
from callwatch.store.provisioning import DemoTenant

from ..events.calls import CallScript
from .conftest import make_settings

TIMEOUT = 10.0


class ServerThread:
    """A CallwatchServer on its own loop in a background thread."""

    def __init__(self, data_dir: Path) -> None:
        self.settings = make_settings(data_dir)
        self.server = CallwatchServer(self.settings)
        self.tenant: DemoTenant = provision_demo(self.server.store, self.settings, self.server.ids)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.url = ""

    def __enter__(self) -> ServerThread:
        self._thread.start()
        ports = self.run(self.server.start())
        self.url = server_url(self.settings, ports)
        return self

    def __exit__(self, *exc: object) -> None:
        self.run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(TIMEOUT)
        self.loop.close()
        self.server.store.close()

    def run(self, coro: Any) -> Any:
        """Run a coroutine on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(TIMEOUT)

    def on_session(self, session: TelephonySession, events: list[PartyStatusChanged]) -> None:
        """The pbx's publish path, called on the server's loop."""
        done: Future[None] = Future()

        def publish() -> None:
            self.server.pbx.on_session(session, events)
            done.set_result(None)

        self.loop.call_soon_threadsafe(publish)
        done.result(TIMEOUT)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[ServerThread]:
    with ServerThread(tmp_path) as server:
        yield server


async def test_sdk_receives_a_call_over_the_websocket_gateway(running: ServerThread) -> None:
    tenant = running.tenant
    sdk = SDK(tenant.client_id, tenant.client_secret, running.url)
    sdk.platform().login(jwt=tenant.user("101").jwt)
    agent = tenant.user("108").extension
    event_filter = f"/restapi/v1.0/account/~/extension/{agent.id}/telephony/sessions"

    client = sdk.create_web_socket_client()
    created: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    notifications: list[list[Any]] = []
    four = asyncio.Event()

    def on_created(subscription: Any) -> None:
        if not created.done():
            created.set_result(subscription)

    def on_notification(message: list[Any]) -> None:
        notifications.append(message)
        if len(notifications) == 4:
            four.set()

    client.on(WebSocketEvents.subscriptionCreated, on_created)
    client.on(WebSocketEvents.receiveSubscriptionNotification, on_notification)
    connection = asyncio.create_task(client.create_new_connection())
    try:
        await asyncio.wait_for(client.create_subscription([event_filter]), TIMEOUT)
        subscription = await asyncio.wait_for(created, TIMEOUT)
        info = subscription.get_subscription_info()
        assert info[0]["type"] == "ClientRequest"
        subscription_id = info[1]["id"]
        assert info[0]["headers"]["WSG-SubscriptionId"] == subscription_id
        assert info[1]["deliveryMode"]["transportType"] == "WebSocket"

        script = CallScript(
            publish=lambda event: None,
            clock=running.server.clock,
            on_session=running.on_session,
        )
        session = await asyncio.to_thread(script.full_call, customer="+15550001111", agent=agent)
        await asyncio.wait_for(four.wait(), TIMEOUT)
    finally:
        await _close(client, connection)

    for meta, envelope in notifications:
        assert meta["type"] == "ServerNotification"
        assert envelope["subscriptionId"] == subscription_id
        assert envelope["body"]["telephonySessionId"] == session.id
        assert [p["extensionId"] for p in envelope["body"]["parties"]] == [str(agent.id)]
    statuses = [env["body"]["parties"][0]["status"]["code"] for _, env in notifications]
    assert statuses == ["Setup", "Proceeding", "Answered", "Disconnected"]
    sequences = [env["body"]["sequence"] for _, env in notifications]
    assert sequences == sorted(sequences)


async def _close(client: Any, connection: asyncio.Task[Any]) -> None:
    """Close the SDK's socket, end its receive loop and its 10-minute heartbeat task."""
    with contextlib.suppress(Exception):
        await client.close_connection()
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(connection, TIMEOUT)
    for task in asyncio.all_tasks():
        if task.get_coro().__qualname__.endswith("timer_function"):  # type: ignore[union-attr]
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
