"""Downloads into a content-addressed cache, verified against the recipe's lock file.

`file://` URLs and plain paths are read here (a mirror on disk: regular files only, a missing
one answered like a 404); `http://` and `https://` URLs through `web` (`ocibuild.net`'s session
and TLS rules), under one retry policy. A 404 or a size/digest mismatch is reported at once;
every failure names what was being fetched, the URL and the cause, at the recipe line (`origin`)
that asked for it, and, for a failure to reach the server, how to point at another mirror
(`hint`).
Offline, a pinned file comes from the cache by its digest, an unpinned one by its URL.
`start_all` downloads in the background, so a source can hand out work that waits on each file;
setting `cancel` stops every download at its next chunk.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import urllib.parse
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ocibuild.atomicfile import atomic_write_bytes
from ocibuild.cputime import stage
from ocibuild.errors import (
    Cancelled,
    DigestMismatchError,
    FetchError,
    LockError,
    MissingDownloadError,
    NetworkError,
    Origin,
    TransientError,
)
from ocibuild.fetch.lockfile import LockFile, Pin
from ocibuild.infile import open_regular_file
from ocibuild.limits import BLOB_SIZE, LimitError
from ocibuild.net.policy import NetworkPolicy
from ocibuild.net.retry import RetryPolicy, retrying
from ocibuild.progress import FetchEvent, Message, Reporter, silent
from ocibuild.secrets import public_url, register_url

if TYPE_CHECKING:
    from ocibuild.fetch.web import Web

CHUNK = 1 << 20
WEB = ("http", "https")
_WARNED_HOSTS: set[str] = set()  # hosts whose credentials in a URL were warned about
MIRROR = "{mirror}"
DOWNLOAD_RETRIES = RetryPolicy(retries=4)


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
    network: NetworkPolicy = field(default_factory=NetworkPolicy)
    update_lock: bool = False
    report: Reporter = silent
    mirror: str | None = None  # downloads below this root are pinned as `{mirror}/...`
    origin: Origin | str | None = None  # the recipe line the downloads are for
    hint: str = ""  # how to fetch from elsewhere: the option or variable naming the server
    retry: RetryPolicy = DOWNLOAD_RETRIES
    cancel: threading.Event = field(default_factory=threading.Event)  # set: downloads stop
    _web: Web | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # background fetches: one queue, in the order started, `parallel` threads that end when
    # the queue is empty
    _queue: deque[tuple[str, str, Future[Fetched]]] = field(default_factory=deque, repr=False)
    _workers: int = field(default=0, repr=False)

    @property
    def parallel(self) -> int:
        return self.network.downloads

    # -- cache layout: blobs/sha256/<hex>, urls/<sha256 of url> holding the hex ---------------
    def __post_init__(self) -> None:
        if self.mirror:
            self._credentials(self.mirror)

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

    def pinned(self, url: str) -> Pin | None:
        """What the lock file pins `url` to, if it does."""
        return self.lock.get(self.lock_key(url)) if self.lock else None

    def cached(self, url: str) -> Fetched | None:
        pin = self.pinned(url)
        if pin is None:
            return self._by_url(url)
        path = self._blob(pin.sha256)
        if not path.exists():
            return None
        return Fetched(url, path, path.stat().st_size, pin.sha256)

    def fetch(self, url: str, what: str = "") -> Fetched:
        """Return the file at `url` from the cache or the network, checked against the lock."""
        self._credentials(url)
        label = f"{what}: " if what else ""
        pin = self.pinned(url)
        hit = self.cached(url)
        if hit and (pin is None or hit.sha256 == pin.sha256):
            self.report(
                FetchEvent(
                    public_url(url), what, "cached", hit.size, hit.size, str(self.origin or "")
                )
            )
            self._pin(hit)
            return hit
        if self.network.offline:
            raise MissingDownloadError(
                f"{label}{public_url(url)} is not in the download cache {self.cache_dir} (offline)",
                self.origin,
            )
        fetched = self._download(url, what)
        changed = pin and (pin.sha256 != fetched.sha256 or pin.size != fetched.size)
        if pin and changed and not self.update_lock:
            where = self.lock.path if self.lock else "the lock file"
            raise LockError(
                f"{label}{public_url(url)} changed: got sha256 {fetched.sha256} ({fetched.size} bytes), "
                f"{where} pins sha256 {pin.sha256} ({pin.size} bytes); "
                "rebuild with --update-lock to accept the new file",
                self.origin,
            )
        self._pin(fetched)
        return fetched

    def fetch_fresh(
        self, url: str, what: str = "", sha256: str | None = None, accept: str = ""
    ) -> Fetched:
        """Download `url` again (a repository index changes under its URL), never pinning it in
        the lock. With `sha256` known in advance the cached blob is used and a download checked;
        offline, the last download of the URL is used. `accept`: the formats asked for, in
        order (an HTTP Accept header), where a server offers several under one URL."""
        self._credentials(url)
        label = f"{what}: " if what else ""
        if sha256:
            path = self._blob(sha256)
            if path.exists():
                self.report(
                    FetchEvent(
                        public_url(url),
                        what,
                        "cached",
                        path.stat().st_size,
                        0,
                        str(self.origin or ""),
                    )
                )
                return Fetched(url, path, path.stat().st_size, sha256)
        if self.network.offline:
            hit = self._by_url(url)
            if hit is None or (sha256 and hit.sha256 != sha256):
                raise MissingDownloadError(
                    f"{label}{public_url(url)} is not in the download cache {self.cache_dir} (offline)",
                    self.origin,
                )
            return hit
        fetched = self._download(url, what, accept)
        if sha256 and fetched.sha256 != sha256:
            raise DigestMismatchError(
                f"{label}{public_url(url)}: sha256 {fetched.sha256}, expected {sha256}", self.origin
            )
        return fetched

    def _credentials(self, url: str) -> None:
        """Keep a URL's password out of all output, and say once per host where it belongs:
        not in a recipe or on a command line (they are shared, logged, kept in shell
        histories), but in ~/.netrc, which every request reads."""
        register_url(url)
        host = urllib.parse.urlsplit(url).hostname or ""
        if public_url(url) != url and host not in _WARNED_HOSTS:
            _WARNED_HOSTS.add(host)
            self.report(
                Message(
                    f"{public_url(url)}: the URL holds credentials; ocibuild keeps them out of "
                    "the lock file, records and messages, but a recipe or command line holding "
                    f"them is easily shared: put them in ~/.netrc (machine {host} login ... "
                    "password ...), or use `ocibuild login` for a registry",
                    "warning",
                )
            )

    def _by_url(self, url: str) -> Fetched | None:
        try:
            sha = self._url_index(url).read_text().strip()
        except FileNotFoundError:
            return None
        path = self._blob(sha)
        return Fetched(url, path, path.stat().st_size, sha) if path.exists() else None

    def start_all(self, wanted: Sequence[tuple[str, str]]) -> list[Future[Fetched]]:
        """Start fetching (url, what) pairs in the background, after those started before,
        `parallel` at a time; each future gives what `fetch` returns or raises."""
        futures: list[Future[Fetched]] = [Future() for _ in wanted]
        with self._lock:
            self._queue.extend(
                (url, what, f) for (url, what), f in zip(wanted, futures, strict=True)
            )
            while self._workers < max(1, self.parallel) and self._workers < len(self._queue):
                self._workers += 1
                threading.Thread(target=self._fetch_queued, name="fetch").start()
        return futures

    def _fetch_queued(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._workers -= 1
                    return
                url, what, future = self._queue.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self.fetch(url, what))
            except BaseException as e:  # handed to whoever waits on the future
                future.set_exception(e)

    def size(self, url: str) -> int | None:
        """The size of the file at `url` without downloading it: pinned, cached, or the
        Content-Length of a HEAD request (None when the server does not say)."""
        pin = self.pinned(url)
        if pin is not None:
            return pin.size
        if hit := self.cached(url):
            return hit.size
        if self.network.offline:
            return None
        parts = urllib.parse.urlsplit(url)
        if parts.scheme in WEB:
            return self.web().size(url)
        path = _local_path(url)
        return path.stat().st_size if path.is_file() else None

    def _pin(self, fetched: Fetched) -> None:
        if self.lock is not None:
            self.lock.set(Pin(self.lock_key(fetched.url), fetched.size, fetched.sha256))

    def _download(self, url: str, what: str, accept: str = "") -> Fetched:
        label = f"{what}: " if what else ""

        def on_retry(attempt: int, delay: float, error: TransientError) -> None:
            self.report(Message(f"{label}{error}; retrying in {delay:.1f}s"))

        try:
            with stage("download"):
                return retrying(
                    lambda: self._download_once(url, what, accept), self.retry, on_retry
                )
        except MissingDownloadError:
            raise
        except LimitError as e:
            raise FetchError(str(e), self.origin) from None
        except OSError as e:  # the cache's disk: full, read-only, gone
            raise FetchError(
                f"{label}cannot write to the download cache {self.cache_dir}: {e.strerror or e}",
                self.origin,
            ) from None
        except NetworkError as e:
            unreachable = e.cause != "http" or isinstance(e, TransientError)
            hint = f"; {self.hint}" if self.hint and unreachable else ""
            raise FetchError(f"{label}{e.message}{hint}", self.origin) from None

    def _download_once(self, url: str, what: str, accept: str = "") -> Fetched:
        if self.cancel.is_set():
            raise Cancelled(f"download of {public_url(url)} not started", self.origin)
        at = str(self.origin or "")  # the recipe line, in the events
        label = f"{what}: " if what else ""
        tmp_dir = self.cache_dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=tmp_dir)
        try:
            h = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb") as out, self._body(url, what, accept) as (expected, chunks):
                BLOB_SIZE.check(expected or 0, f"{label}{public_url(url)}")
                self.report(
                    FetchEvent(public_url(url), what, "downloading", expected, 0, at)
                )  # answered
                for chunk in chunks:
                    if self.cancel.is_set():
                        raise Cancelled(f"download of {public_url(url)} stopped", self.origin)
                    out.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
                    BLOB_SIZE.check(size, f"{label}{public_url(url)}")
                    self.report(
                        FetchEvent(public_url(url), what, "downloading", expected, size, at)
                    )
            if expected is not None and size != expected:
                raise TransientError(
                    f"{public_url(url)}: truncated: got {size} of {expected} bytes", cause="broken"
                )
            sha = h.hexdigest()
            target = self._blob(sha)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
            atomic_write_bytes(self._url_index(url), sha.encode())
            self.report(FetchEvent(public_url(url), what, "downloaded", size, size, at))
            return Fetched(url, target, size, sha)
        finally:
            Path(tmp).unlink(missing_ok=True)

    @contextmanager
    def _body(
        self, url: str, what: str, accept: str = ""
    ) -> Iterator[tuple[int | None, Iterator[bytes]]]:
        """The size of the file at `url` (if known) and its chunks: a web URL's through
        `web`, a file on disk's read here; MissingDownloadError when there is none."""
        label = f"{what}: " if what else ""
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme in WEB:
            with self.web().body(url, label, CHUNK, accept) as answer:
                yield answer
        elif scheme in ("", "file"):
            with self._open_file(url, label) as f:
                yield os.fstat(f.fileno()).st_size, self._file_chunks(f, url, label)
        else:
            raise FetchError(
                f"{label}{public_url(url)}: unsupported URL scheme {scheme!r}", self.origin
            )

    def _open_file(self, url: str, label: str) -> BinaryIO:
        """A mirror on disk answers like a web server: the file, or none (a 404), or a
        refusal naming why (only a regular file is read: never a FIFO or a device)."""
        try:
            return open_regular_file(_local_path(url))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise MissingDownloadError(
                f"{label}{public_url(url)}: no such file", self.origin
            ) from None
        except OSError as e:
            reason = (e.strerror or str(e)).lower()
            raise FetchError(f"{label}{public_url(url)}: {reason}", self.origin) from None

    def _file_chunks(self, f: BinaryIO, url: str, label: str) -> Iterator[bytes]:
        try:
            while chunk := f.read(CHUNK):
                yield chunk
        except OSError as e:  # the mirror's disk, not the cache's
            raise FetchError(
                f"{label}cannot read {public_url(url)}: {e.strerror or e}", self.origin
            ) from None

    def web(self) -> Web:
        """The web side, made at the first web URL (it loads requests)."""
        with self._lock:
            if self._web is None:
                from ocibuild.fetch.web import Web

                self._web = Web(self.network, self.origin)
            return self._web

    def exists(self, url: str) -> bool:
        """Whether `url` can be fetched (cached, or answered without 404); used for fallbacks."""
        if self.cached(url):
            return True
        if self.network.offline:
            return False
        try:
            with self._body(url, ""):
                pass
        except MissingDownloadError:
            return False
        except NetworkError as e:
            hint = f"; {self.hint}" if self.hint else ""
            raise FetchError(f"{e.message}{hint}", self.origin) from None
        return True


def _local_path(url: str) -> Path:
    """The file a `file://` URL or a plain path names."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        return Path(urllib.parse.unquote(parts.path))
    return Path(url)
