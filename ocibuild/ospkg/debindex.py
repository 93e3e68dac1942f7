"""apt repositories: `dists/SUITE/InRelease` (or `Release`) and the `Packages` indexes.

The Release file lists each index with its SHA256; an index is used only if it matches. The
Release itself is verified before it is parsed (sources/deb.py, with ocibuild.trust): what is
parsed here is the signed text only, checked for its dates (`check_dates`) as apt does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import TextIO

from ocibuild.errors import SignatureError, SourceError
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


CLOCK_SKEW = timedelta(minutes=10)  # a Release dated this far ahead of our clock is still taken


def check_dates(release: Release, now: datetime, what: str, valid_until: bool = True) -> None:
    """apt's checks of a Release's dates: refuse it past its `Valid-Until` (a mirror replaying
    an old signed Release; unless `valid_until` is off, apt's Check-Valid-Until), or dated in
    the future (a clock, or a Release, that is wrong)."""
    until = _date(release.fields.get("Valid-Until"), "Valid-Until", what)
    if until is not None and now > until and valid_until:
        raise SignatureError(
            f"{what}: expired: Valid-Until {release.fields['Valid-Until']} is past",
            reason="expired",
        )
    date = _date(release.fields.get("Date"), "Date", what)
    if date is not None and date > now + CLOCK_SKEW:
        raise SignatureError(
            f"{what}: not valid yet: Date {release.fields['Date']} is in the future",
            reason="expired",
        )


def _date(value: str | None, name: str, what: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise SourceError(f"{what}: malformed {name} {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def strip_clearsign(text: str) -> str:
    """The signed text of an OpenPGP clear-signed message (InRelease), unverified: only for a
    repository the recipe says is `trusted`."""
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
    found = list(paragraphs(text.splitlines()))
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
