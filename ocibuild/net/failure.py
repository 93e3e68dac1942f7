"""A request that failed without an answer, as a `NetworkError` naming its cause (DNS, refused,
TLS verification, timeout, broken connection) and the request (`METHOD URL`); a
`TransientError` when a retry may help."""

from __future__ import annotations

import errno
import http.client
import os
import socket
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from ocibuild.errors import NetworkError, TransientError
from ocibuild.net.policy import Deadlines

DEFAULT_PORTS = {"https": 443, "http": 80}
UNREACHABLE = (errno.ENETUNREACH, errno.EHOSTUNREACH)


def causes(e: BaseException) -> Iterator[BaseException]:
    """`e` and what it wraps: requests wraps urllib3, which wraps the socket's error."""
    seen: set[int] = set()
    todo = [e]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for inner in (
            getattr(current, "reason", None),
            current.__cause__,
            current.__context__,
            *current.args,
        ):
            if isinstance(inner, BaseException):
                todo.append(inner)


def root_cause(e: BaseException) -> str:
    """The innermost error, as `Class: first line`."""
    *_, last = causes(e)
    text = str(last).splitlines()[0][:300] if str(last) else ""
    return f"{last.__class__.__name__}: {text}" if text else last.__class__.__name__


def failure(e: BaseException, where: str, deadlines: Deadlines | None = None) -> NetworkError:
    """The NetworkError for a request (`METHOD URL`) that failed with `e`."""
    chain = list(causes(e))
    url = urlsplit(where.split(" ", 1)[-1])
    host = url.netloc
    try:
        port = url.port
    except ValueError:
        port = 0
    if port is None and url.scheme in DEFAULT_PORTS:
        host = f"{host}:{DEFAULT_PORTS[url.scheme]}"

    def found(*kinds: type[BaseException]) -> BaseException | None:
        return next((c for c in chain if isinstance(c, kinds)), None)

    if found(
        urllib3.exceptions.LocationParseError,
        requests.exceptions.InvalidURL,
        requests.exceptions.InvalidSchema,
        requests.exceptions.MissingSchema,
    ):
        return NetworkError(f"{where}: not a URL ocibuild can fetch ({root_cause(e)})", cause="url")

    if verify := found(ssl.SSLCertVerificationError):
        reason = getattr(verify, "verify_message", "") or str(verify)
        return NetworkError(f"{where}: TLS verification failed ({reason})", cause="tls-verify")
    if isinstance(e, requests.exceptions.SSLError) or found(ssl.SSLError):
        return NetworkError(
            f"{where}: TLS handshake failed ({root_cause(e)}); does {host} speak TLS?", cause="tls"
        )
    if found(urllib3.exceptions.NameResolutionError, socket.gaierror):
        name = url.hostname
        return NetworkError(
            f"{where}: the host name {name} could not be resolved (DNS)", cause="dns"
        )
    if found(ConnectionRefusedError):
        return NetworkError(
            f"{where}: connection refused (nothing listens on {host})", cause="refused"
        )
    if code := next(
        (c.errno for c in chain if isinstance(c, OSError) and c.errno in UNREACHABLE), None
    ):
        return NetworkError(f"{where}: {os.strerror(code).lower()}", cause="unreachable")
    # urllib3's NewConnectionError (any failure to connect) is a ConnectTimeoutError too
    if isinstance(e, requests.ConnectTimeout) or any(
        isinstance(c, urllib3.exceptions.ConnectTimeoutError)
        and not isinstance(c, urllib3.exceptions.NewConnectionError)
        for c in chain
    ):
        after = f" after {deadlines.connect:g} s" if deadlines else ""
        return TransientError(f"{where}: connection timed out{after}", cause="timeout")
    if isinstance(e, requests.ReadTimeout) or found(
        urllib3.exceptions.ReadTimeoutError, TimeoutError, socket.timeout
    ):
        within = f" within {deadlines.idle:g} s" if deadlines else ""
        return TransientError(
            f"{where}: timed out: no answer{within} (read timeout)", cause="timeout"
        )
    if found(
        ConnectionResetError,
        ConnectionAbortedError,
        BrokenPipeError,
        http.client.RemoteDisconnected,
        http.client.IncompleteRead,
        urllib3.exceptions.ProtocolError,
        requests.exceptions.ChunkedEncodingError,
    ):
        return TransientError(f"{where}: connection broken ({root_cause(e)})", cause="broken")
    return TransientError(f"{where}: {root_cause(e)}", cause="other")
