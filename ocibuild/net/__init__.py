"""HTTP for everything ocibuild fetches or sends: one session factory, one retry policy, one
deadline policy, the rules of where a server may send ocibuild, bounded body readers, and
failures that name their cause."""

from ocibuild.net.body import body_chunks, content_length, read_body, read_json_body
from ocibuild.net.failure import failure, root_cause
from ocibuild.net.links import Pages, linked_url
from ocibuild.net.policy import Deadlines, NetworkPolicy
from ocibuild.net.retry import Attempts, RetryPolicy, retrying
from ocibuild.net.session import new_session, safe_url, send, status_failure
from ocibuild.net.tls import HostTLS, host_tls, is_local

__all__ = [
    "Attempts",
    "Deadlines",
    "HostTLS",
    "NetworkPolicy",
    "Pages",
    "RetryPolicy",
    "body_chunks",
    "content_length",
    "failure",
    "host_tls",
    "is_local",
    "linked_url",
    "new_session",
    "read_body",
    "read_json_body",
    "retrying",
    "root_cause",
    "safe_url",
    "send",
    "status_failure",
]
