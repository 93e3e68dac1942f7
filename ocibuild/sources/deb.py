"""`deb`: packages from apt repositories, resolved and unpacked without running dpkg or apt.

    - deb:
        repos:
          - {url: "${DEBIAN_MIRROR:-http://deb.debian.org/debian}", suite: bookworm, components: [main]}
        packages: [bash, coreutils, dpkg]

The layer also carries dpkg's database for its packages (`/var/lib/dpkg/status`, merged with the
base image's, and `info/<package>.list`, `.md5sums`, `.conffiles`, maintainer scripts), so
`dpkg -l` and `dpkg -L` inside the image know them. The resolution is recorded in the lock file.
"""

from __future__ import annotations

import io
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ocibuild.errors import MissingDownloadError, Origin, SourceError
from ocibuild.fetch import Fetched, Fetcher
from ocibuild.layer.entry import Entry, bytes_entry, dir_entry
from ocibuild.ospkg.compress import compression_of, decompressed
from ocibuild.ospkg.debfile import DebArchive, DebListing, data_entries, list_deb, read_deb
from ocibuild.ospkg.debindex import (
    DebPackage,
    IndexFile,
    Release,
    parse_packages,
    parse_release,
)
from ocibuild.ospkg.debresolve import DebResolver, InstalledDeb
from ocibuild.ospkg.dpkgdb import (
    DPKG_DIRS,
    INFO_DIR,
    INFO_FORMAT,
    SCRIPT_FILES,
    STATUS_PATH,
    info_name,
    installed_packages,
    list_file,
    md5sums_file,
    parse_status,
    status_bytes,
    status_paragraph,
)
from ocibuild.ospkg.install import claim_paths, directory_entries, owned_by
from ocibuild.ospkg.record import PackageRecord
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
from ocibuild.sources.specs import DebSpec
from ocibuild.variables import canonical, expand, mirror_hint


@dataclass(frozen=True)
class Resolved:
    """One package a layer installs, as the lock file records it."""

    name: str
    version: str
    arch: str
    repo: str  # canonical archive URL
    suite: str  # canonical suite
    filename: str
    sha256: str
    size: int

    @property
    def label(self) -> str:
        return f"{self.name}_{self.version}_{self.arch}"


@dataclass(frozen=True)
class _Repo:
    url: str  # as fetched
    suite: str
    canonical_url: str
    canonical_suite: str
    components: tuple[str, ...]


def plan(spec: DebSpec, ctx: LayerContext) -> list[LayerPlan]:
    origin = spec.origin or ctx.origin
    repos = []
    for repo in spec.repos:
        try:
            repos.append(
                _Repo(
                    expand(repo.url, ctx.session.settings.variables).rstrip("/"),
                    expand(repo.suite, ctx.session.settings.variables),
                    canonical(repo.url, ctx.session.settings.variables).rstrip("/"),
                    canonical(repo.suite, ctx.session.settings.variables),
                    tuple(repo.components),
                )
            )
        except ValueError as e:
            raise SourceError(str(e), repo.origin or origin) from None
    lower = lower_files(ctx, [STATUS_PATH])
    record = base_record(lower)
    base_status = parse_status(lower.get(STATUS_PATH, b"").decode("utf-8", "replace"))
    installed = sorted(installed_packages(base_status), key=lambda i: i.name)
    key = input_key(
        "deb",
        [(r.canonical_url, r.canonical_suite, r.components) for r in repos],
        spec.packages,
        spec.exclude,
        spec.arch,
        [(i.name, i.version, i.arch) for i in installed],
    )
    packages = locked_resolution(
        ctx, key, Resolved, lambda: _resolve(spec, ctx, repos, installed, origin)
    )
    urls = {r.canonical_url: r.url for r in repos}

    hint = mirror_hint(r.url for r in spec.repos)

    def entries() -> Iterator[Entry]:
        return _entries(packages, urls, base_status, record, ctx, hint)

    return [package_layer("deb", spec.packages, packages, lower, entries)]


def _resolve(
    spec: DebSpec,
    ctx: LayerContext,
    repos: list[_Repo],
    installed: list[InstalledDeb],
    origin: Origin,
) -> list[Resolved]:
    available: list[DebPackage] = []
    suites: dict[int, _Repo] = {}
    fetcher = fetcher_for(ctx, origin, mirror_hint(r.url for r in spec.repos))
    for repo in repos:
        for package in _repository(repo, spec.arch, fetcher):
            available.append(package)
            suites[id(package)] = repo
    resolver = DebResolver(available, spec.arch, spec.exclude, installed)
    chosen = resolve_requested(ctx, "deb", resolver.resolve, spec.packages, origin)
    out = []
    for p in chosen:
        repo = suites[id(p)]
        out.append(
            Resolved(
                p.name,
                p.version,
                p.arch,
                repo.canonical_url,
                repo.canonical_suite,
                p.filename,
                p.sha256,
                p.size,
            )
        )
    return out


