"""`deb`: packages from apt repositories, resolved and unpacked without running dpkg or apt.

    - deb:
        repos:
          - {url: "${DEBIAN_MIRROR:-http://deb.debian.org/debian}", suite: bookworm, components: [main]}
        packages: [bash, coreutils, dpkg]

The layer also carries dpkg's database for its packages (`/var/lib/dpkg/status`, merged with the
base image's, and `info/<package>.list`, `.md5sums`, `.conffiles`, maintainer scripts), so
`dpkg -l` and `dpkg -L` inside the image know them. The resolution is recorded in the lock file.

Each repository's `InRelease` (or `Release` with `Release.gpg`) is verified, as apt does, before
a byte of it is read: by the repository's `signed_by` keys, by the host's Debian archive keyring
for Debian's own archive, or not at all when the recipe says `trusted: true` (recorded in the
lock, the package record and the SBOM).
"""

from __future__ import annotations

import io
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from ocibuild.errors import MissingDownloadError, Origin, SignatureError, SourceError
from ocibuild.fetch import Fetched, Fetcher
from ocibuild.layer.entry import Entry, bytes_entry, dir_entry
from ocibuild.net.links import safe_url
from ocibuild.ospkg.compress import compression_of, decompressed
from ocibuild.ospkg.debfile import DebArchive, DebListing, data_entries, list_deb, read_deb
from ocibuild.ospkg.debindex import (
    DebPackage,
    IndexFile,
    Release,
    check_dates,
    parse_packages,
    parse_release,
    strip_clearsign,
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
from ocibuild.sbom import Component
from ocibuild.sbom.purl import purl
from ocibuild.secrets import public_url
from ocibuild.sources.base import LayerPlan, fetcher_for, input_key
from ocibuild.sources.packages import (
    NOT_VERIFIED,
    TRUSTED,
    Download,
    RepoKeys,
    base_record,
    download_packages,
    locked_resolution,
    lower_files,
    package_layer,
    recipe_keys,
    record_entry,
    report_skipped,
    resolve_requested,
    trust_properties,
)
from ocibuild.sources.session import LayerContext
from ocibuild.sources.specs import DebRepo, DebSpec
from ocibuild.trust.openpgp import (
    Keyring,
    Keys,
    Verified,
    keyring,
    verify_clearsigned,
    verify_detached,
)
from ocibuild.variables import canonical, expand, mirror_hint

# Debian's archive keys, as Debian's debian-archive-keyring package installs them (.pgp from
# trixie on): what apt verifies Debian's own suites with
DEBIAN_KEYRINGS = (
    Path("/usr/share/keyrings/debian-archive-keyring.gpg"),
    Path("/usr/share/keyrings/debian-archive-keyring.pgp"),
)
DEBIAN_ARCHIVE_KEYS = "debian-archive-keyring"


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
    verified_by: str  # fingerprint of the key that signed the repository's Release, or "trusted"
    vendor: str  # the Release's Origin ("Debian")
    distro: str  # "debian-12": the Release's Origin and (major) Version, else its Codename

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
    keys: RepoKeys
    check_valid_until: bool

    @property
    def what(self) -> str:
        return f"deb repository {safe_url(self.url)} {self.suite}"


def plan(spec: DebSpec, ctx: LayerContext) -> list[LayerPlan]:
    origin = spec.origin or ctx.origin
    repos = []
    for repo in spec.repos:
        try:
            url = expand(repo.url, ctx.session.settings.variables).rstrip("/")
            # the repository as recorded (lock file, package records, layer key): no credentials
            canonical_url = public_url(canonical(repo.url, ctx.session.settings.variables))
            canonical_url = canonical_url.rstrip("/")
            suite = expand(repo.suite, ctx.session.settings.variables)
            canonical_suite = canonical(repo.suite, ctx.session.settings.variables)
        except ValueError as e:
            raise SourceError(str(e), repo.origin or origin) from None
        what = f"deb repository {safe_url(url)} {suite}"
        keys = _repo_keys(repo, canonical_url, ctx, what, repo.origin or origin)
        repos.append(
            _Repo(
                url,
                suite,
                canonical_url,
                canonical_suite,
                tuple(repo.components),
                keys,
                repo.check_valid_until,
            )
        )
    arch = spec.arch or debian_arch(ctx.platform, origin)
    lower = lower_files(ctx, [STATUS_PATH])
    record = base_record(lower)
    base_status = parse_status(lower.get(STATUS_PATH, b"").decode("utf-8", "replace"))
    installed = sorted(installed_packages(base_status), key=lambda i: i.name)
    key = input_key(
        "deb",
        [(r.canonical_url, r.canonical_suite, r.components, r.keys.spec) for r in repos],
        spec.packages,
        spec.exclude,
        arch,
        [(i.name, i.version, i.arch) for i in installed],
    )
    packages = locked_resolution(
        ctx, key, Resolved, lambda: _resolve(spec, arch, ctx, repos, installed, origin)
    )
    urls = {r.canonical_url: r.url for r in repos}

    hint = mirror_hint(r.url for r in spec.repos)

    def entries() -> Iterator[Entry]:
        return _entries(packages, urls, base_status, record, ctx, hint)

    def components() -> list[Component]:
        return [_component(p) for p in packages]

    return [package_layer("deb", spec.packages, packages, lower, entries, components)]


# the OCI platform's architecture -> Debian's name for it
DEBIAN_ARCHES = {
    "amd64": "amd64",
    "arm64": "arm64",
    "386": "i386",
    "arm/v7": "armhf",
    "ppc64le": "ppc64el",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


def debian_arch(platform: str, origin: Origin) -> str:
    """Debian's architecture of an image platform (`linux/arm64` -> arm64)."""
    os_, _, arch = platform.partition("/")
    name = DEBIAN_ARCHES.get(arch) or DEBIAN_ARCHES.get(arch.removesuffix("/v8"))
    if os_ != "linux" or name is None:
        raise SourceError(f"deb: no Debian architecture for the platform {platform}", origin)
    return name


def _repo_keys(
    repo: DebRepo, canonical_url: str, ctx: LayerContext, what: str, origin: Origin
) -> RepoKeys:
    """The keys of a repository: its `signed_by`; Debian's archive keyring for Debian's own
    archive (by the recipe's canonical URL, so a mirror put in its place is held to Debian's
    keys); none for `trusted: true`; else the recipe must say which."""
    if repo.trusted:
        return NOT_VERIFIED
    if repo.signed_by is not None:
        return recipe_keys(repo.signed_by, ctx, f"{what} signed_by")
    host = urlsplit(canonical_url).hostname or ""
    if host == "debian.org" or host.endswith(".debian.org"):
        found = next((k for k in DEBIAN_KEYRINGS if k.exists()), None)
        if found is None:
            raise SourceError(
                f"{what}: Debian's archive keys are not installed ({DEBIAN_KEYRINGS[0]}): "
                "install Debian's debian-archive-keyring package, or give signed_by",
                origin,
            )
        return RepoKeys(Keys(str(found), files=(found,)), DEBIAN_ARCHIVE_KEYS)
    raise SourceError(
        f"{what}: no key to verify it with: give signed_by (a keyring file or an armored "
        "key block, as deb822's Signed-By), or trusted: true to use it unverified",
        origin,
    )


def _component(p: Resolved) -> Component:
    namespace = p.vendor.lower()
    return Component(
        kind="deb",
        name=p.name,
        version=p.version,
        purl=purl("deb", namespace, p.name, p.version, arch=p.arch, distro=p.distro),
        sha256=p.sha256,
        url=safe_url(f"{p.repo}/{p.filename}"),
        properties=(
            ("repository", f"{safe_url(p.repo)} {p.suite}"),
            *trust_properties(p.verified_by),
        ),
    )


def _resolve(
    spec: DebSpec,
    arch: str,
    ctx: LayerContext,
    repos: list[_Repo],
    installed: list[InstalledDeb],
    origin: Origin,
) -> list[Resolved]:
    available: list[DebPackage] = []
    suites: dict[int, _Repo] = {}
    fetcher = fetcher_for(ctx, origin, mirror_hint(r.url for r in spec.repos))
    releases: dict[str, tuple[Release, str]] = {}  # by repo.what: the Release, who signed it
    now = datetime.now(UTC)
    for repo, spec_repo in zip(repos, spec.repos, strict=True):
        try:
            release, verified_by = _release(repo, fetcher, now)
        except SourceError as e:
            raise e.located(spec_repo.origin or origin) from None
        releases[repo.what] = release, verified_by
        for package in _packages(repo, release, arch, fetcher):
            available.append(package)
            suites[id(package)] = repo
    resolver = DebResolver(available, arch, spec.exclude, installed)
    chosen = resolve_requested(ctx, "deb", resolver.resolve, spec.packages, origin)
    distro = _distro([release for release, _ in releases.values()])
    out = []
    for p in chosen:
        repo = suites[id(p)]
        release, verified_by = releases[repo.what]
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
                verified_by,
                release.fields.get("Origin", ""),
                distro,
            )
        )
    return out


