"""`rpm`: packages from yum repositories, resolved and unpacked without running rpm or yum.

    - rpm:
        repos: ["${CENTOS_VAULT:-https://vault.centos.org}/6.7/os/x86_64/"]
        packages: [gcc, redhat-lsb-core, libgcc.i686]
        exclude: ["*-debuginfo"]

A repository is a URL, or a mapping as dnf's .repo files give one:

        repos:
          - {url: "https://vault.centos.org/6.7/os/x86_64/", gpgkey: keys/RPM-GPG-KEY-CentOS-6}

with `gpgkey` (a key file relative to the recipe, or an armored key block), `gpgcheck` (each
package's header signature checked before its payload is used; on by default, as dnf does),
`repo_gpgcheck` (`repodata/repomd.xml.asc` checked before the index is read; off by default,
as dnf does) and `trusted: true` (nothing checked, recorded as such). A repository with
neither a key nor `trusted: true` is refused.

The resolution (the exact packages and their checksums) is recorded in the recipe's lock file
and reused until `--update-lock`, so rebuilds install the same packages and give the same layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ocibuild.errors import MissingDownloadError, NetworkError, Origin, SignatureError, SourceError
from ocibuild.fetch import Fetcher
from ocibuild.layer.entry import Entry
from ocibuild.net.links import linked_url, safe_url
from ocibuild.ospkg.accounts import IdMap
from ocibuild.ospkg.compress import compression_of, decompressed
from ocibuild.ospkg.record import PackageRecord
from ocibuild.ospkg.repomd import RpmPackage, parse_primary, parse_repomd
from ocibuild.ospkg.rpmdb import RPMDB_FILES, read_rpmdb
from ocibuild.ospkg.rpmlayer import (
    ACCOUNT_FILES,
    LocalRpm,
    layer_entries,
    read_rpm,
    shipped_accounts,
)
from ocibuild.ospkg.rpmresolve import InstalledRpm, RpmResolver
from ocibuild.ospkg.rpmsig import verify_package
from ocibuild.progress import Message, plural
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
from ocibuild.sources.specs import RpmRepo, RpmSpec, rpm_repo
from ocibuild.trust.openpgp import Keyring, keyring, verify_detached
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
    # fingerprint of the key that signed the repository's repomd.xml, "trusted", or "" when
    # the index is not checked (repo_gpgcheck off)
    verified_by: str
    gpgcheck: bool  # the package's header signature is checked before its payload is used
    license: str
    vendor: str

    @property
    def nevra(self) -> str:
        return f"{self.name}-{self.evr}.{self.arch}"

    @classmethod
    def of(cls, package: RpmPackage, repo: _Repo, verified_by: str) -> Resolved:
        return cls(
            package.name,
            str(package.evr),
            package.arch,
            repo.canonical_url,
            package.href,
            package.base,
            package.checksum_type,
            package.checksum,
            package.size,
            verified_by,
            repo.gpgcheck,
            package.license,
            package.vendor,
        )


@dataclass(frozen=True)
class _Repo:
    url: str  # as fetched
    canonical_url: str
    keys: RepoKeys
    gpgcheck: bool
    repo_gpgcheck: bool
    origin: Origin  # the recipe's line of the repository (or of the layer)

    @property
    def what(self) -> str:
        return f"rpm repository {safe_url(self.url)}"


def _repos(spec: RpmSpec, ctx: LayerContext, origin: Origin) -> dict[str, _Repo]:
    """The spec's repositories by canonical URL, with their keys."""
    out = {}
    for item in spec.repos:
        repo = rpm_repo(item)
        at = repo.origin or origin
        try:
            url = expand(repo.url, ctx.session.settings.variables).rstrip("/")
            # the repository as recorded (lock file, package records, layer key): no credentials
            canonical_url = public_url(canonical(repo.url, ctx.session.settings.variables))
            canonical_url = canonical_url.rstrip("/")
            gpgkey = expand(repo.gpgkey, ctx.session.settings.variables) if repo.gpgkey else None
        except ValueError as e:
            raise SourceError(str(e), at) from None
        what = f"rpm repository {safe_url(url)}"
        out[canonical_url] = _Repo(
            url,
            canonical_url,
            _repo_keys(repo, gpgkey, ctx, what, at),
            repo.gpgcheck and not repo.trusted,
            repo.repo_gpgcheck and not repo.trusted,
            at,
        )
    return out


