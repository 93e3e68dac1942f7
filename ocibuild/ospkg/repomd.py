"""yum/dnf repository metadata: `repodata/repomd.xml` and the `primary` package list."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from ocibuild.errors import SourceError
from ocibuild.ospkg.rpmver import EVR, flags_of, symbol

REPO_NS = "{http://linux.duke.edu/metadata/repo}"
COMMON_NS = "{http://linux.duke.edu/metadata/common}"
RPM_NS = "{http://linux.duke.edu/metadata/rpm}"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"


@dataclass(frozen=True)
class RepoFile:
    """One metadata file repomd.xml points at."""

    href: str
    checksum_type: str
    checksum: str


@dataclass(frozen=True)
class Capability:
    """A Provides or Requires entry: name, optional range, and whether it is a pre-requirement."""

    name: str
    flags: int = 0
    evr: EVR = field(default_factory=EVR)

    def __str__(self) -> str:
        return f"{self.name} {symbol(self.flags)} {self.evr}" if self.flags else self.name


@dataclass(frozen=True)
class RpmPackage:
    name: str
    arch: str
    evr: EVR
    checksum_type: str
    checksum: str
    href: str
    base: str  # xml:base of the location, when the package lives elsewhere
    size: int
    repo: str
    provides: tuple[Capability, ...]
    requires: tuple[Capability, ...]
    files: tuple[str, ...]
    license: str = ""  # as the package declares it (rpm's License tag)
    vendor: str = ""

    @property
    def nevra(self) -> str:
        return f"{self.name}-{self.evr}.{self.arch}"

    @property
    def url(self) -> str:
        base = self.base or self.repo
        return base.rstrip("/") + "/" + self.href.lstrip("/")


def parse_repomd(data: bytes, what: str) -> dict[str, RepoFile]:
    """The metadata files of a repository by type (`primary`, `filelists`, ...)."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise SourceError(f"{what}: not valid repomd XML ({e})") from None
    out = {}
    for item in root.iter(f"{REPO_NS}data"):
        location = item.find(f"{REPO_NS}location")
        checksum = item.find(f"{REPO_NS}checksum")
        if location is None or checksum is None:
            continue
        out[item.get("type", "")] = RepoFile(
            location.get("href", ""), checksum.get("type", "sha256"), (checksum.text or "").strip()
        )
    if "primary" not in out:
        raise SourceError(f"{what}: repomd.xml lists no primary metadata")
    return out


def parse_primary(stream: BinaryIO, repo: str, what: str) -> Iterator[RpmPackage]:
    """Stream the packages of a primary.xml (already decompressed)."""
    try:
        for _, element in ET.iterparse(stream, events=("end",)):
            if element.tag == f"{COMMON_NS}package":
                if element.get("type", "rpm") == "rpm":
                    yield _package(element, repo, what)
                element.clear()
    except ET.ParseError as e:
        raise SourceError(f"{what}: malformed primary.xml ({e})") from None


def _package(element: ET.Element, repo: str, what: str) -> RpmPackage:
    def text(tag: str) -> str:
        child = element.find(f"{COMMON_NS}{tag}")
        return (child.text or "").strip() if child is not None else ""

    version = element.find(f"{COMMON_NS}version")
    checksum = element.find(f"{COMMON_NS}checksum")
    location = element.find(f"{COMMON_NS}location")
    size = element.find(f"{COMMON_NS}size")
    fmt = element.find(f"{COMMON_NS}format")
    name = text("name")
    if version is None or checksum is None or location is None or fmt is None:
        raise SourceError(f"{what}: package {name or '?'} lacks version, checksum or location")
    try:
        return RpmPackage(
            name=name,
            arch=text("arch"),
            evr=_evr(version),
            checksum_type=checksum.get("type", "sha256"),
            checksum=(checksum.text or "").strip(),
            href=location.get("href", ""),
            base=location.get(XML_BASE, ""),
            size=int(size.get("package", "0")) if size is not None else 0,
            repo=repo,
            provides=_capabilities(fmt, "provides"),
            requires=_capabilities(fmt, "requires"),
            files=tuple((f.text or "") for f in fmt.iter(f"{COMMON_NS}file")),
            license=_text(fmt.find(f"{RPM_NS}license")),
            vendor=_text(fmt.find(f"{RPM_NS}vendor")),
        )
    except ValueError as e:
        raise SourceError(f"{what}: package {name}: {e}") from None


def _text(node: ET.Element | None) -> str:
    return (node.text or "").strip() if node is not None else ""


def _evr(node: ET.Element) -> EVR:
    epoch = node.get("epoch") or ""
    return EVR(epoch, node.get("ver") or "", node.get("rel") or "")


def _capabilities(fmt: ET.Element, kind: str) -> tuple[Capability, ...]:
    group = fmt.find(f"{RPM_NS}{kind}")
    if group is None:
        return ()
    return tuple(
        Capability(entry.get("name", ""), flags_of(entry.get("flags")), _evr(entry))
        for entry in group.iter(f"{RPM_NS}entry")
    )
