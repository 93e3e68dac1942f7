"""What pullProducts does before unpacking: find the bundle's manifest (current location, then
the older one) and fetch every product tarball it lists, in parallel, through the download
cache and the recipe's lock file (which pins the manifest and every tarball by sha256)."""

from __future__ import annotations

from collections.abc import Sequence

from ocibuild.errors import MissingDownloadError, SourceError
from ocibuild.fetch import Fetched, Fetcher
from ocibuild.ups.manifest import ManifestEntry, parse_manifest
from ocibuild.ups.names import BundleSpec
from ocibuild.ups.scisoft import manifest_urls, tarball_names, tarball_url
from ocibuild.ups.tarball import ProductTarball


def fetch_manifest(
    fetcher: Fetcher, root: str, bundle: BundleSpec, flavor: str, qualifiers: str, build: str
) -> tuple[Fetched, list[ManifestEntry]]:
    what = f"manifest of {bundle}"
    failures = []
    for url in manifest_urls(root, bundle, flavor, qualifiers, build):
        try:
            fetched = fetcher.fetch(url, what)
        except MissingDownloadError as e:
            failures.append(e.message.removeprefix(f"{what}: "))
            continue
        try:
            text = fetched.path.read_text()
        except UnicodeDecodeError:
            raise SourceError(f"{what}: {url} is not a text file") from None
        return fetched, parse_manifest(text, url)
    raise SourceError(f"{what}: found at neither location: {'; '.join(failures)}")


def resolve_products(
    fetcher: Fetcher, root: str, products: Sequence[tuple[str, str, str, str]], flavor: str
) -> list[ManifestEntry]:
    """Manifest entries for products named in the recipe as (name, version, quals, tarball);
    without a tarball name, the first published name (OS-specific, noarch, by flavor)."""
    out = []
    for name, version, quals, tarball in products:
        if tarball:
            out.append(ManifestEntry(name, version, tarball, flavor, quals))
            continue
        candidates = [
            (tarball_url(root, name, version, file), file, file_flavor)
            for file, file_flavor in tarball_names(name, version, flavor, quals)
        ]
        found = next((c for c in candidates if _pinned(fetcher, c[0])), None)
        if found is None:
            found = next((c for c in candidates if fetcher.exists(c[0])), None)
        if found is None:
            tried = ", ".join(c[0] for c in candidates)
            raise SourceError(f"{name} {version}: no tarball on the mirror; tried {tried}")
        out.append(ManifestEntry(name, version, found[1], found[2], quals))
    return out


def _pinned(fetcher: Fetcher, url: str) -> bool:
    return fetcher.lock is not None and fetcher.lock.get(url) is not None


def fetch_tarballs(
    fetcher: Fetcher, root: str, entries: Sequence[ManifestEntry]
) -> list[ProductTarball]:
    requests = [
        (tarball_url(root, e.product, e.version, e.tarball), f"{e.product} {e.version}")
        for e in entries
    ]
    fetched = fetcher.fetch_all(requests)
    return [
        ProductTarball(e.product, e.version, f.url, f.path, f.size, f.sha256)
        for e, f in zip(entries, fetched, strict=True)
    ]
