"""What pullProducts does before unpacking: find the bundle's manifest (current location, then
the older one) and fetch every product tarball it lists, in parallel, through the download
cache and the recipe's lock file (which pins the manifest and every tarball by sha256).
`tarball_sizes` asks each tarball's size first (pinned, cached, or HEAD), so products can be
grouped into layers and the downloads started in layer order (`start_tarballs`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

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
        found = next((c for c in candidates if fetcher.pinned(c[0])), None)
        if found is None:
            found = next((c for c in candidates if fetcher.exists(c[0])), None)
        if found is None:
            tried = ", ".join(c[0] for c in candidates)
            raise SourceError(f"{name} {version}: no tarball on the mirror; tried {tried}")
        out.append(ManifestEntry(name, version, found[1], found[2], quals))
    return out


@dataclass(frozen=True)
class WantedTarball:
    """A product's tarball on the mirror, not yet fetched."""

    product: str
    version: str
    url: str
    size: int  # 0 when not asked
    flavor: str = ""  # as the manifest (or the recipe) names the product
    qualifiers: str = ""

    @property
    def what(self) -> str:
        return f"{self.product} {self.version}"


def wanted_tarballs(root: str, entries: Sequence[ManifestEntry]) -> list[WantedTarball]:
    return [
        WantedTarball(
            e.product,
            e.version,
            tarball_url(root, e.product, e.version, e.tarball),
            0,
            e.flavor,
            e.qualifiers,
        )
        for e in entries
    ]


def tarball_sizes(fetcher: Fetcher, wanted: Sequence[WantedTarball]) -> list[WantedTarball] | None:
    """The tarballs with their sizes, asked in parallel without downloading; None when the
    mirror does not say every size."""
    with ThreadPoolExecutor(max_workers=max(1, fetcher.parallel)) as pool:
        sizes = list(pool.map(fetcher.size, [w.url for w in wanted]))
    if any(size is None for size in sizes):
        return None
    return [dataclasses.replace(w, size=size or 0) for w, size in zip(wanted, sizes, strict=True)]


def fetch_tarballs(fetcher: Fetcher, wanted: Sequence[WantedTarball]) -> list[ProductTarball]:
    """Fetch every tarball; the first failure is raised once all ended."""
    futures = start_tarballs(fetcher, wanted)
    wait(futures)
    return [f.result() for f in futures]


def start_tarballs(
    fetcher: Fetcher, wanted: Sequence[WantedTarball]
) -> list[Future[ProductTarball]]:
    """Start fetching the tarballs in the background, in the order given."""
    started = fetcher.start_all([(w.url, w.what) for w in wanted])
    return [_as_tarball(w, f) for w, f in zip(wanted, started, strict=True)]


def _as_tarball(wanted: WantedTarball, fetching: Future[Fetched]) -> Future[ProductTarball]:
    tarball: Future[ProductTarball] = Future()

    def done(f: Future[Fetched]) -> None:
        if (error := f.exception()) is not None:
            tarball.set_exception(error)
            return
        got = f.result()
        tarball.set_result(
            ProductTarball(wanted.product, wanted.version, got.url, got.path, got.size, got.sha256)
        )

    fetching.add_done_callback(done)
    return tarball
