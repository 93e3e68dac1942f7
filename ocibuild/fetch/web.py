"""The fetcher's web side: GET and HEAD of `http://` and `https://` URLs through `ocibuild.net`
(its session, TLS rules per host and deadlines). Only a web URL loads this module, and with it
requests, which takes a tenth of a second to import: a build from files on disk never pays it."""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests

from ocibuild.errors import MissingDownloadError, NetworkError, Origin
from ocibuild.net.body import body_chunks, content_length
from ocibuild.net.policy import NetworkPolicy
from ocibuild.net.session import new_session, send, status_failure
from ocibuild.net.tls import host_tls
from ocibuild.secrets import public_url

MISSING = (404, 410)


@dataclass
class Web:
    network: NetworkPolicy
    origin: Origin | str | None = None  # the recipe line the downloads are for
    _session: requests.Session | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def session(self) -> requests.Session:
        with self._lock:
            if self._session is None:
                self._session = new_session(self.network.downloads)
            return self._session

    def _send(self, method: str, url: str, accept: str = "") -> requests.Response:
        return send(
            self.session(),
            method,
            url,
            tls=host_tls(urllib.parse.urlsplit(url).netloc, self.network.insecure),
            deadlines=self.network.deadlines,
            stream=method == "GET",
            headers={"Accept": accept} if accept else None,
        )

    @contextmanager
    def body(
        self, url: str, label: str, chunk: int, accept: str = ""
    ) -> Iterator[tuple[int | None, Iterator[bytes]]]:
        """The answer to GET `url`, status 200: its announced size and its body's chunks;
        MissingDownloadError for a 404 or 410, the status's NetworkError for any other."""
        response = self._send("GET", url, accept)
        if response.status_code != 200:
            error = status_failure(response)
            if response.status_code in MISSING:
                raise MissingDownloadError(f"{label}{error.message}", self.origin)
            raise error
        with response:
            yield content_length(response, f"GET {public_url(url)}"), body_chunks(response, chunk)

    def size(self, url: str) -> int | None:
        """The Content-Length of a HEAD request (None when the server does not say, or does
        not answer: the download reports that, with the retries downloads get)."""
        try:
            response = self._send("HEAD", url)
            length = content_length(response, url)
        except NetworkError:
            return None
        return length if response.status_code == 200 else None
