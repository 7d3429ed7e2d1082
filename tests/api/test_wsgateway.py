"""The WebSocket gateway with the ``websockets`` client (ringcentral-api.md §2.3, §4): wstoken,
ConnectionDetails, ClientRequests over both create paths, notifications, heartbeats, bad input,
timeouts, and session recovery within and after the window."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from callwatch.ids import IdGenerator
from callwatch.store.tenants import create_app as create_oauth_app

from ..events.live import FAST, Live, Socket, live_server
from .helpers import assert_error

PREFIX = "/restapi/v1.0/account/~"
SUBSCRIPTION = "/restapi/v1.0/subscription"
WEBSOCKET = {"transportType": "WebSocket"}


@pytest.fixture
async def live(template_db: Path, tmp_path: Path) -> AsyncIterator[Live]:
    async with live_server(template_db, tmp_path) as server:
        yield server


def agent_filter(live: Live, query: str = "") -> str:
    return f"{PREFIX}/extension/{live.extension('108').id}/telephony/sessions{query}"


async def connect_and_subscribe(
    live: Live, ws: Socket, path: str = f"{SUBSCRIPTION}/"
) -> tuple[list[Any], list[Any]]:
    """ConnectionDetails, then the reply to a create for the agent's sessions."""
    details = await ws.receive()
    reply = await ws.request(
        "POST", path, {"eventFilters": [agent_filter(live)], "deliveryMode": WEBSOCKET}
    )
    return details, reply


async def notifications(ws: Socket, count: int) -> list[list[Any]]:
    frames = [await ws.receive() for _ in range(count)]
    assert all(frame[0]["type"] == "ServerNotification" for frame in frames), frames
    return frames


async def assert_closed_after_error(ws: Socket, code: str) -> dict[str, Any]:
    frame = await ws.receive()
    assert frame[0]["type"] == "Error"
    assert frame[1]["errorCode"] == code
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await ws.receive()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    body: dict[str, Any] = frame[1]
    return body


class TestToken:
    async def test_empty_json_post(self, live: Live) -> None:
        response = await live.client.post(
            "/restapi/oauth/wstoken",
            headers={**(await live.auth()), "Content-Type": "application/json"},
            content=b"",
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"ws_access_token", "uri", "expires_in"}
        assert body["uri"] == f"{live.url.replace('http://', 'ws://')}/ws"
        assert "?" not in body["uri"]
        assert body["expires_in"] == FAST.ws_token_ttl

    async def test_public_url(self, template_db: Path, tmp_path: Path) -> None:
        async with live_server(template_db, tmp_path, public_url="https://cw.example/p/") as live:
            response = await live.client.post("/restapi/oauth/wstoken", headers=await live.auth())
            assert response.json()["uri"] == "wss://cw.example/p/ws"

    async def test_needs_the_websocket_permission(self, live: Live) -> None:
        created = create_oauth_app(
            live.store, ids=IdGenerator(), name="no ws", scopes=("ReadAccounts",)
        )
        token = await live.client.post(
            "/restapi/oauth/token",
            data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                  "assertion": live.tenant.user("101").jwt},
            auth=(created.app.client_id, created.client_secret),
        )  # fmt: skip
        response = await live.client.post(
            "/restapi/oauth/wstoken",
            headers={"Authorization": f"bearer {token.json()['access_token']}"},
        )
        assert assert_error(response, 403, "CMN-401")["permissionName"] == "WebSocket"

    async def test_needs_a_bearer_token(self, live: Live) -> None:
        assert_error(await live.client.post("/restapi/oauth/wstoken"), 401, "OAU-123")


