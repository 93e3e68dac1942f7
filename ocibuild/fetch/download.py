"""Downloads into a content-addressed cache, verified against the recipe's lock file.

`file://`, `http://` and `https://` URLs. Retries with backoff on connection errors and 5xx;
a 404 or a size/digest mismatch is reported at once, naming what was being fetched and the URL.
Offline, a pinned file comes from the cache by its digest, an unpinned one by its URL.
"""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocibuild.atomicfile import atomic_write_bytes
from ocibuild.errors import DigestMismatchError, FetchError, LockError
from ocibuild.fetch.lockfile import LockFile, Pin
from ocibuild.progress import FetchEvent, Message, Reporter, silent

CHUNK = 1 << 20
MIRROR = "{mirror}"


def default_cache_dir() -> Path:
    if env := os.environ.get("OCIBUILD_CACHE"):
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "ocibuild"


@dataclass(frozen=True)
class Fetched:
    url: str
    path: Path
    size: int
    sha256: str


@dataclass
class Fetcher:
    cache_dir: Path
    lock: LockFile | None = None
    offline: bool = False
    update_lock: bool = False
    report: Reporter = silent
    retries: int = 4
    backoff: float = 0.5
    timeout: float = 60.0
    parallel: int = 4
    mirror: str | None = None  # downloads below this root are pinned as `{mirror}/...`
    _session: Any = field(default=None, repr=False)

    # -- cache layout: blobs/sha256/<hex>, urls/<sha256 of url> holding the hex ---------------
    def _blob(self, sha256: str) -> Path:
        return self.cache_dir / "blobs" / "sha256" / sha256

    def _url_index(self, url: str) -> Path:
        return self.cache_dir / "urls" / hashlib.sha256(url.encode()).hexdigest()

    def lock_key(self, url: str) -> str:
        """Under which name `url` is pinned: relative to `mirror` when below it, so a lock
        written against scisoft still checks a site mirror's (or a local copy's) files."""
        if self.mirror and url.startswith(self.mirror.rstrip("/") + "/"):
            return MIRROR + url[len(self.mirror.rstrip("/")) :]
        return url

    def _pinned(self, url: str) -> Pin | None:
        return self.lock.get(self.lock_key(url)) if self.lock else None

    def cached(self, url: str) -> Fetched | None:
        pin = self._pinned(url)
        if pin is None:
            return self._by_url(url)
        path = self._blob(pin.sha256)
        if not path.exists():
            return None
        return Fetched(url, path, path.stat().st_size, pin.sha256)

    def fetch(self, url: str, what: str = "") -> Fetched:
        """Return the file at `url` from the cache or the network, checked against the lock."""
        label = f"{what}: " if what else ""
        pin = self._pinned(url)
        hit = self.cached(url)
        if hit and (pin is None or hit.sha256 == pin.sha256):
            self.report(FetchEvent(url, what, "cached", hit.size, hit.size))
            self._pin(hit)
            return hit
        if self.offline:
            raise FetchError(
                f"{label}{url} is not in the download cache {self.cache_dir} (offline)"
            )
        fetched = self._download(url, what)
        changed = pin and (pin.sha256 != fetched.sha256 or pin.size != fetched.size)
        if pin and changed and not self.update_lock:
            where = self.lock.path if self.lock else "the lock file"
            raise LockError(
                f"{label}{url} changed: got sha256 {fetched.sha256} ({fetched.size} bytes), "
                f"{where} pins sha256 {pin.sha256} ({pin.size} bytes); "
                "rebuild with --update-lock to accept the new file"
            )
        self._pin(fetched)
        return fetched

    def fetch_fresh(self, url: str, what: str = "", sha256: str | None = None) -> Fetched:
        """Download `url` again (a repository index changes under its URL), never pinning it in
        the lock. With `sha256` known in advance the cached blob is used and a download checked;
        offline, the last download of the URL is used."""
        label = f"{what}: " if what else ""
        if sha256:
            path = self._blob(sha256)
            if path.exists():
                self.report(FetchEvent(url, what, "cached", path.stat().st_size))
                return Fetched(url, path, path.stat().st_size, sha256)
        if self.offline:
            hit = self._by_url(url)
            if hit is None or (sha256 and hit.sha256 != sha256):
                raise FetchError(
                    f"{label}{url} is not in the download cache {self.cache_dir} (offline)"
                )
            return hit
        fetched = self._download(url, what)
        if sha256 and fetched.sha256 != sha256:
            raise DigestMismatchError(f"{label}{url}: sha256 {fetched.sha256}, expected {sha256}")
        return fetched

    def _by_url(self, url: str) -> Fetched | None:
        try:
            sha = self._url_index(url).read_text().strip()
        except FileNotFoundError:
            return None
        path = self._blob(sha)
        return Fetched(url, path, path.stat().st_size, sha) if path.exists() else None

    def fetch_all(self, requests: Sequence[tuple[str, str]]) -> list[Fetched]:
        """Fetch (url, what) pairs in parallel; the first failure is raised."""
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=max(1, self.parallel)) as pool:
            return list(pool.map(lambda r: self.fetch(*r), requests))

    def _pin(self, fetched: Fetched) -> None:
        if self.lock is not None:
            self.lock.set(Pin(self.lock_key(fetched.url), fetched.size, fetched.sha256))

    def _download(self, url: str, what: str) -> Fetched:
        label = f"{what}: " if what else ""
        attempt = 0
        while True:
            try:
                return self._download_once(url, what)
            except _Retryable as e:
                attempt += 1
                if attempt > self.retries:
                    raise FetchError(f"{label}{url}: {e} (after {attempt} attempts)") from None
                delay = self.backoff * 2 ** (attempt - 1) * (1 + random.random() / 2)
                self.report(Message(f"{label}{url}: {e}; retrying in {delay:.1f}s"))
                time.sleep(delay)

    def _download_once(self, url: str, what: str) -> Fetched:
        label = f"{what}: " if what else ""
        tmp_dir = self.cache_dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=tmp_dir)
        try:
            h = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb") as out:
                chunks, expected = self._open(url, label)
                for chunk in chunks:
                    out.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
                    self.report(FetchEvent(url, what, "downloading", expected, size))
            if expected is not None and size != expected:
                raise _Retryable(f"truncated: got {size} of {expected} bytes")
            sha = h.hexdigest()
            target = self._blob(sha)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
            atomic_write_bytes(self._url_index(url), sha.encode())
            self.report(FetchEvent(url, what, "downloaded", size, size))
            return Fetched(url, target, size, sha)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def _open(self, url: str, label: str) -> tuple[Iterator[bytes], int | None]:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme == "file" or not parsed.scheme:
            path = Path(urllib.parse.unquote(parsed.path))
            try:
                f = open(path, "rb")
            except FileNotFoundError:
                raise FetchError(f"{label}{url}: not found") from None
            except OSError as e:
                raise FetchError(f"{label}{url}: {e.strerror}") from None
            return _file_chunks(f), path.stat().st_size
        if parsed.scheme not in ("http", "https"):
            raise FetchError(f"{label}{url}: unsupported URL scheme {parsed.scheme!r}")
        import requests

        if self._session is None:
            self._session = requests.Session()
        try:
            response = self._session.get(url, stream=True, timeout=self.timeout)
        except requests.RequestException as e:
            raise _Retryable(f"{type(e).__name__}") from None
        if response.status_code >= 500 or response.status_code in (408, 429):
            response.close()
            raise _Retryable(f"HTTP {response.status_code}")
        if response.status_code != 200:
            response.close()
            raise FetchError(f"{label}{url}: HTTP {response.status_code} {response.reason}")
        length = response.headers.get("Content-Length")
        return _http_chunks(response), int(length) if length and length.isdigit() else None

    def exists(self, url: str) -> bool:
        """Whether `url` can be fetched (cached, or answered without 404); used for fallbacks."""
        if self.cached(url):
            return True
        if self.offline:
            return False
        try:
            chunks, _ = self._open(url, "")
        except FetchError:
            return False
        close = getattr(chunks, "close", None)
        if close:
            close()
        return True


class _Retryable(Exception):
    pass


def _file_chunks(f: Any) -> Iterator[bytes]:
    with f:
        while chunk := f.read(CHUNK):
            yield chunk


def _http_chunks(response: Any) -> Iterator[bytes]:
    import requests

    with response:
        try:
            yield from response.iter_content(CHUNK)
        except requests.RequestException as e:
            raise _Retryable(f"connection broken ({type(e).__name__})") from None
