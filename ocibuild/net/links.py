"""Where a server may send ocibuild: redirects, links found in documents (an rpm repository's
`xml:base`, a registry's `Link: <...>; rel="next"`), and the pages of a paginated answer.

A server never sends ocibuild to a `file://` URL, a FIFO or a device: a redirect or a link
goes to http or https only. A document that is itself a local file (a repository the user
named as `file:///srv/repo`) may link to files below its own directory, nowhere else: a
`file://` URL is read only where the user wrote it.
"""

from __future__ import annotations

import posixpath
from urllib.parse import urljoin, urlsplit, urlunsplit

from ocibuild.errors import NetworkError
from ocibuild.limits import PAGES
from ocibuild.secrets import public_url

WEB = ("http", "https")
MAX_REDIRECTS = 10


def redirect_target(url: str, location: str) -> str:
    """The URL a redirect from `url` to `location` leads to, if ocibuild may follow it."""
    target = urljoin(url, location)
    scheme = urlsplit(target).scheme.lower()
    if scheme not in WEB:
        raise NetworkError(
            f"{public_url(url)} redirects to {public_url(target)}: ocibuild follows redirects "
            "to http and https only",
            cause="redirect",
        )
    return target


def linked_url(document: str, link: str, what: str) -> str:
    """The URL `link` (found in the document at URL `document`: a repository index) names:
    http or https, or a file below the document's own directory when it is a local file."""
    target = urljoin(document, link)
    scheme = urlsplit(target).scheme.lower()
    if scheme in WEB:
        return target
    if scheme == "file" and urlsplit(document).scheme.lower() == "file":
        root = posixpath.dirname(urlsplit(document).path)
        path = posixpath.normpath(urlsplit(target).path)
        if path == root or path.startswith(root.rstrip("/") + "/"):
            return target
    raise NetworkError(
        f"{what}: {public_url(document)} links to {public_url(target)}: a repository may "
        "send ocibuild to http and https URLs only (a file:// URL is read only where a recipe "
        "or the command line names it)",
        cause="redirect",
    )


class Pages:
    """The pages of one paginated answer (`Link: <...>; rel="next"`): each next page on the same
    host over http(s), never one seen before, at most `OCIBUILD_MAX_PAGES` of them."""

    def __init__(self, first: str, what: str) -> None:
        self.what = what
        self.host = urlsplit(first).netloc
        self.seen = {first}

    def next(self, current: str, link: str | None) -> str | None:
        """The URL of the page after `current` (whose `next` link is `link`), or None."""
        if not link:
            return None
        target = urljoin(current, link)
        parts = urlsplit(target)
        if parts.scheme.lower() not in WEB or parts.netloc != self.host:
            raise NetworkError(
                f"{self.what}: the next page is {public_url(target)}, not on {self.host}",
                cause="redirect",
            )
        if target in self.seen:
            raise NetworkError(
                f"{self.what}: the pages loop (page {len(self.seen) + 1} is {public_url(target)}, "
                "seen before)",
                cause="redirect",
            )
        self.seen.add(target)
        PAGES.check(len(self.seen), self.what)
        return target


def safe_url(url: str) -> str:
    """A URL fit for a message: without its query (upload state, tokens) and user info."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port:
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
