"""Rate limits per (user, app) and group (ringcentral-api.md §2.12)."""

from __future__ import annotations

from callwatch.api.ratelimit import RateGroup, RateLimiter
from callwatch.clock import FakeClock

from .conftest import LiveServer, StartServer
from .helpers import assert_error

ME = "/restapi/v1.0/account/~/extension/~"
SMALL = {"Light": 2, "Medium": 3, "Heavy": 1, "Auth": 3}


def _limited(start_server: StartServer) -> LiveServer:
    return start_server(rate_limits=SMALL, rate_window=60, rate_penalty=30)


class TestLimiter:
    def test_window_and_penalty(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(limits={"Light": 2}, window=60, penalty=30, clock=clock)
        first = limiter.hit("u", RateGroup.LIGHT)
        assert (first.allowed, first.remaining, first.limit) == (True, 1, 2)
        assert limiter.hit("u", RateGroup.LIGHT).remaining == 0
        refused = limiter.hit("u", RateGroup.LIGHT)
        assert refused.retry_after == 30
        assert refused.headers()["Retry-After"] == "30"
        assert limiter.hit("other", RateGroup.LIGHT).allowed
        assert limiter.hit("u", RateGroup.HEAVY).allowed
        clock.advance(61)
        assert limiter.hit("u", RateGroup.LIGHT).allowed

    def test_penalty_restarts_on_every_refusal(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(limits={"Auth": 1}, window=10, penalty=30, clock=clock)
        limiter.hit("u", RateGroup.AUTH)
        assert not limiter.hit("u", RateGroup.AUTH).allowed
        clock.advance(25)
        assert not limiter.hit("u", RateGroup.AUTH).allowed
        clock.advance(25)
        assert not limiter.hit("u", RateGroup.AUTH).allowed
        clock.advance(31)
        assert limiter.hit("u", RateGroup.AUTH).allowed

    def test_without_penalty_retry_after_is_the_window_rest(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(limits={"Light": 1}, window=60, penalty=0, clock=clock)
        limiter.hit("u", RateGroup.LIGHT)
        clock.advance(20)
        assert limiter.hit("u", RateGroup.LIGHT).retry_after == 40

    def test_defaults_for_missing_groups(self) -> None:
        limiter = RateLimiter(limits={}, window=60, penalty=60, clock=FakeClock())
        assert limiter.hit("u", RateGroup.AUTH).limit == 5
        assert limiter.hit("u", RateGroup.LIGHT).limit == 50


class TestOverHttp:
    def test_headers_and_429(self, start_server: StartServer) -> None:
        server = _limited(start_server)
        client = server.client()
        headers = server.auth()
        first = client.get(ME, headers=headers)
        assert first.headers["X-Rate-Limit-Group"] == "light"
        assert first.headers["X-Rate-Limit-Limit"] == "2"
        assert first.headers["X-Rate-Limit-Remaining"] == "1"
        assert first.headers["X-Rate-Limit-Window"] == "60"
        assert client.get(ME, headers=headers).headers["X-Rate-Limit-Remaining"] == "0"
        refused = client.get(ME, headers=headers)
        body = assert_error(refused, 429, "CMN-301")
        assert body["message"] == "Request rate exceeded"
        assert refused.headers["Retry-After"] == "30"
        assert refused.headers["X-Rate-Limit-Group"] == "light"
        other_group = client.get("/restapi/v1.0/account/~/extension", headers=headers)
        assert other_group.status_code == 200
        assert other_group.headers["X-Rate-Limit-Group"] == "medium"
        assert client.get(ME, headers=server.auth("108")).status_code == 200
        server.clock.advance(61)
        assert client.get(ME, headers=headers).status_code == 200

    def test_auth_group_on_token_endpoint(self, start_server: StartServer) -> None:
        server = _limited(start_server)
        for _ in range(3):
            server.token()
        response = server.client().post(
            "/restapi/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": "x"},
            auth=(server.tenant.client_id, server.tenant.client_secret),
        )
        assert_error(response, 429, "CMN-301")
        assert response.headers["X-Rate-Limit-Group"] == "auth"
        assert response.headers["Retry-After"] == "30"

    def test_anonymous_requests_are_counted_by_address(self, start_server: StartServer) -> None:
        server = _limited(start_server)
        client = server.client()
        assert client.get("/no/such/route").status_code == 404
        assert client.get(ME).status_code == 401
        refused = client.get("/no/such/route")
        assert_error(refused, 429, "CMN-301")
        assert refused.headers["Retry-After"] == "30"
