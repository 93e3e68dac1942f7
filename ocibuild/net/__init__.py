"""HTTP for everything ocibuild fetches or sends: one session factory, one retry policy, and
failures that name their cause. Imports nothing of ocibuild but `errors` and `secrets`."""

from ocibuild.net.policy import NetworkPolicy
from ocibuild.net.retry import Attempts, RetryPolicy, retrying
from ocibuild.net.session import failure, new_session, safe_url, send, status_failure
from ocibuild.net.tls import HostTLS, host_tls, is_local

__all__ = [
    "Attempts",
    "HostTLS",
    "NetworkPolicy",
    "RetryPolicy",
    "failure",
    "host_tls",
    "is_local",
    "new_session",
    "retrying",
    "safe_url",
    "send",
    "status_failure",
]
