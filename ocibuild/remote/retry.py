"""When to try a request again, and how long to wait first."""

from __future__ import annotations

import email.utils
import random
import time

from ocibuild.errors import RegistryError
from ocibuild.remote.options import RemoteOptions

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class TransientError(RegistryError):
    """A failure worth retrying: a broken connection, a timeout, 408, 429 or a 5xx."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retryable_status(status: int) -> bool:
    return status in RETRY_STATUSES or (status >= 500 and status not in (501, 505))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def backoff_delay(attempt: int, options: RemoteOptions, retry_after: float | None = None) -> float:
    """The wait before retry number `attempt` (1-based): the server's wish, else exponential
    backoff with jitter so that parallel clients do not retry in step."""
    if retry_after is not None:
        return min(retry_after, options.max_retry_after)
    ceiling = min(options.max_backoff, options.backoff * 2 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)
