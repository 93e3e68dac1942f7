"""Registry auth: the `WWW-Authenticate` challenge, basic credentials and bearer tokens.

A registry answers 401 with a challenge. `Basic` wants the user's credentials on every request;
`Bearer` sends us to a token service (realm, service) that hands out a token for some scopes
(`repository:NAME:pull,push`), anonymously or for the user's credentials. Tokens are cached per
set of scopes until they expire, and dropped when the registry refuses one.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from ocibuild import secrets
from ocibuild.errors import AuthError, NetworkError, RegistryError
from ocibuild.net.body import read_json_body
from ocibuild.net.policy import Deadlines
from ocibuild.net.session import send
from ocibuild.net.tls import HostTLS
from ocibuild.remote.credentials import Credentials

log = logging.getLogger(__name__)

_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')
_DEFAULT_TOKEN_LIFETIME = 60
TOKEN_ANSWER = 1 << 20  # bytes of a token service's answer


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" or "bearer"
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def parse_challenges(header: str) -> list[Challenge]:
    """The challenges of a `WWW-Authenticate` header (`Bearer realm="...",service="..."`)."""
    challenges: list[Challenge] = []
    pos = 0
    while pos < len(header):
        scheme = re.match(r"[\s,]*([A-Za-z][A-Za-z0-9_-]*)", header[pos:])
        if not scheme:
            break
        pos += scheme.end()
        params: dict[str, str] = {}
        while m := _PARAM.match(header, pos):
            value = m.group(2) if m.group(2) is not None else m.group(3)
            params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
            pos = m.end()
        challenges.append(Challenge(scheme.group(1).lower(), params))
    return challenges


def pick_challenge(header: str) -> Challenge | None:
    """The challenge to answer: bearer if offered, else basic."""
    found = {c.scheme: c for c in parse_challenges(header)}
    return found.get("bearer") or found.get("basic")


def repository_scope(repository: str, actions: str) -> str:
    return f"repository:{repository}:{actions}"


@dataclass(frozen=True)
class _Token:
    value: str = field(repr=False)
    expires: float


class Authenticator:
    """The auth state of one registry, shared by the threads that talk to it."""

    def __init__(
        self,
        registry: str,
        session: requests.Session,
        credentials: Callable[[], Credentials | None],
        deadlines: Deadlines,
        tls_for: Callable[[str], HostTLS],
    ) -> None:
        self.registry = registry
        self.session = session
        self._lookup = credentials
        self._credentials: Credentials | None = None
        self._looked_up = False
        self.deadlines = deadlines
        self.tls_for = tls_for
        self.challenge: Challenge | None = None
        self._tokens: dict[frozenset[str], _Token] = {}
        self._lock = threading.Lock()
        self._fetching = threading.Lock()

    def credentials(self) -> Credentials | None:
        with self._lock:
            if not self._looked_up:
                self._credentials = self._lookup()
                self._looked_up = True
            return self._credentials

    def header(self, scopes: Iterable[str]) -> dict[str, str]:
        """The Authorization header to send for a request needing `scopes` (may fetch a token)."""
        challenge = self.challenge
        if challenge is None:
            return {}
        if challenge.scheme == "basic":
            creds = self.credentials()
            if creds is None:
                raise AuthError(
                    f"{self.registry} requires a user name and password: run `ocibuild login {self.registry}`"
                )
            return {"Authorization": creds.basic()}
        return {"Authorization": "Bearer " + self._token(frozenset(scopes), challenge)}

    def refused(self, response: requests.Response, scopes: Iterable[str], sent: str = "") -> None:
        """Take in a 401 to a request that carried `sent` (its Authorization header): learn the
        challenge and forget that token, unless another thread has replaced it already."""
        challenge = pick_challenge(response.headers.get("WWW-Authenticate", ""))
        if challenge is None:
            raise AuthError(f"{self.registry} answered 401 without a challenge we can answer")
        key = frozenset(scopes)
        with self._lock:
            self.challenge = challenge
            cached = self._tokens.get(key)
            if cached and sent == "Bearer " + cached.value:
                del self._tokens[key]

    def _token(self, scopes: frozenset[str], challenge: Challenge) -> str:
        # one fetch at a time, so that parallel requests wait for a token rather than each
        # asking the token service for its own
        with self._fetching:
            with self._lock:
                cached = self._tokens.get(scopes)
            if cached and cached.expires > time.monotonic():
                return cached.value
            token = self._fetch_token(scopes, challenge)
            with self._lock:
                self._tokens[scopes] = token
            return token.value

    def _fetch_token(self, scopes: frozenset[str], challenge: Challenge) -> _Token:
        realm = challenge.realm
        if not realm.startswith(("https://", "http://")):
            raise AuthError(f"{self.registry}: bearer challenge without a usable realm ({realm!r})")
        params: list[tuple[str, str]] = []
        if service := challenge.params.get("service"):
            params.append(("service", service))
        params += [("scope", s) for s in sorted(scopes)]
        creds = self.credentials()
        headers = {}
        if creds is not None:
            params.append(("account", creds.username))
            headers["Authorization"] = creds.basic()
        where = f"token service {urlsplit(realm).netloc} of {self.registry}"
        started = time.monotonic()
        try:
            response = send(
                self.session,
                "GET",
                realm,
                tls=self.tls_for(urlsplit(realm).netloc),
                deadlines=self.deadlines,
                params=params,
                headers=headers,
            )
        except NetworkError as e:
            raise RegistryError(str(e), where) from None
        if response.status_code in (401, 403):
            who = f"user {creds.username!r}" if creds else "anonymous access"
            raise AuthError(
                f"{where} refused {who} (HTTP {response.status_code})"
                + ("" if creds else f": run `ocibuild login {self.registry}`")
            )
        if response.status_code != 200:
            raise RegistryError(f"{where} answered HTTP {response.status_code}")
        try:
            body = read_json_body(response, TOKEN_ANSWER, where)
        except (NetworkError, ValueError) as e:
            raise AuthError(f"no token: {e}") from None
        fields = body if isinstance(body, dict) else {}
        value = fields.get("token") or fields.get("access_token")
        expires = fields.get("expires_in")
        lifetime = _DEFAULT_TOKEN_LIFETIME
        if isinstance(expires, int | float) and 0 < expires < 10**9:
            lifetime = int(expires)
        if not value or not isinstance(value, str):
            raise AuthError(f"{where} answered without a token")
        secrets.register(value)
        log.debug(
            "token for %s: %s, valid %d s", self.registry, " ".join(sorted(scopes)) or "-", lifetime
        )
        return _Token(value, started + lifetime - min(30.0, lifetime / 10))
