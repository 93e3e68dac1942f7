"""The one retry policy of every request ocibuild sends (registries and downloads).

Retried: timeouts, broken connections, and the statuses 408, 429, 500, 502, 503 and 504, after
the wait the server asks for in `Retry-After` (at most `max_retry_after`, by default the limit
`OCIBUILD_MAX_RETRY_AFTER`: a server asking for more is told so in the message, and waited for
that long only), else after exponential backoff with jitter (so that parallel clients do not
retry in step). Not retried: a host name that does not resolve, a refused connection, a TLS
failure, a redirect ocibuild will not follow, any other status.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ocibuild.errors import TransientError
from ocibuild.limits import RETRY_AFTER

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
T = TypeVar("T")


def retryable_status(status: int) -> bool:
    return status in RETRY_STATUSES


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value[:12])  # past 10^12 seconds it is capped all the same
    import email.utils  # only an HTTP date needs it

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True)
class RetryPolicy:
    """`retries` more attempts after the first, waiting `backoff` * 2^n seconds (jittered, at
    most `max_backoff`) or what `Retry-After` asks (at most `max_retry_after`)."""

    retries: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float | None = None  # None: the limit OCIBUILD_MAX_RETRY_AFTER

    @property
    def retry_after_cap(self) -> float:
        if self.max_retry_after is not None:
            return self.max_retry_after
        return float(RETRY_AFTER.value)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """The wait before retry number `attempt` (1-based)."""
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap)
        ceiling = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


# told before each wait: (retry number, seconds, the failure); the caller reports it
OnRetry = Callable[[int, float, TransientError], None]


class Attempts:
    """The failures of one operation so far. `failed(e)` waits before the next attempt, or
    raises `e` (saying how many attempts it took) when the policy allows no more; `progress()`
    starts the count again (a chunked upload that moved on)."""

    def __init__(self, policy: RetryPolicy, on_retry: OnRetry | None = None) -> None:
        self.policy = policy
        self.on_retry = on_retry
        self.failures = 0

    def failed(self, error: TransientError) -> None:
        self.failures += 1
        if self.failures > self.policy.retries:
            error.message = f"{error.message} (gave up after {self.failures} attempts)"
            raise error
        delay = self.policy.delay(self.failures, error.retry_after)
        if error.retry_after is not None and error.retry_after > delay:
            error.message = (
                f"{error.message} (the server asks to wait {error.retry_after:g} s: capped at "
                f"{delay:g} s, OCIBUILD_MAX_RETRY_AFTER)"
            )
        if self.on_retry is not None:
            self.on_retry(self.failures, delay, error)
        time.sleep(delay)

    def progress(self) -> None:
        self.failures = 0


def retrying(send: Callable[[], T], policy: RetryPolicy, on_retry: OnRetry | None = None) -> T:
    """`send()`, again after each TransientError as the policy allows."""
    attempts = Attempts(policy, on_retry)
    while True:
        try:
            return send()
        except TransientError as e:
            attempts.failed(e)