class TestConnection:
    async def test_connection_details_come_first(self, live: Live) -> None:
        async with Socket.open(await live.ws_url()) as ws:
            meta, body = await ws.receive()
        assert meta["type"] == "ConnectionDetails"
        assert meta["status"] == 200
        assert meta["wsc"]["sequence"] == 1
        assert meta["wsc"]["token"].endswith(".1")
        assert "RCRequestId" in meta["headers"]
        assert body == {
            "creationTime": "2026-01-01T00:00:00.000Z", "maxConnectionsPerSession": 50,
            "recoveryBufferSize": 100, "recoveryTimeout": 180, "idleTimeout": 1800,
            "absoluteTimeout": 86400, "maxActiveRequests": 10,
        }  # fmt: skip

    @pytest.mark.parametrize(
        ("query", "code"),
        [("", "OAU-123"), ("?access_token=nope", "OAU-129")],
    )
    async def test_bad_token_is_an_error_frame_then_close(
        self, live: Live, query: str, code: str
    ) -> None:
        url = live.url.replace("http://", "ws://") + "/ws" + query
        async with Socket.open(url) as ws:
            await assert_closed_after_error(ws, code)

    async def test_token_is_single_use(self, live: Live) -> None:
        url = await live.ws_url()
        async with Socket.open(url) as ws:
            assert (await ws.receive())[0]["type"] == "ConnectionDetails"
        async with Socket.open(url) as ws:
            await assert_closed_after_error(ws, "OAU-129")

    async def test_heartbeat_is_echoed(self, live: Live) -> None:
        async with Socket.open(await live.ws_url()) as ws:
            await ws.receive()
            await ws.send([{"type": "Heartbeat", "messageId": "beat-1"}])
            reply = await ws.receive()
        assert reply == [{"type": "Heartbeat", "messageId": "beat-1", "status": 200,
                          "headers": {}}]  # fmt: skip

    @pytest.mark.parametrize(
        "garbage", ["not-json", "{}", "[]", '[{"type":"Nope","messageId":"x"}]', b"\x01\x02"]
    )
    async def test_malformed_frame_then_still_usable(self, live: Live, garbage: Any) -> None:
        async with Socket.open(await live.ws_url()) as ws:
            await ws.receive()
            await ws.connection.send(garbage)
            error = await ws.receive()
            assert error[0]["type"] == "Error"
            assert error[0]["status"] == 400
            assert error[1]["errorCode"] == "WSG-808"
            reply = await ws.request(
                "POST", SUBSCRIPTION, {"eventFilters": [agent_filter(live)],
                                       "deliveryMode": WEBSOCKET},
            )  # fmt: skip
            assert reply[0]["status"] == 200

    @pytest.mark.parametrize(
        ("method", "path", "status", "code"),
        [("GET", "/restapi/v1.0/account/~/extension/~", 404, "CMN-120"),
         ("PATCH", SUBSCRIPTION, 405, "CMN-120"),
         ("GET", f"{SUBSCRIPTION}/unknown-id", 404, "CMN-102"),
         ("DELETE", f"{SUBSCRIPTION}/unknown-id", 404, "CMN-102")],
    )  # fmt: skip
    async def test_error_replies(
        self, live: Live, method: str, path: str, status: int, code: str
    ) -> None:
        async with Socket.open(await live.ws_url()) as ws:
            await ws.receive()
            reply = await ws.request(method, path, message_id="odd-1")
            assert reply[0]["type"] == "ClientRequest"
            assert (reply[0]["messageId"], reply[0]["status"]) == ("odd-1", status)
            assert reply[0]["headers"]["Content-Type"] == "application/json"
            assert reply[1]["errorCode"] == code
            await ws.send([{"type": "Heartbeat", "messageId": "still-there"}])
            assert (await ws.receive())[0]["messageId"] == "still-there"


