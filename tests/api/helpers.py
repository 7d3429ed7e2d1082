"""Assertions shared by the API tests."""

from __future__ import annotations

import httpx


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    """Check the RingCentral error body shape and return it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, object] = response.json()
    assert body["errorCode"] == code
    assert isinstance(body["message"], str) and body["message"]
    errors = body["errors"]
    assert isinstance(errors, list) and errors
    assert errors[0]["errorCode"] == code
    assert errors[0]["message"] == body["message"]
    if "parameterName" in body:
        assert errors[0]["parameterName"] == body["parameterName"]
    return body
