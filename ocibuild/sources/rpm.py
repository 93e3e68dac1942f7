"""`rpm`: packages from yum repositories, resolved and unpacked without running rpm or yum.

    - rpm:
        repos: ["${CENTOS_VAULT:-https://vault.centos.org}/6.7/os/x86_64/"]
        packages: [gcc, redhat-lsb-core, libgcc.i686]
        exclude: ["*-debuginfo"]

The resolution (the exact packages and their checksums) is recorded in the recipe's lock file
and reused until `--update-lock`, so rebuilds install the same packages and give the same layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ocibuild.errors import NetworkError, Origin, SourceError
from ocibuild.fetch import Fetcher
from ocibuild.layer.entry import Entry
from ocibuild.net import linked_url
from ocibuild.ospkg.accounts import IdMap
from ocibuild.ospkg.compress import compression_of, decompressed
from ocibuild.ospkg.record import PackageRecord
from ocibuild.ospkg.repomd import RpmPackage, parse_primary, parse_repomd
from ocibuild.ospkg.rpmdb import RPMDB_FILES, read_rpmdb
from ocibuild.ospkg.rpmlayer import ACCOUNT_FILES, layer_entries, read_rpm, shipped_accounts
from ocibuild.ospkg.rpmresolve import InstalledRpm, RpmResolver
from ocibuild.progress import Message, plural
from ocibuild.sources.base import LayerPlan, fetcher_for, input_key
from ocibuild.sources.packages import (
    Download,
    base_record,
    download_packages,
    locked_resolution,
    lower_files,
    package_layer,
    record_entry,
    report_skipped,
    resolve_requested,
)
from ocibuild.sources.session import LayerContext
from ocibuild.sources.specs import RpmSpec
from ocibuild.variables import canonical, expand, mirror_hint


@dataclass(frozen=True)
class Resolved:
    """One package a layer installs, as the lock file records it."""

    name: str
    evr: str
    arch: str
    repo: str  # canonical repository URL
    href: str
    base: str
    checksum_type: str
    checksum: str
    size: int

    @property
    def nevra(self) -> str:
        return f"{self.name}-{self.evr}.{self.arch}"

    @classmethod
    def of(cls, package: RpmPackage, repo: str) -> Resolved:
        return cls(
            package.name,
            str(package.evr),
            package.arch,
            repo,
            package.href,
            package.base,
            package.checksum_type,
            package.checksum,
            package.size,
        )


def plan(spec: RpmSpec, ctx: LayerContext) -> list[LayerPlan]:
    origin = spec.origin or ctx.origin
    try:
        urls = {
            canonical(u, ctx.session.settings.variables).rstrip("/"): expand(
                u, ctx.session.settings.variables
            ).rstrip("/")
            for u in spec.repos
        }
    except ValueError as e:
        raise SourceError(str(e), origin) from None
    lower = lower_files(ctx, (*ACCOUNT_FILES, *RPMDB_FILES))
    # the layer's content does not depend on the database, only the resolution (on its NEVRAs)
    rpmdb = read_rpmdb({p: lower.pop(p) for p in RPMDB_FILES if p in lower})
    if rpmdb:
        ctx.report(
            Message(
                f"rpm: {plural(len(rpmdb), 'package')} already in the base image (rpm database)"
            )
        )
    record = base_record(lower)
    installed = _installed(record, rpmdb)
    key = input_key("rpm", list(urls), spec.packages, spec.exclude, spec.arch, installed)
    packages = locked_resolution(
        ctx, key, Resolved, lambda: _resolve(spec, ctx, urls, installed, origin)
    )

    def entries() -> Iterator[Entry]:
        return _entries(packages, urls, lower, record, ctx, mirror_hint(spec.repos))

    return [package_layer("rpm", spec.packages, packages, lower, entries)]


def _installed(record: list[PackageRecord], rpmdb: list[InstalledRpm]) -> list[InstalledRpm]:
    """What the base has: its rpm database, and what ocibuild layers installed over it (never
    in the database, so a package of both was replaced by the recorded one)."""
    found = {(i.name, i.arch): i for i in rpmdb}
    found.update(
        ((r.name, r.arch), InstalledRpm(r.name, r.evr, r.arch)) for r in record if r.type == "rpm"
    )
    return sorted(found.values(), key=lambda i: (i.name, i.arch))


def _resolve(
    spec: RpmSpec,
    ctx: LayerContext,
    urls: dict[str, str],
    installed: list[InstalledRpm],
    origin: Origin,
) -> list[Resolved]:
    available: list[RpmPackage] = []
    repo_of: dict[str, str] = {}
    fetcher = fetcher_for(ctx, origin, mirror_hint(spec.repos))
    for repo, url in urls.items():
        available += _repository(url, fetcher)
        repo_of[url] = repo
    resolver = RpmResolver(available, spec.arch, spec.exclude, installed)
    chosen = resolve_requested(ctx, "rpm", resolver.resolve, spec.packages, origin)
    return [Resolved.of(p, repo_of[p.repo]) for p in chosen]


def _repository(url: str, fetcher: Fetcher) -> list[RpmPackage]:
    repomd_url = f"{url}/repodata/repomd.xml"
    repomd = fetcher.fetch_fresh(repomd_url, f"{url} repository index")
    files = parse_repomd(repomd.path.read_bytes(), repomd_url)
    primary = files["primary"]
    primary_url = f"{url}/{primary.href}"
    sha = primary.checksum if primary.checksum_type == "sha256" else None
    fetched = fetcher.fetch_fresh(primary_url, f"{url} package list", sha256=sha)
    with (
        open(fetched.path, "rb") as f,
        decompressed(f, compression_of(primary.href), primary_url) as xml,
    ):
        return list(parse_primary(xml, url, primary_url))


def _package_url(package: Resolved, repo: str) -> str:
    """Where a package is: its `location` in the repository's index, below its `xml:base` if it
    has one; a repository sends ocibuild to http(s) only (`net.linked_url`)."""
    href = package.href.lstrip("/")
    link = f"{package.base.rstrip('/')}/{href}" if package.base else href
    try:
        return linked_url(repo.rstrip("/") + "/", link, f"rpm {package.nevra}")
    except NetworkError as e:
        raise SourceError(str(e)) from None


def _entries(
    packages: list[Resolved],
    urls: dict[str, str],
    lower: dict[str, bytes],
    record: list[PackageRecord],
    ctx: LayerContext,
    hint: str,
) -> Iterator[Entry]:
    downloads = [
        Download(_package_url(p, urls[p.repo]), f"rpm {p.nevra}", p.checksum_type, p.checksum)
        for p in packages
    ]
    fetched = download_packages(ctx, downloads, hint)
    rpms = [
        read_rpm(Path(f.path), f"rpm {p.nevra} ({f.url})")
        for p, f in zip(packages, fetched, strict=True)
    ]
    ids = IdMap.from_files(lower.get("etc/passwd"), lower.get("etc/group")).merged(
        shipped_accounts(rpms)
    )
    unknown: dict[str, str] = {}
    records = [
        PackageRecord("rpm", p.name, p.evr, p.arch, p.repo, rpm.header.scriptlets)
        for p, rpm in zip(packages, rpms, strict=True)
    ]
    report_skipped(ctx, "rpm", records)
    yield from layer_entries(rpms, ids, unknown.setdefault)
    if unknown:
        names = ", ".join(f"{n} (/{p})" for n, p in sorted(unknown.items()))
        ctx.report(
            Message(f"rpm: owners unknown to /etc/passwd or /etc/group, given id 0: {names}")
        )
    yield record_entry(record, records)
