"""callwatch.events.wsframes: client frames parse or fail cleanly; server frames are arrays."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwatch.events import wsframes
from callwatch.events.wsframes import (
    ClientRequest,
    FrameError,
    Heartbeat,
    Wsc,
    parse_client_frame,
)

from .calls import notification


def _dumps(value: object) -> str:
    return json.dumps(value)


class TestParse:
    def test_client_request_with_body(self) -> None:
        frame = parse_client_frame(
            _dumps([
                {"type": "ClientRequest", "messageId": "m1", "method": "post",
                 "path": "/restapi/v1.0/subscription/?x=1"},
                {"eventFilters": ["/a"]},
            ])
        )  # fmt: skip
        assert frame == ClientRequest(
            message_id="m1", method="POST", path="/restapi/v1.0/subscription/",
            body={"eventFilters": ["/a"]},
        )  # fmt: skip

    def test_client_request_without_body_or_with_null(self) -> None:
        meta = {"type": "ClientRequest", "messageId": "m", "method": "DELETE", "path": "/x"}
        assert parse_client_frame(_dumps([meta])) == parse_client_frame(_dumps([meta, None]))

    def test_heartbeat(self) -> None:
        assert parse_client_frame('[{"type":"Heartbeat","messageId":"h"}]') == Heartbeat(
            message_id="h"
        )

    @pytest.mark.parametrize(
        ("text", "message", "message_id"),
        [
            ("not-json", "not valid JSON", None),
            ("{}", "JSON array", None),
            ("[]", "JSON array", None),
            ("[1, 2, 3]", "JSON array", None),
            ("[1]", "meta must be a JSON object", None),
            ('[{"type":"Heartbeat"}]', "messageId", None),
            ('[{"type":"Heartbeat","messageId":""}]', "messageId", None),
            ('[{"type":"ServerNotification","messageId":"s"}]', "Unsupported message type", "s"),
            ('[{"type":"ClientRequest","messageId":"c","path":"/x"}]', "method", "c"),
            ('[{"type":"ClientRequest","messageId":"c","method":"GET"}]', "path", "c"),
            ('[{"type":"ClientRequest","messageId":"c","method":"GET","path":"x"}]', "path", "c"),
            ("[" * 100_000 + "]" * 100_000, "larger than", None),
        ],
    )
    def test_malformed(self, text: str, message: str, message_id: str | None) -> None:
        with pytest.raises(FrameError, match=message) as caught:
            parse_client_frame(text)
        assert caught.value.message_id == message_id

    def test_deep_nesting_is_a_frame_error(self) -> None:
        with pytest.raises(FrameError):
            parse_client_frame("[" * 30_000 + "]" * 30_000)

    @given(st.text(max_size=200))
    @settings(max_examples=300)
    def test_any_text_parses_or_raises_frame_error(self, text: str) -> None:
        with contextlib.suppress(FrameError):
            parse_client_frame(text)

    @given(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(
                    st.sampled_from(["type", "messageId", "method", "path", "x"]), inner, max_size=4
                )
            ),
            max_leaves=12,
        )
    )
    @settings(max_examples=300)
    def test_any_json_parses_or_raises_frame_error(self, value: object) -> None:
        with contextlib.suppress(FrameError):
            parse_client_frame(json.dumps(value))


def _array(text: str) -> list[object]:
    value = json.loads(text)
    assert isinstance(value, list) and value and isinstance(value[0], dict)
    assert isinstance(value[0]["headers"], dict)
    return value


class TestBuild:
    def test_connection_details(self) -> None:
        frame = _array(
            wsframes.connection_details(
                message_id="m", request_id="r", wsc=Wsc(token="t.1", sequence=1),
                details={"recoveryTimeout": 180},
            )
        )  # fmt: skip
        assert frame == [
            {"type": "ConnectionDetails", "messageId": "m", "status": 200,
             "headers": {"RCRequestId": "r"}, "wsc": {"token": "t.1", "sequence": 1}},
            {"recoveryTimeout": 180},
        ]  # fmt: skip

    def test_client_reply_with_and_without_body(self) -> None:
        with_body = _array(
            wsframes.client_reply(message_id="m", status=200, headers={"A": "b"}, body={"id": 1})
        )
        assert with_body[1] == {"id": 1}
        assert with_body[0] == {
            "type": "ClientRequest", "messageId": "m", "status": 200, "headers": {"A": "b"}
        }  # fmt: skip
        assert len(_array(wsframes.client_reply(message_id="m", status=204, headers={}))) == 1

    def test_server_notification_uses_the_envelope_uuid(self) -> None:
        frame = _array(
            wsframes.server_notification(
                wsc=Wsc(token="k.5", sequence=5), notification=notification({}, uuid="42")
            )
        )
        meta = frame[0]
        assert isinstance(meta, dict)
        assert (meta["type"], meta["messageId"], meta["status"]) == (
            "ServerNotification",
            "42",
            200,
        )
        assert meta["wsc"] == {"token": "k.5", "sequence": 5}
        assert frame[1] == notification({}, uuid="42").to_dict()

    def test_heartbeat_and_error(self) -> None:
        assert _array(wsframes.heartbeat("h"))[0]["type"] == "Heartbeat"  # type: ignore[index]
        error = _array(wsframes.error(message_id="e", status=400, code="WSG-808", message="bad"))
        assert error[1] == {"errorCode": "WSG-808", "message": "bad"}
