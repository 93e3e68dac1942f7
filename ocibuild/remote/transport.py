"""One registry over HTTP: scheme discovery (`GET /v2/`), auth, retries and error messages.

`request()` retries what is worth retrying (broken connections, timeouts, 408, 429, 5xx) with
backoff, honouring `Retry-After`, and answers a 401 once by renewing its credentials. Bodies are
bytes or a factory of a fresh sized iterable, so a request can be sent again.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sized
from typing import Any, Protocol, TypeVar
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from ocibuild import __version__
from ocibuild.errors import AuthError, RegistryError
from ocibuild.oci.reference import registry_credentials_key, registry_endpoint
from ocibuild.progress import RateLimitEvent, Reporter, RetryEvent
from ocibuild.remote.auth import Authenticator, pick_challenge
from ocibuild.remote.credentials import Credentials, find_credentials
from ocibuild.remote.options import RemoteOptions
from ocibuild.remote.retry import TransientError, backoff_delay, parse_retry_after, retryable_status

log = logging.getLogger(__name__)
T = TypeVar("T")


class SizedBody(Sized, Iterable[bytes], Protocol):
    pass


Body = bytes | Callable[[], SizedBody] | None


class TLSError(RegistryError):
    """The TLS handshake failed: an unknown CA, a wrong host name, or a plain-HTTP server."""


def redact(url: str) -> str:
    """A URL fit for a message: without its query (upload state, tokens) and user info."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def describe(e: BaseException) -> str:
    """The root cause of a requests exception, without urllib3's wrapping."""
    while e.args and isinstance(e.args[0], BaseException):
        e = e.args[0]
    reason = getattr(e, "reason", None)
    if isinstance(reason, BaseException):
        return describe(reason)
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{e.__class__.__name__}: {text[:300]}" if text else e.__class__.__name__


