"""Sessions and single requests: the User-Agent, pooled connections sized for the work,
TLS settings per host, and failures that keep their cause.

`send()` either returns a response (whatever its status) or raises a `NetworkError` naming the
cause (DNS, refused, TLS verification, timeout, a deadline, broken connection) and the URL;
`TransientError` when a retry may help. It follows redirects itself, to http and https only
(`links`), under the request's deadlines (`deadline`). `status_failure()` turns an unexpected
answer into the error naming the status and the server's own message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from ocibuild import __version__
from ocibuild.errors import NetworkError, TransientError
from ocibuild.jsonread import read_json
from ocibuild.net.body import body_chunks, body_head
from ocibuild.net.deadline import WATCHDOG, Transfer, WatchedAdapter, remember, sending
from ocibuild.net.failure import failure
from ocibuild.net.links import MAX_REDIRECTS, redirect_target, safe_url
from ocibuild.net.policy import Deadlines
from ocibuild.net.retry import parse_retry_after, retryable_status
from ocibuild.net.tls import HostTLS
from ocibuild.secrets import register_url

USER_AGENT = f"ocibuild/{__version__}"


def new_session(connections: int = 4) -> requests.Session:
    """A session for `connections` requests at once per host, with no retries of its own
    (the retry policy is ours), whose sockets the deadline watchdog can shut."""
    session = requests.Session()
    adapter = WatchedAdapter(pool_connections=4, pool_maxsize=max(1, connections), max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    tls: HostTLS,
    deadlines: Deadlines,
    stream: bool = False,
    headers: Mapping[str, str] | None = None,
    data: Any = None,
    params: Any = None,
) -> requests.Response:
    """One request, redirects followed (to http and https only), held to `deadlines`; a
    failure without an answer raises NetworkError (TransientError if worth retrying). Unless
    `stream`, the body is read now (at most `PRELOAD` bytes: `.content` holds them).
    `verify` is given with each request: a session's own loses to $REQUESTS_CA_BUNDLE."""
    register_url(url)
    where = f"{method} {safe_url(url)}"
    transfer = Transfer(where, deadlines, _size(data))
    WATCHDOG.add(transfer)
    sending(transfer)
    try:
        response = _follow(session, method, url, tls, deadlines, headers, data, params)
    except requests.RequestException as e:
        if transfer.expired is not None:
            raise TransientError(f"{where}: {transfer.expired}", cause="timeout") from None
        raise failure(e, where, deadlines) from None
    finally:
        sending(None)
        WATCHDOG.remove(transfer)
    remember(response, transfer)
    if not stream:
        _preload(response)
    return response


def _follow(
    session: requests.Session,
    method: str,
    url: str,
    tls: HostTLS,
    deadlines: Deadlines,
    headers: Mapping[str, str] | None,
    data: Any,
    params: Any,
) -> requests.Response:
    """The answer at the end of the redirects, each checked (`links.redirect_target`); the
    Authorization header is not sent on to another host."""
    sent = dict(headers or {})
    for _ in range(MAX_REDIRECTS + 1):
        response = session.request(
            method,
            url,
            verify=tls.verify,
            cert=tls.cert,
            timeout=deadlines.timeout,
            allow_redirects=False,
            stream=True,
            headers=sent,
            data=data,
            params=params,
        )
        location = response.headers.get("Location")
        if not (response.is_redirect and location):
            return response
        response.close()  # its body is never read: a redirect's body is not for us
        target = redirect_target(response.url, location)
        if urlsplit(target).netloc != urlsplit(response.url).netloc:
            sent = {k: v for k, v in sent.items() if k.lower() != "authorization"}
        if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
            method, data = "GET", None
        url, params = target, None
    raise NetworkError(f"{safe_url(url)}: more than {MAX_REDIRECTS} redirects", cause="redirect")


PRELOAD = 16 << 20  # bytes of a body read with the answer (not streamed); the rest is dropped


def _preload(response: requests.Response) -> None:
    """Read a small answer's body now (like requests does), so its connection is reused."""
    data = bytearray()
    try:
        for piece in body_chunks(response):
            data += piece
            if len(data) > PRELOAD:
                response.close()
                break
    except NetworkError:
        response.close()
    response._content = bytes(data)
    response._content_consumed = True  # type: ignore[attr-defined]


def _size(data: Any) -> int:
    try:
        return len(data) if data is not None else 0
    except TypeError:
        return 0


def status_failure(response: requests.Response, method: str = "") -> NetworkError:
    """The error for an answer we did not want: the status and the server's own message;
    TransientError (with the server's Retry-After) for the statuses worth retrying."""
    status = response.status_code
    url = safe_url(response.url)
    where = f"{method} {url}" if method else url
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
            data = read_json(body, "an error answer")
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
                if isinstance(message := data.get(key), str):
                    return f" {message[:200]}"
    if kind in ("", "text/plain") or kind.endswith("json"):
        text = body.decode("utf-8", "replace").strip().splitlines()
        return f" {text[0][:200]}" if text else ""
    return ""
