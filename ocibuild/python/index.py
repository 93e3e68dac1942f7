"""Package indexes: the files a project offers, from a PEP 691 JSON page, a PEP 503 HTML page
(asked for in that order with one request) or a local directory of wheels (pip's
`--find-links`).

Pages are read through the download cache (`Fetcher.fetch_fresh`: fetched anew online, the
last copy offline). A project an index does not have (404) is simply not there; any other
failure, and a page that is neither JSON nor HTML or is malformed, is an error naming its URL.
"""

from __future__ import annotations

import html.parser
import posixpath
import threading
import urllib.parse
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from ocibuild.errors import MissingDownloadError, SourceError
from ocibuild.fetch import Fetched, Fetcher
from ocibuild.jsonread import read_json

PYPI = "https://pypi.org/simple"
PREFETCH = 4  # project pages read at once ahead of the resolver
ACCEPT = (
    "application/vnd.pypi.simple.v1+json, "
    "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
)


@dataclass(frozen=True)
class Link:
    """One file of a project, as an index lists it."""

    filename: str
    url: str  # absolute, without the `#sha256=` fragment
    sha256: str = ""  # "" when the index gives none
    requires_python: str = ""
    yanked: bool = False
    # PEP 658/714: the wheel's METADATA is served at `url + ".metadata"`; its sha256 or ""
    metadata: bool = False
    metadata_sha256: str = ""

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")


def _file_url(path: Path) -> str:
    return path.absolute().as_uri()


def _split_hash(url: str) -> tuple[str, str]:
    """The URL without its fragment, and the fragment's sha256 (`#sha256=...`), if any."""
    base, _, fragment = url.partition("#")
    name, _, value = fragment.partition("=")
    return base, value.lower() if name == "sha256" else ""


def _metadata_field(value: object) -> tuple[bool, str]:
    """PEP 691's `core-metadata` value, or PEP 503's `data-core-metadata` attribute text."""
    if isinstance(value, dict):
        return True, str(value.get("sha256", "")).lower()
    if isinstance(value, str):
        name, _, digest = value.partition("=")
        return value.lower() != "false", digest.lower() if name == "sha256" else ""
    return bool(value), ""


def parse_json_page(text: str, page_url: str) -> list[Link]:
    """The files of a PEP 691 project page."""
    try:
        page: Any = read_json(text, page_url)  # checked as it is read: errors below
        if not isinstance(page, dict) or not isinstance(page.get("files"), list):
            raise ValueError("no list of files")
        links = []
        for item in page["files"]:
            url, fragment = _split_hash(urllib.parse.urljoin(page_url, str(item["url"])))
            hashes = item.get("hashes") or {}
            metadata, metadata_sha = _metadata_field(
                item.get("core-metadata", item.get("dist-info-metadata", False))
            )
            links.append(
                Link(
                    filename=str(item["filename"]),
                    url=url,
                    sha256=str(hashes.get("sha256", fragment)).lower(),
                    requires_python=str(item.get("requires-python") or ""),
                    yanked=bool(item.get("yanked", False)),
                    metadata=metadata,
                    metadata_sha256=metadata_sha,
                )
            )
        return links
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise SourceError(f"{page_url}: not a valid PEP 691 project page ({e})") from None


