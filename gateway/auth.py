"""Who is calling the office face, and for which agencies it may act (floor 4).

An office system presents `Authorization: Bearer <token>` or, when the office face runs TLS with
client-certificate checking, a certificate whose SHA-256 fingerprint is configured for it. Either
names one `OfficeConfig`; everything it does afterwards is confined to that credential's OrganIds
(`require_acts_for`): sending as, reading the inbox or statuses of, or reporting for another agency
is `Forbidden`. A missing or wrong credential is `Unauthorized` (the token is never echoed or
logged). With `[limits] office_rate` > 0 each credential has a token bucket on the injected clock;
an empty bucket is `Unavailable`, which the client may retry.
"""

from __future__ import annotations

from typing import Any

import attrs

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from gateway.config import Config, OfficeConfig
from gateway.soap import FaultCode, GatewayFault
from gateway.tls import fingerprint, peer_certificate

__all__ = ["Authenticator", "RateLimiter", "TokenBucket", "bearer_token", "require_acts_for"]

_BEARER = "bearer"


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header, or None (absent, other scheme, empty)."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != _BEARER:
        return None
    value = value.strip()
    return value or None


def unauthorized() -> GatewayFault:
    return GatewayFault(FaultCode.UNAUTHORIZED)


def require_acts_for(office: OfficeConfig, organ_id: str) -> None:
    """Forbidden unless `office` may act for `organ_id` (the message names the OrganId, never
    the credential, so a person reading the fault knows which agency was refused)."""
    if not office.may_act_for(organ_id):
        raise GatewayFault(
            FaultCode.FORBIDDEN,
            f"This credential may not act for the agency {organ_id}",
            f"Thông tin xác thực này không được phép thao tác cho cơ quan {organ_id}",
        )


@attrs.define
class TokenBucket:
    """`rate` tokens per second, at most `burst` held; one request takes one token."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float) -> bool:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class RateLimiter:
    """A token bucket per caller (a credential's name, a peer's certificate fingerprint) on the
    injected clock: `rate` requests per second, a burst of one second's worth (at least one
    request) to absorb a client's jitter; `rate` 0 is no limit. Reactor thread only."""

    def __init__(self, rate: float, clock: IReactorTime) -> None:
        self.rate = rate
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def allow(self, caller: str) -> bool:
        if self.rate <= 0:
            return True
        now = self._clock.seconds()
        bucket = self._buckets.get(caller)
        if bucket is None:
            burst = max(1.0, self.rate)
            bucket = self._buckets[caller] = TokenBucket(self.rate, burst, burst, now)
        return bucket.take(now)


def too_many(rate: float, whose_en: str, whose_vi: str) -> GatewayFault:
    """Unavailable (retryable): the caller is over its rate limit."""
    return GatewayFault(
        FaultCode.UNAVAILABLE,
        f"Too many requests from {whose_en} (limit {rate:g}/s); try again later",
        f"Quá nhiều yêu cầu từ {whose_vi} (giới hạn {rate:g}/giây); vui lòng thử lại sau",
    )


class Authenticator:
    """Finds the credential of a request and applies its rate limit (reactor thread only)."""

    log = Logger()

    def __init__(self, config: Config, *, clock: IReactorTime) -> None:
        self._config = config
        self._limiter = RateLimiter(config.limits.office_rate, clock)

    def authenticate(self, authorization: str | None, transport: Any = None) -> OfficeConfig:
        """The office of a bearer token, else of the TLS client certificate; raises Unauthorized
        (neither given, or not configured) or Unavailable (rate limit)."""
        office: OfficeConfig | None = None
        token = bearer_token(authorization)
        cert = None
        if token is not None:
            office = self._config.office_for_token(token)
        else:
            cert = peer_certificate(transport) if transport is not None else None
            if cert is not None:
                office = self._config.office_for_fingerprint(fingerprint(cert))
        if office is None:
            via = "token" if token is not None else "certificate" if cert is not None else None
            self.log.warn("office request refused: no valid credential", presented=via)
            raise unauthorized()
        self._limit(office)
        return office

    def _limit(self, office: OfficeConfig) -> None:
        if not self._limiter.allow(office.name):
            rate = self._limiter.rate
            self.log.warn("office {office} over its rate limit", office=office.name, rate=rate)
            raise too_many(rate, "this credential", "thông tin xác thực này")