class RegistryClient:
    """The connection state of one registry: its base URL, auth and a pooled session."""

    def __init__(
        self,
        registry: str,
        options: RemoteOptions,
        report: Reporter,
        credentials: Callable[[], Credentials | None] | None = None,
    ) -> None:
        self.registry = registry
        self.host = registry_endpoint(registry)
        self.credentials_key = registry_credentials_key(registry)
        self.options = options
        self.report = report
        self.timeout = (options.connect_timeout, options.read_timeout)
        self.session = requests.Session()
        adapter = HTTPAdapter(
            pool_connections=2, pool_maxsize=options.concurrency + 2, max_retries=0
        )
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers["User-Agent"] = f"ocibuild/{__version__}"
        # given with each request: a session's own `verify` loses to $REQUESTS_CA_BUNDLE
        self.verify: bool | str = False if options.insecure else str(options.ca_cert or "") or True
        if credentials is None:
            key = self.credentials_key

            def credentials() -> Credentials | None:
                return find_credentials(key, options.docker_config)

        self.auth = Authenticator(registry, self.session, credentials, self.timeout, self.verify)
        self._base: str | None = None
        self._ping_error: RegistryError | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the base URL ---------------------------------------------------------------------------

    @property
    def base(self) -> str:
        """`https://host` or `http://host`, found by the first request; a failure sticks, so
        that parallel requests do not each wait through the retries again."""
        with self._lock:
            if self._ping_error is not None:
                raise self._ping_error
            if self._base is None:
                try:
                    self._base = self._ping()
                except RegistryError as e:
                    self._ping_error = e
                    raise
            return self._base

    def url(self, path: str) -> str:
        return urljoin(self.base, path)

    def _ping(self) -> str:
        """Find the scheme that works (https; http too when insecure) and the auth challenge."""
        schemes = ["https", "http"] if self.options.insecure else ["https"]
        for scheme in schemes:
            base = f"{scheme}://{self.host}"
            ping = functools.partial(self._send, "GET", base + "/v2/")
            probe = scheme == "https" and self.options.insecure  # plain HTTP is next: no retries
            try:
                response = ping() if probe else self.retrying(ping)
            except (TLSError, TransientError) as e:
                if probe:
                    log.debug("%s: %s, trying plain HTTP", self.host, e)
                    continue
                if isinstance(e, TLSError):
                    raise TLSError(
                        f"{e}; give the registry's CA with --ca-cert, or use --insecure for a plain-HTTP registry"
                    ) from None
                raise RegistryError(f"cannot reach the registry {self.registry}: {e}") from None
            with response:
                if response.status_code == 401:
                    self.auth.refused(response, ())
                elif response.status_code != 200:
                    raise RegistryError(
                        f"{base}/v2/ answered HTTP {response.status_code}: "
                        f"{self.registry} does not look like an OCI / Docker v2 registry"
                    )
            if scheme == "http":
                log.info("%s: using plain HTTP (--insecure)", self.registry)
            return base
        raise RegistryError(f"cannot reach the registry {self.registry} over HTTPS or HTTP")

    # -- requests ---------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        scopes: Iterable[str] = (),
        headers: dict[str, str] | None = None,
        body: Body = None,
        expect: Iterable[int] = (200,),
        stream: bool = False,
    ) -> requests.Response:
        """Send a request, retrying transient failures; a status not in `expect` is an error."""
        response = self.retrying(
            lambda: self.attempt(
                method, path, scopes=scopes, headers=headers, body=body, stream=stream
            )
        )
        if response.status_code not in tuple(expect):
            raise self.error(method, response, scopes)
        return response

    def attempt(
        self,
        method: str,
        path: str,
        *,
        scopes: Iterable[str] = (),
        headers: dict[str, str] | None = None,
        body: Body = None,
        stream: bool = False,
    ) -> requests.Response:
        """Send a request once (twice if the registry wants other credentials); raises
        TransientError for what a retry may fix."""
        scopes = tuple(scopes)
        url = self.url(path)
        for auth_round in (1, 2):
            sent = {**(headers or {}), **self.auth.header(scopes)}
            response = self._send(method, url, sent, body() if callable(body) else body, stream)
            if response.status_code == 401 and auth_round == 1:
                response.close()
                self.auth.refused(response, scopes, sent.get("Authorization", ""))
                continue
            if retryable_status(response.status_code):
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                message = (
                    f"{method} {redact(url)}: HTTP {response.status_code}{_error_summary(response)}"
                )
                response.close()
                raise TransientError(message, retry_after)
            break
        return response

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None = None,
        data: Any = None,
        stream: bool = False,
    ) -> requests.Response:
        try:
            response = self.session.request(
                method,
                url,
                headers=headers,
                data=data,
                stream=stream,
                timeout=self.timeout,
                verify=self.verify,
            )
        except requests.exceptions.SSLError as e:
            raise TLSError(f"{method} {redact(url)}: TLS failed ({describe(e)})") from None
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as e:
            raise TransientError(f"{method} {redact(url)}: {describe(e)}") from None
        self._note_ratelimit(response)
        return response

    def retrying(self, send: Callable[[], T]) -> T:
        failures = 0
        while True:
            try:
                return send()
            except TransientError as e:
                failures += 1
                if failures > self.options.retries:
                    raise TransientError(f"{e} (gave up after {failures} attempts)") from None
                self.wait(failures, e)

    def wait(self, failures: int, error: TransientError) -> None:
        """Sleep before retry number `failures`, telling the user why."""
        delay = backoff_delay(failures, self.options, error.retry_after)
        self.report(RetryEvent(str(error), failures, self.options.retries, delay))
        time.sleep(delay)

    # -- errors and headers -------------------------------------------------------------------

    def error(
        self, method: str, response: requests.Response, scopes: Iterable[str] = ()
    ) -> RegistryError:
        """The error for an unexpected answer, with the registry's own error code and message."""
        where = f"{method} {redact(response.url)}"
        summary = _error_summary(response)
        code = _code(response)
        response.close()
        status = response.status_code
        if status == 401:
            challenge = pick_challenge(response.headers.get("WWW-Authenticate", ""))
            scope_refused = challenge and challenge.params.get("error") == "insufficient_scope"
            creds = self.auth.credentials()
            if creds is None:
                hint = f"; run `ocibuild login {self.registry}`"
            elif scope_refused or code == "DENIED":
                hint = f"; the credentials of {creds.username!r} do not grant {' '.join(scopes)}"
            else:
                hint = f"; the registry refused the credentials for {self.registry}"
            return AuthError(f"{where}: HTTP 401{summary}{hint}")
        if status == 403:
            return AuthError(
                f"{where}: HTTP 403{summary} (access denied to {' '.join(scopes) or self.registry})"
            )
        return RegistryError(f"{where}: HTTP {status}{summary}")

    def _note_ratelimit(self, response: requests.Response) -> None:
        remaining = _ratelimit(response.headers.get("ratelimit-remaining"))
        limit = _ratelimit(response.headers.get("ratelimit-limit"))
        if remaining is None or limit is None:
            return
        if remaining <= max(5, limit // 10):
            self.report(RateLimitEvent(self.registry, remaining, limit))


def _ratelimit(value: str | None) -> int | None:
    """Docker Hub's `ratelimit-remaining: 76;w=21600` -> 76."""
    if not value:
        return None
    head = value.split(";", 1)[0].strip()
    return int(head) if head.isdigit() else None


def _code(response: requests.Response) -> str:
    try:
        return str(response.json()["errors"][0]["code"])
    except (ValueError, KeyError, IndexError, TypeError, RuntimeError):
        return ""


def _error_summary(response: requests.Response) -> str:
    """` CODE: message` from a registry's JSON error body, or the start of a text body."""
    if response.request is not None and response.request.method == "HEAD":
        return ""
    try:
        errors = response.json().get("errors") or []
        parts = [f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors[:3]]
        return (" " + "; ".join(parts)) if parts else ""
    except (ValueError, AttributeError, RuntimeError):
        pass
    try:
        text = response.text.strip().splitlines()
    except (requests.RequestException, RuntimeError):
        return ""
    return f" {text[0][:200]}" if text else ""