class _Anchors(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[dict[str, str | None]] = []
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.anchors.append(dict(attrs))
        elif tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")


def parse_html_page(text: str, page_url: str) -> list[Link]:
    """The files of a PEP 503 project page (or a find-links page)."""
    parser = _Anchors()
    parser.feed(text)
    parser.close()
    base = urllib.parse.urljoin(page_url, parser.base) if parser.base else page_url
    links = []
    for anchor in parser.anchors:
        href = anchor.get("href")
        if not href:
            continue
        url, digest = _split_hash(urllib.parse.urljoin(base, href))
        filename = urllib.parse.unquote(posixpath.basename(urllib.parse.urlsplit(url).path))
        metadata, metadata_sha = _metadata_field(
            anchor.get("data-core-metadata", anchor.get("data-dist-info-metadata", False))
        )
        links.append(
            Link(
                filename=filename,
                url=url,
                sha256=digest,
                requires_python=anchor.get("data-requires-python") or "",
                yanked="data-yanked" in anchor,
                metadata=metadata,
                metadata_sha256=metadata_sha,
            )
        )
    return links


def parse_page(data: bytes, url: str) -> list[Link]:
    """A project page, JSON or HTML by its first character (a JSON page is an object)."""
    text = data.decode("utf-8", "replace")
    first = text.lstrip()[:1]
    if first == "{":
        return parse_json_page(text, url)
    if first == "<" or not first:
        return parse_html_page(text, url)
    raise SourceError(f"{url}: the index answered neither JSON nor HTML ({text[:40]!r}...)")


@dataclass(frozen=True)
class IndexConfig:
    """Where wheels are looked for: index base URLs (the first is pip's `index-url`) and
    local directories or pages of wheels (`find-links`)."""

    index_urls: tuple[str, ...] = (PYPI,)
    find_links: tuple[str, ...] = ()

    def describe(self) -> str:
        return ", ".join([*self.index_urls, *self.find_links]) or "no index (find-links empty)"


class Index:
    """The files each project offers across the configured indexes, each page read once."""

    def __init__(self, config: IndexConfig, fetcher: Fetcher) -> None:
        self.config = config
        self.fetcher = fetcher
        self._pages: dict[str, Future[list[Link]]] = {}
        self._local: list[Link] | None = None
        self._mutex = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def project(self, name: str) -> list[Link]:
        """Every file of project `name` the indexes list (an unknown project: none)."""
        key = canonicalize_name(name)
        with self._mutex:
            future = self._pages.get(key)
            mine = future is None
            if future is None:
                future = self._pages[key] = Future()
        if mine:
            self._load(key, future)
        return future.result()

    def prefetch(self, names: Iterable[str]) -> None:
        """Read these projects' pages in the background (resolution will ask for them)."""
        for name in names:
            key = canonicalize_name(name)
            with self._mutex:
                if key in self._pages:
                    continue
                future = self._pages[key] = Future()
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(PREFETCH, thread_name_prefix="index")
                self._pool.submit(self._load, key, future)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _load(self, key: str, future: Future[list[Link]]) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            links = [*self._find_links(key)]
            for base in self.config.index_urls:
                links.extend(self._page(f"{base.rstrip('/')}/{key}/", key))
        except BaseException as e:  # handed to whoever asks for the project
            future.set_exception(e)
        else:
            future.set_result(links)

    def _page(self, url: str, name: str) -> list[Link]:
        fetch_url = url
        if urllib.parse.urlsplit(url).scheme == "file":
            fetch_url = url + "index.html"  # a directory index on disk, as pip reads it
        try:
            page = self.fetcher.fetch_fresh(fetch_url, f"index page of {name}", accept=ACCEPT)
        except MissingDownloadError:
            return []
        return parse_page(page.path.read_bytes(), url)

    def _find_links(self, key: str) -> Iterable[Link]:
        with self._mutex:
            if self._local is None:
                self._local = list(self._all_find_links())
            local = self._local
        for link in local:
            if _project_of(link.filename) == key:
                yield link

    def _all_find_links(self) -> Iterable[Link]:
        for place in self.config.find_links:
            scheme = urllib.parse.urlsplit(place).scheme
            if scheme in ("http", "https"):
                page = self.fetcher.fetch_fresh(place, "find-links page", accept="text/html")
                yield from parse_html_page(page.path.read_text("utf-8", "replace"), place)
                continue
            directory = Path(urllib.parse.unquote(urllib.parse.urlsplit(place).path))
            if not directory.is_dir():
                raise SourceError(f"find_links: {place} is not a directory")
            for path in sorted(directory.iterdir()):
                if path.is_file() and path.suffix in (".whl", ".gz", ".zip", ".bz2"):
                    yield Link(path.name, _file_url(path))

    def metadata(self, link: Link) -> bytes | None:
        """The wheel's METADATA file where the index serves it apart (PEP 658), else None."""
        if not link.metadata:
            return None
        fetched = self.fetcher.fetch_fresh(
            link.url + ".metadata",
            f"metadata of {link.filename}",
            sha256=link.metadata_sha256 or None,
        )
        return fetched.path.read_bytes()

    def download(self, link: Link) -> Fetched:
        """The file itself into the download cache, checked against the index's sha256."""
        return self.fetcher.fetch_fresh(link.url, link.filename, sha256=link.sha256 or None)


def _project_of(filename: str) -> str:
    """The canonical project name of a wheel or sdist file name ("" when it is neither)."""
    if filename.endswith(".whl"):
        return canonicalize_name(filename.split("-", 1)[0])
    for suffix in (".tar.gz", ".zip", ".tar.bz2"):
        if filename.endswith(suffix):
            return canonicalize_name(filename[: -len(suffix)].rpartition("-")[0])
    return ""


def index_urls(primary: str | None, extra: Sequence[str]) -> tuple[str, ...]:
    """pip's order: the index URL, then the extra ones, each once."""
    urls = [primary or PYPI, *extra]
    return tuple(dict.fromkeys(u.rstrip("/") for u in urls if u))