def _repo_keys(
    repo: RpmRepo, gpgkey: str | None, ctx: LayerContext, what: str, origin: Origin
) -> RepoKeys:
    if repo.trusted:
        return NOT_VERIFIED
    if gpgkey is None:
        raise SourceError(
            f"{what}: no gpgkey to verify it with: give the repository's gpgkey (a key file or "
            "an armored key block, as its .repo file names it), or trusted: true to use it "
            "unverified",
            origin,
        )
    return recipe_keys(gpgkey, ctx, f"{what} gpgkey")


RPM_ARCHES = {"amd64": "x86_64", "arm64": "aarch64", "ppc64le": "ppc64le", "s390x": "s390x"}


def rpm_arch(platform: str, origin: Origin) -> str:
    """rpm's architecture of an image platform (`linux/arm64` -> aarch64)."""
    os_, _, arch = platform.partition("/")
    name = RPM_ARCHES.get(arch.removesuffix("/v8"))
    if os_ != "linux" or name is None:
        raise SourceError(f"rpm: no rpm architecture for the platform {platform}", origin)
    return name


def plan(spec: RpmSpec, ctx: LayerContext) -> list[LayerPlan]:
    origin = spec.origin or ctx.origin
    arch = spec.arch or rpm_arch(ctx.platform, origin)
    repos = _repos(spec, ctx, origin)
    urls = {name: repo.url for name, repo in repos.items()}
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
    key = input_key(
        "rpm",
        [(r.canonical_url, r.keys.spec, r.gpgcheck, r.repo_gpgcheck) for r in repos.values()],
        spec.packages,
        spec.exclude,
        arch,
        installed,
    )
    hint = mirror_hint(rpm_repo(r).url for r in spec.repos)
    packages = locked_resolution(
        ctx, key, Resolved, lambda: _resolve(spec, arch, ctx, repos, installed, origin, hint)
    )

    def entries() -> Iterator[Entry]:
        return _entries(packages, repos, lower, record, ctx, hint)

    def components() -> list[Component]:
        return [_component(p, urls, ctx) for p in packages]

    return [package_layer("rpm", spec.packages, packages, lower, entries, components)]


def _component(p: Resolved, urls: dict[str, str], ctx: LayerContext) -> Component:
    url = _package_url(p, {p.repo: p.repo})
    sha256 = p.checksum if p.checksum_type == "sha256" else ""
    if not sha256:  # the index gave another digest: the lock pins the file's sha256
        pin = ctx.session.lock.get(_package_url(p, urls))
        sha256 = pin.sha256 if pin else ""
    epoch, _, version = p.evr.rpartition(":")
    properties = [("repository", safe_url(p.repo)), *trust_properties(p.verified_by)]
    if p.gpgcheck:
        properties.append(("gpgcheck", "on"))
    return Component(
        kind="rpm",
        name=p.name,
        version=p.evr,
        purl=purl("rpm", _namespace(p.vendor), p.name, version, arch=p.arch, epoch=epoch),
        sha256=sha256,
        url=safe_url(url),
        licenses=(p.license,) if p.license else (),
        properties=tuple(properties),
    )


def _namespace(vendor: str) -> str:
    """purl's rpm namespace, the vendor as one word: "CentOS" -> centos, "Red Hat, Inc." ->
    redhat, "Fedora Project" -> fedora."""
    words = vendor.lower().replace(",", " ").split()
    if words[:2] == ["red", "hat"]:
        return "redhat"
    return words[0] if words else ""


def _package_url(package: Resolved, urls: dict[str, str]) -> str:
    """Where a package is: its `location` in the repository's index, below its `xml:base` if it
    has one; a repository sends ocibuild to http(s) only (`net.linked_url`)."""
    href = package.href.lstrip("/")
    link = f"{package.base.rstrip('/')}/{href}" if package.base else href
    try:
        return linked_url(urls[package.repo].rstrip("/") + "/", link, f"rpm {package.nevra}")
    except NetworkError as e:
        raise SourceError(str(e)) from None


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
    arch: str,
    ctx: LayerContext,
    repos: dict[str, _Repo],
    installed: list[InstalledRpm],
    origin: Origin,
    hint: str,
) -> list[Resolved]:
    available: list[RpmPackage] = []
    repo_of: dict[str, tuple[_Repo, str]] = {}  # by fetched URL: the repo, who signed its index
    fetcher = fetcher_for(ctx, origin, hint)
    for repo in repos.values():
        try:
            packages, verified_by = _repository(repo, fetcher)
        except SourceError as e:
            raise e.located(repo.origin) from None
        available += packages
        repo_of[repo.url] = repo, verified_by
    resolver = RpmResolver(available, arch, spec.exclude, installed)
    chosen = resolve_requested(ctx, "rpm", resolver.resolve, spec.packages, origin)
    return [Resolved.of(p, *repo_of[p.repo]) for p in chosen]


