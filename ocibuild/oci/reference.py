"""Image references, normalized the way docker does.

`centos:6.7` -> `docker.io/library/centos:6.7`; `paterno/centos67base` ->
`docker.io/paterno/centos67base:latest`; `localhost:5000/x@sha256:...` keeps its digest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ocibuild.errors import OcibuildError
from ocibuild.oci.digest import Digest, is_digest

DOCKER_HUB = "docker.io"
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
DOCKER_HUB_CREDENTIALS_KEY = "https://index.docker.io/v1/"
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPO = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
MAX_HOST = 255 + 6  # a DNS name, and a port
MAX_NAME = 255  # registry/repository, as the distribution spec and docker limit it
_DOMAIN = re.compile(r"^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")


class ReferenceError(OcibuildError, ValueError):
    pass


def registry_endpoint(registry: str) -> str:
    """The host to talk to: Docker Hub's API lives on another host than its name."""
    return DOCKER_HUB_ENDPOINT if registry == DOCKER_HUB else registry


def registry_credentials_key(registry: str) -> str:
    """The key credentials are filed under (docker's config.json, credential helpers)."""
    return DOCKER_HUB_CREDENTIALS_KEY if registry == DOCKER_HUB else registry


def check_registry(host: str, given: str | None = None) -> str:
    """`host` (`name[:port]`, `[v6]:port`) if it is a registry's host, else a ReferenceError."""
    if not _DOMAIN.match(host) or len(host) > MAX_HOST:
        raise ReferenceError(
            f"invalid registry {given or host!r}: expected HOST[:PORT], [IPv6][:PORT] or a URL "
            "of one"
        )
    _check_port(host, given or host)
    return host


def _check_port(host: str, given: str) -> None:
    port = host.rpartition("]")[2].rpartition(":")[2] if ":" in host.rpartition("]")[2] else ""
    if port and not 0 < int(port[:6]) <= 65535:
        raise ReferenceError(f"invalid registry {given!r}: port {port[:10]} is not in 1..65535")


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    tag: str = ""
    digest: Digest | None = None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def endpoint(self) -> str:
        return registry_endpoint(self.registry)

    @property
    def credentials_key(self) -> str:
        return registry_credentials_key(self.registry)

    @property
    def identifier(self) -> str:
        """What goes after /manifests/: the digest if pinned, else the tag."""
        return str(self.digest) if self.digest else (self.tag or DEFAULT_TAG)

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.registry, self.repository, tag, None)

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_reference(text: str, default_tag: str = DEFAULT_TAG) -> Reference:
    """Parse a reference; a missing tag becomes `default_tag` unless a digest pins it."""
    original = text
    text = text.strip()
    if not text:
        raise ReferenceError("empty image reference")
    digest = None
    if "@" in text:
        text, _, digest_text = text.partition("@")
        if not is_digest(digest_text):
            raise ReferenceError(f"{original!r}: {digest_text!r} is not a sha256 digest")
        digest = Digest(digest_text)
    tag = ""
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        text, tag = text[:colon], text[colon + 1 :]
        if not _TAG.match(tag):
            raise ReferenceError(f"{original!r}: invalid tag {tag!r}")
    first, sep, rest = text.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        if not _DOMAIN.match(first) or len(first) > MAX_HOST:
            raise ReferenceError(f"{original!r}: invalid registry {first!r}")
        _check_port(first, original)
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, text
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if len(registry) + 1 + len(repository) > MAX_NAME:
        raise ReferenceError(
            f"{original[:80]!r}...: a name of {len(registry) + 1 + len(repository)} characters, "
            f"more than {MAX_NAME} (the distribution spec's limit)"
        )
    if not _REPO.match(repository):
        raise ReferenceError(
            f"{original!r}: invalid repository name {repository!r} "
            "(lowercase letters, digits and separators . _ - /)"
        )
    if not tag and digest is None:
        tag = default_tag
    return Reference(registry, repository, tag, digest)