def _distro(releases: list[Release]) -> str:
    """The distribution a layer's packages come from, as purl's `distro` names it: the Origin
    and Version of the first Release that has a Version (Debian's point release dropped:
    "debian-12"), else the first's Codename."""
    for release in releases:
        origin, version = release.fields.get("Origin", ""), release.fields.get("Version", "")
        if origin and version:
            major = version.split(".")[0] if origin == "Debian" else version
            return f"{origin.lower()}-{major}"
    first = releases[0].fields if releases else {}
    origin, codename = first.get("Origin", ""), first.get("Codename", "")
    return f"{origin.lower()}-{codename}" if origin and codename else ""


def _release(repo: _Repo, fetcher: Fetcher, now: datetime) -> tuple[Release, str]:
    """The repository's Release, verified by its keys before any of it is read, and who signed
    it (or "trusted"): `InRelease` (clearsigned), else `Release` and `Release.gpg`."""
    dists = f"{repo.url}/dists/{repo.suite}"
    where = f"{repo.url} {repo.suite}"  # as apt names a repository
    keys = keyring(repo.keys.keys) if repo.keys.keys is not None else None
    try:
        signed = fetcher.fetch_fresh(f"{dists}/InRelease", f"{where} release file")
    except MissingDownloadError:  # older archives and simple repositories have only Release
        signed = None
    if signed is not None and keys is not None:
        payload, verified = verify_clearsigned(signed.path, keys, f"{repo.what}: InRelease")
        release = parse_release(payload.decode("utf-8", "replace"), f"{dists}/InRelease")
    elif signed is not None:
        text = strip_clearsign(signed.path.read_text("utf-8", "replace"))
        return parse_release(text, f"{dists}/InRelease"), TRUSTED
    else:
        plain = fetcher.fetch_fresh(f"{dists}/Release", f"{where} release file")
        if keys is None:
            return parse_release(plain.path.read_text("utf-8", "replace"), plain.url), TRUSTED
        verified = _detached(repo, fetcher, keys, plain.path, dists)
        release = parse_release(plain.path.read_text("utf-8", "replace"), plain.url)
    what = f"{repo.what}: Release (signed by {verified.fingerprint})"
    check_dates(release, now, what, repo.check_valid_until)
    return release, verified.fingerprint


def _detached(repo: _Repo, fetcher: Fetcher, keys: Keyring, release: Path, dists: str) -> Verified:
    try:
        where = f"{repo.url} {repo.suite}"
        signature = fetcher.fetch_fresh(f"{dists}/Release.gpg", f"{where} release signature")
    except MissingDownloadError:
        raise SignatureError(
            f"{repo.what}: unsigned: no InRelease, and no Release.gpg beside Release",
            reason="unsigned",
        ) from None
    return verify_detached(release, signature.path.read_bytes(), keys, f"{repo.what}: Release.gpg")


def _packages(repo: _Repo, release: Release, arch: str, fetcher: Fetcher) -> Iterator[DebPackage]:
    dists = f"{repo.url}/dists/{repo.suite}"
    release_url = f"{dists}/Release"
    where = f"{repo.url} {repo.suite}"
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
        PackageRecord(
            "deb",
            p.name,
            p.version,
            p.arch,
            f"{p.repo} {p.suite}",
            deb.install_scripts,
            p.verified_by,
        )
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