def _repository(repo: _Repo, fetcher: Fetcher) -> tuple[list[RpmPackage], str]:
    """The repository's packages, and who signed its index ("trusted"; "" when unchecked)."""
    url = repo.url
    repomd_url = f"{url}/repodata/repomd.xml"
    repomd = fetcher.fetch_fresh(repomd_url, f"{url} repository index")
    verified_by = TRUSTED if repo.keys.keys is None else ""
    if repo.repo_gpgcheck and repo.keys.keys is not None:
        try:
            signature = fetcher.fetch_fresh(
                f"{repomd_url}.asc", f"{url} repository index signature"
            )
        except MissingDownloadError:
            raise SignatureError(
                f"{repo.what}: repomd.xml: unsigned (no repodata/repomd.xml.asc, and "
                "repo_gpgcheck is on)",
                reason="unsigned",
            ) from None
        verified_by = verify_detached(
            repomd.path,
            signature.path.read_bytes(),
            keyring(repo.keys.keys),
            f"{repo.what}: repomd.xml",
        ).fingerprint
    files = parse_repomd(repomd.path.read_bytes(), repomd_url)
    primary = files["primary"]
    primary_url = f"{url}/{primary.href}"
    sha = primary.checksum if primary.checksum_type == "sha256" else None
    fetched = fetcher.fetch_fresh(primary_url, f"{url} package list", sha256=sha)
    with (
        open(fetched.path, "rb") as f,
        decompressed(f, compression_of(primary.href), primary_url) as xml,
    ):
        return list(parse_primary(xml, url, primary_url)), verified_by


def _entries(
    packages: list[Resolved],
    repos: dict[str, _Repo],
    lower: dict[str, bytes],
    record: list[PackageRecord],
    ctx: LayerContext,
    hint: str,
) -> Iterator[Entry]:
    urls = {name: repo.url for name, repo in repos.items()}
    downloads = [
        Download(_package_url(p, urls), f"rpm {p.nevra}", p.checksum_type, p.checksum)
        for p in packages
    ]
    fetched = download_packages(ctx, downloads, hint)
    rpms = [
        read_rpm(Path(f.path), f"rpm {p.nevra} ({f.url})")
        for p, f in zip(packages, fetched, strict=True)
    ]
    _verify_packages(packages, rpms, repos)
    ids = IdMap.from_files(lower.get("etc/passwd"), lower.get("etc/group")).merged(
        shipped_accounts(rpms)
    )
    unknown: dict[str, str] = {}
    records = [
        PackageRecord("rpm", p.name, p.evr, p.arch, p.repo, rpm.header.scriptlets, p.verified_by)
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


def _verify_packages(
    packages: list[Resolved], rpms: list[LocalRpm], repos: dict[str, _Repo]
) -> None:
    """Check the header signature of every package whose repository has gpgcheck on (as the
    lock recorded it), by the repository's keys, before any payload is read."""
    keyrings: dict[str, Keyring] = {}
    checked = []
    for p, rpm in zip(packages, rpms, strict=True):
        repo = repos.get(p.repo)
        if not p.gpgcheck or repo is None or repo.keys.keys is None:
            continue
        if p.repo not in keyrings:
            keyrings[p.repo] = keyring(repo.keys.keys)
        checked.append((rpm, keyrings[p.repo], f"{repo.what}: {rpm.what}", repo.origin))

    def verify(rpm: LocalRpm, keys: Keyring, what: str, origin: Origin) -> None:
        try:
            verify_package(rpm.path, rpm.header, keys, what)
        except SourceError as e:
            raise e.located(origin) from None

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda c: verify(*c), checked))