class TestSubscriptions:
    @pytest.mark.parametrize("path", [SUBSCRIPTION, f"{SUBSCRIPTION}/"])
    async def test_create_and_receive(self, live: Live, path: str) -> None:
        async with Socket.open(await live.ws_url()) as ws:
            _, (meta, info) = await connect_and_subscribe(live, ws, path)
            assert meta["type"] == "ClientRequest"
            assert (meta["messageId"], meta["status"]) == ("m-1", 200)
            assert meta["headers"]["WSG-SubscriptionId"] == info["id"]
            assert meta["headers"]["Content-Type"] == "application/json"
            assert info["uri"] == f"{SUBSCRIPTION}/{info['id']}"
            assert info["deliveryMode"] == {"transportType": "WebSocket", "encryption": False}
            assert info["status"] == "Active"
            live.calls.full_call(customer="+15550001111", agent=live.extension("108"))
            frames = await notifications(ws, 4)
        metas = [frame[0] for frame in frames]
        assert [m["wsc"]["sequence"] for m in metas] == [2, 3, 4, 5]
        for meta, envelope in frames:
            assert meta["messageId"] == envelope["uuid"]
            assert envelope["subscriptionId"] == info["id"]
            assert envelope["event"] == info["eventFilters"][0]
        statuses = [env["body"]["parties"][0]["status"]["code"] for _, env in frames]
        assert statuses == ["Setup", "Proceeding", "Answered", "Disconnected"]

    async def test_invalid_requests_get_error_replies(self, live: Live) -> None:
        async with Socket.open(await live.ws_url()) as ws:
            await ws.receive()
            bad_filter = await ws.request(
                "POST", SUBSCRIPTION, {"eventFilters": ["/nope"], "deliveryMode": WEBSOCKET}
            )
            assert (bad_filter[0]["status"], bad_filter[1]["errorCode"]) == (400, "SUB-508")
            assert "WSG-SubscriptionId" not in bad_filter[0]["headers"]
            no_filters = await ws.request("POST", SUBSCRIPTION, {"deliveryMode": WEBSOCKET})
            assert no_filters[1]["errorCode"] == "CMN-101"
            no_body = await ws.request("POST", SUBSCRIPTION)
            assert no_body[0]["status"] == 400
            webhook = await ws.request(
                "POST", SUBSCRIPTION,
                {"eventFilters": [agent_filter(live)],
                 "deliveryMode": {"transportType": "WebHook"}},
            )  # fmt: skip
            assert webhook[1]["parameterName"] == "deliveryMode.transportType"
            forbidden = await ws.request(
                "POST", SUBSCRIPTION,
                {"eventFilters": ["/restapi/v1.0/account/1/presence"], "deliveryMode": WEBSOCKET},
            )  # fmt: skip
            assert (forbidden[0]["status"], forbidden[1]["errorCode"]) == (403, "SUB-406")

    async def test_second_create_replaces_the_first(self, live: Live) -> None:
        async with Socket.open(await live.ws_url()) as ws:
            _, (_, first) = await connect_and_subscribe(live, ws)
            _, second = await ws.request(
                "POST", SUBSCRIPTION,
                {"eventFilters": [agent_filter(live, "?statusCode=Answered")],
                 "deliveryMode": WEBSOCKET},
            )  # fmt: skip
            live.calls.full_call(customer="+15550001111", agent=live.extension("108"))
            (frame,) = await notifications(ws, 1)
            assert frame[1]["subscriptionId"] == second["id"]
            gone = await ws.request("GET", f"{SUBSCRIPTION}/{first['id']}")
            assert gone[0]["status"] == 404
            listing = await live.client.get(SUBSCRIPTION, headers=await live.auth())
            assert [r["id"] for r in listing.json()["records"]] == [second["id"]]

    async def test_update_read_renew_and_delete(self, live: Live) -> None:
        async with Socket.open(await live.ws_url()) as ws:
            _, (_, info) = await connect_and_subscribe(live, ws)
            uri = f"{SUBSCRIPTION}/{info['id']}"
            updated = await ws.request(
                "PUT", uri, {"eventFilters": [agent_filter(live, "?statusCode=Disconnected")],
                             "deliveryMode": WEBSOCKET}, message_id="put-1",
            )  # fmt: skip
            assert updated[0]["messageId"] == "put-1"
            assert updated[0]["headers"]["WSG-SubscriptionId"] == info["id"]
            assert updated[1]["eventFilters"][0].endswith("?statusCode=Disconnected")
            assert (await ws.request("GET", uri))[1]["id"] == info["id"]
            assert (await ws.request("POST", f"{uri}/renew"))[0]["status"] == 200
            rest_put = await live.client.put(uri, headers=await live.auth(), json={})
            assert_error(rest_put, 400, "CMN-101")
            live.calls.full_call(customer="+15550001111", agent=live.extension("108"))
            (frame,) = await notifications(ws, 1)
            assert frame[1]["body"]["parties"][0]["status"]["code"] == "Disconnected"
            deleted = await ws.request("DELETE", uri, message_id="del-1")
            assert len(deleted) == 1
            assert (deleted[0]["messageId"], deleted[0]["status"]) == ("del-1", 204)
            live.calls.full_call(customer="+15550001111", agent=live.extension("108"), tag="b")
            await ws.send([{"type": "Heartbeat", "messageId": "after-delete"}])
            assert (await ws.receive())[0]["type"] == "Heartbeat"  # no notification came first


class TestTimeouts:
    @pytest.mark.parametrize(
        ("settings", "code"),
        [({"ws_idle_timeout": 0.2}, "WSG-902"), ({"ws_absolute_timeout": 0.3}, "WSG-903")],
    )
    async def test_announced_then_closed(
        self, template_db: Path, tmp_path: Path, settings: dict[str, float], code: str
    ) -> None:
        events = FAST.model_copy(update=settings)
        async with live_server(template_db, tmp_path, events=events) as live:
            await self._expect(live, code)

    @staticmethod
    async def _expect(live: Live, code: str) -> None:
        async with Socket.open(await live.ws_url()) as ws:
            await ws.receive()
            if code == "WSG-903":  # stay active: only the absolute timeout may fire
                for n in range(4):
                    await ws.send([{"type": "Heartbeat", "messageId": str(n)}])
                    await ws.receive()
                    await asyncio.sleep(0.05)
            error = await ws.receive(timeout=2)
            assert error[0]["type"] == "Error"
            assert error[1]["errorCode"] == code
            with pytest.raises(websockets.ConnectionClosedOK):
                await ws.receive()


