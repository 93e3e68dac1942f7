"""Where things live on a scisoft mirror: bundle manifests and product tarballs.

    <root>/bundles/<bundle>/<version>/manifest/<manifest>      (current location)
    <root>/manifest/<bundle>/<version>/<manifest>              (older location)
    <root>/packages/<product>/<version>/<tarball>

with `<manifest>` = `<bundle>-<dotted version>-<flavor>[-<quals dash-joined>][-<build>]_MANIFEST.txt`.
"""

from __future__ import annotations

from ocibuild.ups.names import (
    NULL_FLAVOR,
    BundleSpec,
    dash_qualifiers,
    dotted,
    os_for_flavor,
)


def manifest_name(bundle: BundleSpec, flavor: str, qualifiers: str, build: str) -> str:
    parts = [bundle.name, dotted(bundle.version), flavor]
    if quals := dash_qualifiers(qualifiers):
        parts.append(quals)
    if build:
        parts.append(build)
    return "-".join(parts) + "_MANIFEST.txt"


def manifest_urls(
    root: str, bundle: BundleSpec, flavor: str, qualifiers: str, build: str
) -> list[str]:
    """The manifest's URL at the current location, then at the older one."""
    name = manifest_name(bundle, flavor, qualifiers, build)
    root = root.rstrip("/")
    return [
        f"{root}/bundles/{bundle.name}/{bundle.version}/manifest/{name}",
        f"{root}/manifest/{bundle.name}/{bundle.version}/{name}",
    ]


def tarball_url(root: str, product: str, version: str, tarball: str) -> str:
    return f"{root.rstrip('/')}/packages/{product}/{version}/{tarball}"


def tarball_names(
    product: str, version: str, flavor: str, qualifiers: str
) -> list[tuple[str, str]]:
    """(name, flavor) of the names a product's tarball may be published under, most likely
    first, for products named without a manifest: `<p>-<dotted>-<os>-x86_64[-<quals>]`,
    `<p>-<dotted>-noarch[-<quals>]` (flavor NULL), `<p>-<dotted>-<flavor>[-<quals>]`."""
    quals = dash_qualifiers(qualifiers)
    suffix = f"-{quals}.tar.bz2" if quals else ".tar.bz2"
    stem = f"{product}-{dotted(version)}"
    names = []
    if flavor != NULL_FLAVOR and (os_name := os_for_flavor(flavor)):
        names.append((f"{stem}-{os_name}-x86_64{suffix}", flavor))
    names.append((f"{stem}-noarch{suffix}", NULL_FLAVOR))
    if flavor != NULL_FLAVOR:
        names.append((f"{stem}-{flavor}{suffix}", flavor))
    return names
