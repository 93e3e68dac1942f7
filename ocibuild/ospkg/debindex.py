"""apt repositories: `dists/SUITE/InRelease` (or `Release`) and the `Packages` indexes.

The Release file lists each index with its SHA256; an index is used only if it matches.
Release signatures are not verified (no OpenPGP implementation among the dependencies): the
trust anchors are the mirror's transport and the lock file, which pins every .deb by sha256.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TextIO

from ocibuild.errors import SourceError
from ocibuild.ospkg.deb822 import folded, paragraphs
from ocibuild.ospkg.debver import Relation, parse_relations

INDEX_SUFFIXES = (".xz", ".gz", "")  # preferred order of Packages compressions


@dataclass(frozen=True)
class IndexFile:
    path: str  # relative to dists/SUITE/
    size: int
    sha256: str


@dataclass(frozen=True)
class Release:
    fields: dict[str, str]
    files: dict[str, IndexFile]

    def packages_index(self, component: str, arch: str) -> IndexFile | None:
        base = f"{component}/binary-{arch}/Packages"
        for suffix in INDEX_SUFFIXES:
            if base + suffix in self.files:
                return self.files[base + suffix]
        return None

    @property
    def separate_all_index(self) -> bool:
        """Whether `Architecture: all` packages have an index of their own to read (apt reads
        binary-all only when the Release lists `all` and does not put them in every index)."""
        arches = self.fields.get("Architectures")
        listed = arches is None or "all" in arches.split()
        return listed and "Packages" not in self.fields.get("No-Support-for-Architecture-all", "")


def strip_clearsign(text: str) -> str:
    """The signed text of an OpenPGP clear-signed message (InRelease), unverified."""
    if not text.startswith("-----BEGIN PGP SIGNED MESSAGE-----"):
        return text
    lines = text.splitlines()
    body_start = lines.index("") + 1 if "" in lines else 1
    body = []
    for line in lines[body_start:]:
        if line.startswith("-----BEGIN PGP SIGNATURE-----"):
            break
        body.append(line[2:] if line.startswith("- ") else line)
    return "\n".join(body) + "\n"


def parse_release(text: str, what: str) -> Release:
    found = list(paragraphs(strip_clearsign(text).splitlines()))
    if not found:
        raise SourceError(f"{what}: empty Release file")
    fields = found[0]
    files = {}
    for line in folded(fields.get("SHA256", "")):
        parts = line.split()
        if len(parts) != 3 or not parts[1].isdigit():
            raise SourceError(f"{what}: malformed SHA256 line {line!r}")
        files[parts[2]] = IndexFile(parts[2], int(parts[1]), parts[0])
    if not files:
        raise SourceError(f"{what}: the Release file lists no SHA256 checksums")
    return Release(fields, files)


@dataclass(frozen=True)
class DebPackage:
    name: str
    version: str
    arch: str
    filename: str
    size: int
    sha256: str
    repo: str  # base URL of the archive
    depends_field: str = ""  # Pre-Depends and Depends, joined: parsed when needed
    provides_field: str = ""
    multi_arch: str = ""
    priority: str = ""

    @property
    def url(self) -> str:
        return self.repo.rstrip("/") + "/" + self.filename

    @property
    def label(self) -> str:
        return f"{self.name}_{self.version}_{self.arch}"

    @cached_property
    def depends(self) -> list[list[Relation]]:
        return parse_relations(self.depends_field)

    @cached_property
    def provides(self) -> list[Relation]:
        return [group[0] for group in parse_relations(self.provides_field)]


_PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")  # Debian policy 5.6.1
_ARCHITECTURE = re.compile(r"[a-z0-9][a-z0-9-]*")


def check_control_names(fields: dict[str, str]) -> None:
    """Package and Architecture name files (`info/<package>:<arch>.list`): refuse anything
    but what Debian policy allows."""
    name = fields["Package"]
    if not _PACKAGE_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a Debian package name")
    arch = fields.get("Architecture", "")
    if arch and not _ARCHITECTURE.fullmatch(arch):
        raise ValueError(f"{arch!r} is not a Debian architecture")


def parse_packages(lines: TextIO | Iterable[str], repo: str, what: str) -> Iterator[DebPackage]:
    """Stream the packages of a Packages index."""
    for fields in paragraphs(lines):
        try:
            yield package_from_fields(fields, repo)
        except (KeyError, ValueError) as e:
            raise SourceError(f"{what}: package {fields.get('Package', '?')}: {e}") from None


def package_from_fields(fields: dict[str, str], repo: str) -> DebPackage:
    check_control_names(fields)
    filename = fields.get("Filename", "")
    if filename.startswith("/") or ".." in filename.split("/"):
        raise ValueError(f"Filename {filename!r} leaves the archive")
    depends = ", ".join(f for f in (fields.get("Pre-Depends"), fields.get("Depends")) if f)
    return DebPackage(
        name=fields["Package"],
        version=fields["Version"],
        arch=fields.get("Architecture", ""),
        filename=fields.get("Filename", ""),
        size=int(fields.get("Size", "0") or 0),
        sha256=fields.get("SHA256", ""),
        repo=repo,
        depends_field=depends,
        provides_field=fields.get("Provides", ""),
        multi_arch=fields.get("Multi-Arch", ""),
        priority=fields.get("Priority", ""),
    )