class TestRecovery:
    async def test_within_the_window_replays_missed_in_order(self, live: Live) -> None:
        agent = live.extension("108")
        async with Socket.open(await live.ws_url()) as ws:
            _, (_, info) = await connect_and_subscribe(live, ws)
            live.calls.start(customer="+15550001111", agent=agent)
            frames = await notifications(ws, 2)  # Setup, Proceeding
            wsc = frames[-1][0]["wsc"]
        session = live.calls.start(customer="+15550002222", agent=agent, tag="b")
        live.calls.hang_up(live.calls.answer(session))  # 4 missed while disconnected
        async with Socket.open(await live.ws_url(wsc=wsc["token"])) as ws:
            details = await ws.receive()
            assert details[0]["type"] == "ConnectionDetails"
            assert details[1]["recoveryState"] == "Successful"
            assert details[0]["wsc"]["sequence"] == wsc["sequence"]
            replayed = await notifications(ws, 4)
            assert [f[0]["wsc"]["sequence"] for f in replayed] == [4, 5, 6, 7]
            codes = [f[1]["body"]["parties"][0]["status"]["code"] for f in replayed]
            assert codes == ["Setup", "Proceeding", "Answered", "Disconnected"]
            assert {f[1]["subscriptionId"] for f in replayed} == {info["id"]}
            live.calls.start(customer="+15550003333", agent=agent, tag="c")
            later = await notifications(ws, 2)
            assert [f[0]["wsc"]["sequence"] for f in later] == [8, 9]

    async def test_after_the_window_fails_with_a_fresh_session(
        self, template_db: Path, tmp_path: Path
    ) -> None:
        events = FAST.model_copy(update={"ws_recovery_timeout": 0.2})
        async with live_server(template_db, tmp_path, events=events) as live:
            async with Socket.open(await live.ws_url()) as ws:
                details, _ = await connect_and_subscribe(live, ws)
            await asyncio.sleep(0.4)
            assert live.notifications.stats().subscriptions == 0
            async with Socket.open(await live.ws_url(wsc=details[0]["wsc"]["token"])) as ws:
                meta, body = await ws.receive()
                assert (body["recoveryState"], body["recoveryErrorCode"]) == (
                    "Failed", "WSG-1001"
                )  # fmt: skip
                assert meta["wsc"]["sequence"] == 1
                assert meta["wsc"]["token"] != details[0]["wsc"]["token"]
                _, info = await ws.request(
                    "POST", SUBSCRIPTION, {"eventFilters": [agent_filter(live)],
                                           "deliveryMode": WEBSOCKET},
                )  # fmt: skip
                live.calls.start(customer="+15550001111", agent=live.extension("108"))
                (frame, _) = await notifications(ws, 2)
                assert frame[1]["subscriptionId"] == info["id"]

    async def test_another_oauth_session_cannot_recover(self, live: Live) -> None:
        async with Socket.open(await live.ws_url()) as ws:
            details, _ = await connect_and_subscribe(live, ws)
        live.tokens.clear()  # log in again: a new OAuth session
        async with Socket.open(await live.ws_url(wsc=details[0]["wsc"]["token"])) as ws:
            body = (await ws.receive())[1]
        assert (body["recoveryState"], body["recoveryErrorCode"]) == ("Failed", "WSG-1003")

    async def test_malformed_wsc_is_refused(self, live: Live) -> None:
        async with Socket.open(await live.ws_url(wsc="forged")) as ws:
            body = await assert_closed_after_error(ws, "WSG-400")
        assert body["message"] == "Malformed WebSocket session context token"

    async def test_recovering_takes_over_a_half_open_socket(self, live: Live) -> None:
        async with Socket.open(await live.ws_url()) as old:
            details, _ = await connect_and_subscribe(live, old)
            async with Socket.open(await live.ws_url(wsc=details[0]["wsc"]["token"])) as new:
                assert (await new.receive())[1]["recoveryState"] == "Successful"
                with pytest.raises(websockets.ConnectionClosedOK):
                    await old.receive()
                live.calls.start(customer="+15550001111", agent=live.extension("108"))
                assert len(await notifications(new, 2)) == 2
