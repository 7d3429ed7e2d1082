"""The RingCentral error body and headers on every response (ringcentral-api.md §2.12)."""

from __future__ import annotations

import httpx
import pytest

from callwatch.api.errors import ApiError, InvalidParameter, OAuthError, from_validation

from .conftest import LiveServer
from .helpers import assert_error

RATE_HEADERS = ("X-Rate-Limit-Group", "X-Rate-Limit-Limit", "X-Rate-Limit-Remaining")


def _all_kinds_of_responses(server: LiveServer) -> list[httpx.Response]:
    client = server.client()
    auth = server.auth()
    device = server.tenant.user("101").devices[0]
    return [
        client.get("/restapi/v1.0/account/~/extension", headers=auth),
        client.get("/restapi/v1.0/account/~/extension/~", headers=auth),
        client.get("/restapi/v1.0/account/~/extension/~/device", headers=auth),
        client.get(f"/restapi/v1.0/account/~/device/{device.id}", headers=auth),
        client.get(f"/restapi/v1.0/account/~/device/{device.id}/sip-info", headers=auth),
        client.post("/restapi/v1.0/client-info/sip-provision", headers=auth),
        client.get("/restapi/v1.0/account/~", headers=auth),
        client.get("/restapi/v1.0/account/~/extension/999", headers=auth),
        client.get("/restapi/v1.0/account/~/extension"),
        client.get("/restapi/v1.0/nowhere", headers=auth),
        client.post("/restapi/oauth/token", data={"grant_type": "password"}),
        client.post("/restapi/oauth/token", json={}),
    ]


def test_every_json_response_has_content_type_and_rate_headers(server: LiveServer) -> None:
    for response in _all_kinds_of_responses(server):
        assert response.headers["content-type"] == "application/json", response.url
        for header in RATE_HEADERS:
            assert header in response.headers, (response.url, header)
        if response.status_code >= 400:
            body = response.json()
            assert {"errorCode", "message", "errors"} <= body.keys()
            assert body["errors"][0]["errorCode"] == body["errorCode"]


def test_unknown_route_is_cmn_120(server: LiveServer) -> None:
    assert_error(server.client().get("/restapi/v1.0/unknown"), 404, "CMN-120")


def test_wrong_method_is_405(server: LiveServer) -> None:
    response = server.client().delete("/restapi/oauth/token")
    assert_error(response, 405, "CMN-120")


def test_internal_errors_do_not_leak(server: LiveServer) -> None:
    server.devices.broken = True
    response = server.client().get(
        "/restapi/v1.0/account/~/extension/~/device", headers=server.auth()
    )
    assert_error(response, 500, "CMN-203")
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    assert "X-Rate-Limit-Group" in response.headers


def test_openapi_is_served(server: LiveServer) -> None:
    client = server.client()
    spec = client.get("/openapi.json").json()
    assert "/restapi/oauth/token" in spec["paths"]
    assert "/restapi/v1.0/client-info/sip-provision" in spec["paths"]
    assert client.get("/docs").status_code == 200


class TestBodies:
    def test_parameter_name_is_repeated_at_top_level(self) -> None:
        body = InvalidParameter("perPage").body()
        assert body == {
            "errorCode": "CMN-101",
            "message": "Parameter [perPage] value is invalid",
            "parameterName": "perPage",
            "errors": [
                {
                    "errorCode": "CMN-101",
                    "message": "Parameter [perPage] value is invalid",
                    "parameterName": "perPage",
                }
            ],
        }

    def test_oauth_errors_add_rfc6749_fields(self) -> None:
        body = OAuthError("invalid_grant", "OAU-140", "Invalid resource owner credentials").body()
        assert body["error"] == "invalid_grant"
        assert body["error_description"] == "Invalid resource owner credentials"
        assert body["errorCode"] == "OAU-140"

    @pytest.mark.parametrize(
        ("errors", "code", "parameter"),
        [
            ([{"type": "json_invalid", "loc": ("body", 3)}], "CMN-103", None),
            ([{"type": "missing", "loc": ("query", "page")}], "CMN-101", "page"),
            ([{"type": "enum", "loc": ("body", "sipInfo", 0, "transport")}], "CMN-101",
             "sipInfo[0].transport"),
            ([{"type": "model_type", "loc": ("body",)}], "CMN-101", "body"),
            ([], "CMN-101", "body"),
        ],
    )  # fmt: skip
    def test_validation_mapping(
        self, errors: list[dict[str, object]], code: str, parameter: str | None
    ) -> None:
        error: ApiError = from_validation(errors)
        assert error.error_code == code
        assert error.attributes.get("parameterName") == parameter
