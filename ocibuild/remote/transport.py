"""One registry over HTTP: scheme discovery (`GET /v2/`), auth, retries and error messages.

Requests go through `ocibuild.net`: its session, its TLS rules per host (loopback registries may
be plain HTTP, `$OCIBUILD_INSECURE_REGISTRIES`, certs.d) and its retry policy. `request()`
retries what is worth retrying and answers a 401 once by renewing its credentials. Bodies are
bytes or a factory of a fresh sized iterable, so a request can be sent again.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable, Sized
from typing import Any, Protocol, TypeVar
from urllib.parse import urljoin

import requests

from ocibuild.errors import AuthError, NetworkError, RegistryError, TransientError
from ocibuild.jsonread import read_json
from ocibuild.net.body import body_head
from ocibuild.net.links import safe_url
from ocibuild.net.retry import retryable_status, retrying
from ocibuild.net.session import error_summary, new_session, send, status_failure
from ocibuild.net.tls import CERTS_DIRS_ENV, INSECURE_ENV, HostTLS, host_tls, split_host
from ocibuild.oci.reference import registry_credentials_key, registry_endpoint
from ocibuild.progress import RateLimitEvent, Reporter, RetryEvent
from ocibuild.remote.auth import Authenticator, pick_challenge
from ocibuild.remote.credentials import Credentials, find_credentials
from ocibuild.remote.options import RemoteOptions

log = logging.getLogger(__name__)
T = TypeVar("T")


class SizedBody(Sized, Iterable[bytes], Protocol):
    pass


Body = bytes | Callable[[], SizedBody] | None


class TLSError(RegistryError):
    """The TLS handshake failed: an unknown CA, a wrong host name, or a plain-HTTP server."""


class UnreachableError(RegistryError):
    """The registry could not be reached at all (no name, nothing listening, no answer)."""


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
        self.deadlines = options.deadlines
        self.session = new_session(options.concurrency + 2)
        self.tls = self.tls_for(self.host)
        if credentials is None:
            key = self.credentials_key

            def credentials() -> Credentials | None:
                return find_credentials(key, options.docker_config)

        self.auth = Authenticator(registry, self.session, credentials, self.deadlines, self.tls_for)
        self._base: str | None = None
        self._ping_error: RegistryError | None = None
        self._lock = threading.Lock()

    def tls_for(self, netloc: str) -> HostTLS:
        return host_tls(netloc, self.options.insecure, self.options.ca_cert)

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
        """Find the scheme that works and the auth challenge: https, or plain http for a
        registry that may be plain (loopback, `*.local`, insecure) and does not speak TLS."""
        https = f"https://{self.host}"
        try:
            return self._ping_at(https, probe=self.tls.plain_http)
        except NetworkError as e:
            if not self._may_fall_back(e):
                raise self._unreachable(e) from None
            over_https = e
            log.debug("%s: %s; trying plain HTTP", self.host, e)
        try:
            base = self._ping_at(f"http://{self.host}", probe=False)
        except NetworkError as e:
            if over_https.cause != "tls":  # else the HTTPS failure says nothing new
                e.message += f"; {over_https.message}"
            raise self._unreachable(e) from None
        log.info("%s: using plain HTTP", self.registry)
        return base

    def _may_fall_back(self, error: NetworkError) -> bool:
        if not self.tls.plain_http or error.cause == "dns":
            return False
        if error.cause == "refused":  # the same port refuses http as well
            return split_host(self.host)[1] is None
        return error.cause != "tls-verify"

    def _ping_at(self, base: str, probe: bool) -> str:
        ping = functools.partial(self._send, "GET", base + "/v2/")
        response = ping() if probe else self.retrying(ping)
        with response:
            if response.status_code == 401:
                self.auth.refused(response, ())
            elif response.status_code != 200:
                raise RegistryError(
                    f"{base}/v2/ answered HTTP {response.status_code}: "
                    f"{self.registry} does not look like an OCI / Docker v2 registry"
                )
        return base

    def _unreachable(self, error: NetworkError) -> RegistryError:
        if error.cause == "tls-verify" and self.tls.ca_source:
            return TLSError(f"{error}; the CAs trusted for {self.host}: {self.tls.ca_source}")
        if error.cause == "tls-verify":
            return TLSError(
                f"{error}; give the registry's CA with --ca-cert or as "
                f"/etc/containers/certs.d/{self.host}/ca.crt (${CERTS_DIRS_ENV} replaces "
                f"that directory), or use --insecure (or ${INSECURE_ENV})"
            )
        if error.cause == "tls":
            return TLSError(
                f"{error}; a plain-HTTP registry needs --insecure (or ${INSECURE_ENV}) unless it "
                "is on loopback, localhost or *.local"
            )
        if error.cause == "http":
            return RegistryError(str(error))
        return UnreachableError(f"cannot reach the registry {self.registry}: {error}")

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
                raise status_failure(response, method)
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
        response = send(
            self.session,
            method,
            url,
            tls=self.tls,
            deadlines=self.deadlines,
            headers=headers,
            data=data,
            stream=stream,
        )
        self._note_ratelimit(response)
        return response

    def retrying(self, attempt: Callable[[], T]) -> T:
        return retrying(attempt, self.options.retry_policy, self.on_retry)

    def on_retry(self, attempt: int, delay: float, error: TransientError) -> None:
        """Tell the user why we wait before a retry."""
        self.report(RetryEvent(str(error), attempt, self.options.retries, delay))

    # -- errors and headers -------------------------------------------------------------------

    def error(
        self, method: str, response: requests.Response, scopes: Iterable[str] = ()
    ) -> RegistryError:
        """The error for an unexpected answer, with the registry's own error code and message."""
        where = f"{method} {safe_url(response.url)}"
        summary = error_summary(response)
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
            return AuthError(f"HTTP 401{summary}{hint}", where)
        if status == 403:
            return AuthError(
                f"HTTP 403{summary} (access denied to {' '.join(scopes) or self.registry})", where
            )
        return RegistryError(f"HTTP {status}{summary}", where)

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
    """The registry's error code (`MANIFEST_UNKNOWN`, `DENIED`, ...) of an error answer."""
    try:
        data = read_json(body_head(response), "an error answer")
    except ValueError:
        return ""
    errors = data.get("errors") if isinstance(data, dict) else None
    first = errors[0] if isinstance(errors, list) and errors else None
    return str(first.get("code", "")) if isinstance(first, dict) else ""
