"""Rate limiting per (user, app) and group, RingCentral style (ringcentral-api.md §2.12).

Theory of operation: every request is counted in a fixed window of ``rate_window`` seconds for
one key and one group (Light, Medium, Heavy, Auth). Authenticated endpoints count under the key
``<extension id>:<client id>`` (set by the route's guard dependency); the token endpoint under the
client id; anything that never reached a guard (bad token, unknown route) under the client IP.
A request over the limit is refused with 429 CMN-301 and starts a penalty of ``rate_penalty``
seconds that restarts with every refused request. Time comes from the injected Clock.

:class:`RateLimitMiddleware` (pure ASGI) puts the ``X-Rate-Limit-*`` headers on every response,
refuses over-limit anonymous requests, and turns exceptions that escaped every handler into the
500 CMN-203 body, so no response ever lacks the headers or leaks a traceback.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callwatch.api.errors import ApiError, InternalError, RateLimitExceeded, error_response
from callwatch.clock import Clock

logger = logging.getLogger(__name__)

DECISION_STATE_KEY = "callwatch_rate_decision"
"""Key in the ASGI scope's ``state`` where a guard leaves its :class:`RateDecision`."""
MAX_BUCKETS = 100_000
"""Buckets kept before idle ones are pruned (rule 8: every table has a limit)."""


class RateGroup(StrEnum):
    """RingCentral throttling groups (``x-throttling-group``)."""

    LIGHT = "Light"
    MEDIUM = "Medium"
    HEAVY = "Heavy"
    AUTH = "Auth"


DEFAULT_LIMITS = {RateGroup.LIGHT: 50, RateGroup.MEDIUM: 40, RateGroup.HEAVY: 10, RateGroup.AUTH: 5}
"""Requests per window when settings omit a group (DOCS rate-limits.md)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RateDecision:
    """The outcome of counting one request."""

    group: RateGroup
    limit: int
    remaining: int
    window: int
    retry_after: int | None
    """Seconds to wait if the request was refused; None if it was allowed."""

    @property
    def allowed(self) -> bool:
        return self.retry_after is None

    def headers(self) -> dict[str, str]:
        """The ``X-Rate-Limit-*`` headers (and ``Retry-After`` when refused)."""
        headers = {
            "X-Rate-Limit-Group": self.group.value.lower(),
            "X-Rate-Limit-Limit": str(self.limit),
            "X-Rate-Limit-Remaining": str(self.remaining),
            "X-Rate-Limit-Window": str(self.window),
        }
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return headers

    def raise_if_refused(self) -> None:
        """Raise :class:`RateLimitExceeded` if the request was refused."""
        if self.retry_after is not None:
            raise RateLimitExceeded(self.retry_after)


@dataclass(slots=True)
class _Bucket:
    window_start: float
    count: int = 0
    blocked_until: float = 0.0


class RateLimiter:
    """Fixed-window counters per (key, group); thread-safe."""

    def __init__(
        self, *, limits: Mapping[str, int], window: int, penalty: int, clock: Clock
    ) -> None:
        self._limits = {
            group: limits.get(group.value, DEFAULT_LIMITS[group]) for group in RateGroup
        }
        self._window = window
        self._penalty = penalty
        self._clock = clock
        self._buckets: dict[tuple[str, RateGroup], _Bucket] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, group: RateGroup) -> RateDecision:
        """Count one request of ``key`` in ``group`` and decide whether it may proceed."""
        now = self._clock.monotonic()
        with self._lock:
            bucket = self._bucket(key, group, now)
            return self._decide(bucket, group, now)

    def _bucket(self, key: str, group: RateGroup, now: float) -> _Bucket:
        bucket = self._buckets.get((key, group))
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._prune(now)
            bucket = self._buckets[(key, group)] = _Bucket(window_start=now)
        elif now - bucket.window_start >= self._window and now >= bucket.blocked_until:
            bucket.window_start, bucket.count = now, 0
        return bucket

    def _decide(self, bucket: _Bucket, group: RateGroup, now: float) -> RateDecision:
        limit = self._limits[group]
        bucket.count += 1
        refused = now < bucket.blocked_until or bucket.count > limit
        retry_after: int | None = None
        if refused:
            retry_after = self._refuse(bucket, now)
        return RateDecision(
            group=group,
            limit=limit,
            remaining=max(0, limit - bucket.count),
            window=self._window,
            retry_after=retry_after,
        )

    def _refuse(self, bucket: _Bucket, now: float) -> int:
        if self._penalty > 0:
            bucket.blocked_until = now + self._penalty
            return self._penalty
        return max(1, math.ceil(bucket.window_start + self._window - now))

    def _prune(self, now: float) -> None:
        horizon = max(self._window, self._penalty)
        stale = [
            key
            for key, bucket in self._buckets.items()
            if now - bucket.window_start >= horizon and now >= bucket.blocked_until
        ]
        for key in stale:
            del self._buckets[key]


def remember_decision(scope: Scope, decision: RateDecision) -> None:
    """Record a guard's decision in the request scope so the middleware emits its headers."""
    scope.setdefault("state", {})[DECISION_STATE_KEY] = decision


class RateLimitMiddleware:
    """ASGI middleware: rate-limit headers on every response, last-resort 500 handling."""

    def __init__(self, app: ASGIApp, *, limiter: RateLimiter) -> None:
        self._app = app
        self._limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        state: dict[str, object] = scope.setdefault("state", {})
        exchange = _Exchange(scope, send, self._limiter, state)
        try:
            await self._app(scope, receive, exchange.send)
        except Exception as exc:
            logger.error("! unhandled error on %s", scope.get("path"), exc_info=exc)
            if not await exchange.fail(InternalError()):
                raise  # too late for an error body: let the server drop the connection


class _Exchange:
    """One request's view of the response being sent."""

    def __init__(
        self, scope: Scope, send: Send, limiter: RateLimiter, state: dict[str, object]
    ) -> None:
        self._scope = scope
        self._send = send
        self._limiter = limiter
        self._state = state
        self._started = False
        self._replaced = False
        self._anonymous: RateDecision | None = None

    async def send(self, message: Message) -> None:
        if self._replaced:
            return
        if message["type"] == "http.response.start":
            decision = self._decision()
            if not decision.allowed and DECISION_STATE_KEY not in self._state:
                self._replaced = True
                await self._send_error(RateLimitExceeded(decision.retry_after or 1), decision)
                return
            MutableHeaders(scope=message).update(decision.headers())
            self._started = True
        await self._send(message)

    async def fail(self, error: ApiError) -> bool:
        """Send ``error`` instead of the response; False if the response already started."""
        if self._started or self._replaced:
            return False
        self._replaced = True
        await self._send_error(error, self._decision())
        return True

    def _decision(self) -> RateDecision:
        decision = self._state.get(DECISION_STATE_KEY)
        if isinstance(decision, RateDecision):
            return decision
        if self._anonymous is None:
            key = f"ip:{_client_ip(self._scope)}"
            self._anonymous = self._limiter.hit(key, _group_of(self._scope))
        return self._anonymous

    async def _send_error(self, error: ApiError, decision: RateDecision) -> None:
        response = error_response(error)
        response.headers.update(decision.headers())
        await response(self._scope, _no_receive, self._send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _group_of(scope: Scope) -> RateGroup:
    path = str(scope.get("path", ""))
    return RateGroup.AUTH if path.startswith("/restapi/oauth/") else RateGroup.LIGHT
