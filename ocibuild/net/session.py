"""Sessions and single requests: the User-Agent, pooled connections sized for the work,
`file://` URLs (a mirror on disk), TLS settings per host, and failures that keep their cause.

`send()` either returns a response (whatever its status) or raises a `NetworkError` naming the
cause (DNS, refused, TLS verification, timeout, broken connection) and the URL;
`TransientError` when a retry may help. `status_failure()` turns an unexpected answer into the
error naming the status and the server's own message.
"""

from __future__ import annotations

import errno
import http.client
import io
import json
import os
import socket
import ssl
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit
from urllib.request import url2pathname

import requests
import urllib3.exceptions
from requests.adapters import BaseAdapter, HTTPAdapter

from ocibuild import __version__, secrets
from ocibuild.errors import NetworkError, TransientError
from ocibuild.net.retry import parse_retry_after, retryable_status
from ocibuild.net.tls import HostTLS

USER_AGENT = f"ocibuild/{__version__}"
DEFAULT_PORTS = {"https": 443, "http": 80}
UNREACHABLE = (errno.ENETUNREACH, errno.EHOSTUNREACH)


def new_session(connections: int = 4) -> requests.Session:
    """A session for `connections` requests at once per host, with no retries of its own
    (the retry policy is ours), and `file://` URLs read from disk."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(1, connections), max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.mount("file://", FileAdapter())
    session.headers["User-Agent"] = USER_AGENT
    return session


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    tls: HostTLS,
    timeout: tuple[float, float],
    **kwargs: Any,
) -> requests.Response:
    """One request; a failure without an answer raises NetworkError (TransientError if worth
    retrying). `verify` is given with each request: a session's own loses to $REQUESTS_CA_BUNDLE."""
    register_url_secret(url)
    try:
        return session.request(
            method, url, verify=tls.verify, cert=tls.cert, timeout=timeout, **kwargs
        )
    except requests.RequestException as e:
        raise failure(e, f"{method} {safe_url(url)}", timeout) from None


def register_url_secret(url: str) -> None:
    """Keep the password of a `https://user:password@host/` URL out of all output."""
    parts = urlsplit(url)
    if parts.password:
        secrets.register(parts.password, parts.username)
        secrets.register(unquote(parts.password), unquote(parts.username or ""))


def safe_url(url: str) -> str:
    """A URL fit for a message: without its query (upload state, tokens) and user info."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


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


def failure(
    e: BaseException, where: str, timeout: tuple[float, float] | None = None
) -> NetworkError:
    """The NetworkError for a request (`METHOD URL`) that failed with `e`."""
    chain = list(causes(e))
    url = urlsplit(where.split(" ", 1)[-1])
    host = url.netloc
    if url.port is None and url.scheme in DEFAULT_PORTS:
        host = f"{host}:{DEFAULT_PORTS[url.scheme]}"

    def found(*kinds: type[BaseException]) -> BaseException | None:
        return next((c for c in chain if isinstance(c, kinds)), None)

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
        after = f" after {timeout[0]:g} s" if timeout else ""
        return TransientError(f"{where}: connection timed out{after}", cause="timeout")
    if isinstance(e, requests.ReadTimeout) or found(
        urllib3.exceptions.ReadTimeoutError, TimeoutError, socket.timeout
    ):
        within = f" within {timeout[1]:g} s" if timeout else ""
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


def status_failure(response: requests.Response, method: str = "") -> NetworkError:
    """The error for an answer we did not want: the status and the server's own message;
    TransientError (with the server's Retry-After) for the statuses worth retrying."""
    status = response.status_code
    url = safe_url(response.url)
    where = f"{method} {url}" if method else url
    if url.startswith("file:"):
        message = f"{where}: {response.reason}"
    else:
        summary = error_summary(response) or (f" {response.reason}" if response.reason else "")
        message = f"{where}: HTTP {status}{summary}"
    response.close()
    if retryable_status(status):
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return TransientError(message, retry_after, cause="http")
    return NetworkError(message, cause="http")


def error_summary(response: requests.Response) -> str:
    """` CODE: message` from a JSON error body (a registry's `errors` list, or `message`,
    `error`, `detail`), or the first line of a plain-text body; nothing for HTML or HEAD."""
    if response.request is not None and response.request.method == "HEAD":
        return ""
    kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    body = body_head(response)
    if kind.endswith("json") or body[:1] == b"{":
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, Mapping):
            errors = data.get("errors")
            if isinstance(errors, list) and errors:
                parts = [
                    f"{e.get('code', '')}: {e.get('message', '')}".strip(": ")
                    for e in errors[:3]
                    if isinstance(e, Mapping)
                ]
                return (" " + "; ".join(parts)) if parts else ""
            for key in ("message", "error", "detail"):
                if isinstance(data.get(key), str):
                    return f" {data[key][:200]}"
    if kind in ("", "text/plain") or kind.endswith("json"):
        text = body.decode("utf-8", "replace").strip().splitlines()
        return f" {text[0][:200]}" if text else ""
    return ""


def body_head(response: requests.Response, limit: int = 4096) -> bytes:
    """The first `limit` bytes of an answer's body (all of it for a small one), read once: an
    error body is never read whole, however long the server makes it."""
    head = getattr(response, "_ocibuild_head", None)
    if head is None:
        try:
            head = next(response.iter_content(limit), b"")[:limit]
        except (requests.RequestException, RuntimeError, OSError):
            head = b""
        response._ocibuild_head = head  # type: ignore[attr-defined]
    return bytes(head)


class FileAdapter(BaseAdapter):
    """`file://` URLs: a directory mirror answers like a web server (200, 404, 403)."""

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        response = requests.Response()
        response.url = request.url or ""
        response.request = request
        path = Path(url2pathname(unquote(urlsplit(response.url).path)))
        try:
            f: Any = open(path, "rb")
            size = os.fstat(f.fileno()).st_size
            response.status_code, response.reason = 200, "OK"
            response.headers["Content-Length"] = str(size)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            f = io.BytesIO(b"")
            response.status_code, response.reason = 404, "no such file"
        except OSError as e:
            f = io.BytesIO(b"")
            response.status_code = 403
            response.reason = (e.strerror or str(e)).lower()
        if request.method == "HEAD":
            f.close()
            f = io.BytesIO(b"")
        response.raw = f
        return response

    def close(self) -> None:
        pass