def _repository(repo: _Repo, arch: str, fetcher: Fetcher) -> Iterator[DebPackage]:
    dists = f"{repo.url}/dists/{repo.suite}"
    release_url = f"{dists}/InRelease"
    where = f"{repo.url} {repo.suite}"  # as apt names a repository
    try:
        release_file = fetcher.fetch_fresh(release_url, f"{where} release file")
    except MissingDownloadError:  # older archives and simple repositories have only Release
        release_url = f"{dists}/Release"
        release_file = fetcher.fetch_fresh(release_url, f"{where} release file")
    release = parse_release(release_file.path.read_text("utf-8", "replace"), release_url)
    for component in repo.components:
        arches = [arch, "all"] if release.separate_all_index else [arch]
        found = False
        for index_arch in arches:
            index = release.packages_index(component, index_arch)
            if index is None:
                continue
            found = True
            url = f"{dists}/{index.path}"
            what = f"{where}/{component} {index_arch} package index"
            fetched = _fetch_index(fetcher, release, dists, index, what)
            with (
                open(fetched.path, "rb") as raw,
                decompressed(raw, compression_of(index.path), url) as stream,
            ):
                text = io.TextIOWrapper(stream, "utf-8", errors="replace")
                yield from parse_packages(text, repo.url, url)
        if not found:
            raise SourceError(f"{release_url}: no Packages index for {component}/binary-{arch}")


def _fetch_index(
    fetcher: Fetcher, release: Release, dists: str, index: IndexFile, what: str
) -> Fetched:
    """An index by its hash where the archive offers that (apt's Acquire-By-Hash: immune to a
    mirror updating the file between our reading Release and fetching it), else by name."""
    url = f"{dists}/{index.path}"
    if release.fields.get("Acquire-By-Hash", "").lower() == "yes":
        by_hash = f"{dists}/{posixpath.dirname(index.path)}/by-hash/SHA256/{index.sha256}"
        try:
            return fetcher.fetch_fresh(by_hash, what, sha256=index.sha256)
        except MissingDownloadError:
            pass
    return fetcher.fetch_fresh(url, what, sha256=index.sha256)


def _entries(
    packages: list[Resolved],
    urls: dict[str, str],
    base_status: list[dict[str, str]],
    record: list[PackageRecord],
    ctx: LayerContext,
    hint: str,
) -> Iterator[Entry]:
    downloads = [
        Download(f"{urls[p.repo]}/{p.filename}", f"deb {p.label}", "sha256", p.sha256)
        for p in packages
    ]
    fetched = download_packages(ctx, downloads, hint)
    debs = [
        read_deb(Path(f.path), f"deb {p.label} ({f.url})")
        for p, f in zip(packages, fetched, strict=True)
    ]
    listings = [list_deb(deb, p.label) for p, deb in zip(packages, debs, strict=True)]
    records = [
        PackageRecord("deb", p.name, p.version, p.arch, f"{p.repo} {p.suite}", deb.install_scripts)
        for p, deb in zip(packages, debs, strict=True)
    ]
    report_skipped(ctx, "deb", records)
    owners = claim_paths([listing.files for listing in listings])
    yield from directory_entries([listing.files for listing in listings], owners)
    for index, deb in enumerate(debs):
        yield from data_entries(deb, owned_by(owners, index))
    yield from (dir_entry(d) for d in DPKG_DIRS)
    yield bytes_entry(*INFO_FORMAT)
    status = []
    for deb, listing in zip(debs, listings, strict=True):
        status.append(status_paragraph(deb.control, listing.conffile_md5))
        yield from _info_files(deb, listing)
    yield bytes_entry(STATUS_PATH, status_bytes(base_status, status))
    yield record_entry(record, records)


def _info_files(deb: DebArchive, listing: DebListing) -> Iterator[Entry]:
    name = info_name(deb.control)
    control_files = dict(deb.control_files)
    control_files.setdefault("md5sums", md5sums_file(listing.file_md5))
    yield bytes_entry(f"{INFO_DIR}/{name}.list", list_file(listing.paths))
    for member, data in sorted(control_files.items()):
        mode = 0o755 if member in SCRIPT_FILES else 0o644
        yield bytes_entry(f"{INFO_DIR}/{name}.{member}", data, mode=mode)
