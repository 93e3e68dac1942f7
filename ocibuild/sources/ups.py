"""`ups`: UPS products from a scisoft mirror, as `pullProducts` would install them.

    - ups: {bundle: art-v1_18_03, os: slf6, qualifiers: e9, build: prof}
    - ups: {products: [[art, v1_18_03, "e9:prof"], [cetpkgsupport, v1_08_07]], os: slf6}

Planning reads the manifest and asks each tarball's size (grouping products into layers needs
it). Each layer's plan starts its own downloads when the builder starts it, in layer order
(parallel, cached, pinned in the recipe's lock file), and its key waits for its own tarballs
only: the first layers are decoded and compressed while the later tarballs still download.
When the lock file pins every tarball, the keys and sizes come from the pins: a layer in the
cache downloads nothing. A layer streams its tarballs into entries under `into`. Its cache key
depends only on its tarballs' sha256 and `into`, never on the bundle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import replace

from ocibuild.errors import FetchError, LockError, Origin, SourceError
from ocibuild.fetch import Fetcher
from ocibuild.layer.entry import Entry, clean_path
from ocibuild.net.links import safe_url
from ocibuild.progress import Message, plural
from ocibuild.sbom import Component
from ocibuild.sources.base import LayerPlan, fetcher_for, input_key
from ocibuild.sources.session import LayerContext
from ocibuild.sources.specs import UpsSpec
from ocibuild.ups.layering import group_products
from ocibuild.ups.manifest import ManifestEntry
from ocibuild.ups.names import (
    colon_qualifiers,
    flavor_for_os,
    flavor_platforms,
    parse_bundle_spec,
)
from ocibuild.ups.pull import (
    WantedTarball,
    fetch_manifest,
    fetch_tarballs,
    resolve_products,
    start_tarballs,
    tarball_sizes,
    wanted_tarballs,
)
from ocibuild.ups.tarball import ProductTarball, decodes_on_every_core, tarball_entries

MIRROR_HINT = (
    "to use another scisoft mirror, give --mirror, $OCIBUILD_SCISOFT or mirror: in the recipe"
)

LAYER_FORMAT = 1  # bump when the entries made from a tarball change


def plan(spec: UpsSpec, ctx: LayerContext) -> list[LayerPlan]:
    flavor = flavor_for_os(spec.os)
    if ctx.platform not in flavor_platforms(flavor):
        covered = ", ".join(flavor_platforms(flavor)) or "none"
        raise SourceError(
            f"ups: os {spec.os} is the UPS flavor {flavor}, whose products run on {covered}: "
            f"not on {ctx.platform} (UPS has no products for it; build this image for "
            "linux/amd64 only)",
            spec.origin or ctx.origin,
        )
    into = clean_path(spec.into)
    mirror = ctx.session.mirror
    fetcher = fetcher_for(ctx, hint=MIRROR_HINT, mirror=mirror)
    try:
        listed = wanted_tarballs(mirror, _entries(spec, ctx, fetcher))
        pins = [None if ctx.session.settings.update_lock else fetcher.pinned(w.url) for w in listed]
        if all(pins):  # the layers keyed and sized by the pins: nothing downloaded
            pinned = [replace(w, size=p.size) for w, p in zip(listed, pins, strict=True) if p]
            sha256 = {w.url: p.sha256 for w, p in zip(listed, pins, strict=True) if p}
            return [
                _layer(group, fetcher, into, spec, ctx.origin, [sha256[w.url] for w in group])
                for group in group_products(pinned, spec.layering)
            ]
        wanted: list[WantedTarball] | None = listed  # grouping other than by size needs none
        if spec.layering == "auto":  # grouping by size: ask each tarball's
            wanted = tarball_sizes(fetcher, listed)
        if wanted is None:  # the mirror does not say sizes: group once everything is here
            tarballs = fetch_tarballs(fetcher, listed)
            named = {w.url: w for w in listed}
            return [
                _fetched_layer(g, into, spec, named)
                for g in group_products(tarballs, spec.layering)
            ]
    except (FetchError, LockError, SourceError) as e:
        raise e.located(ctx.origin) from None
    return [
        _layer(group, fetcher, into, spec, ctx.origin)
        for group in group_products(wanted, spec.layering)
    ]


def _entries(spec: UpsSpec, ctx: LayerContext, fetcher: Fetcher) -> list[ManifestEntry]:
    flavor = flavor_for_os(spec.os)
    mirror = ctx.session.mirror
    if spec.bundle is not None:
        bundle = parse_bundle_spec(spec.bundle)
        manifest, entries = fetch_manifest(
            fetcher, mirror, bundle, flavor, spec.qualifiers, spec.build
        )
        ctx.report(Message(f"ups {spec.what}: {plural(len(entries), 'product')} in {manifest.url}"))
        return entries
    named = [
        (p[0], p[1], colon_qualifiers(p[2]) if len(p) > 2 else "", p[3] if len(p) > 3 else "")
        for p in spec.products
    ]
    return resolve_products(fetcher, mirror, named, flavor)


def _layer(
    group: list[WantedTarball],
    fetcher: Fetcher,
    into: str,
    spec: UpsSpec,
    origin: Origin,
    pinned: list[str] | None = None,
) -> LayerPlan:
    """A layer whose tarballs are fetched once it is started (in layer order), and read as
    each arrives. Keyed by the lock file's pins (`pinned`: their sha256) when it has them, and
    so never started when it is cached; else by the tarballs' sha256 once they are here."""
    fetching: list[Future[ProductTarball]] = []

    def start() -> None:
        if not fetching:
            fetching.extend(start_tarballs(fetcher, group))

    def key() -> str:
        start()
        try:
            return _key(into, [f.result().sha256 for f in fetching])
        except (FetchError, LockError, SourceError) as e:
            raise e.located(origin) from None

    def entries() -> Iterator[Entry]:
        start()
        return tarball_entries(fetching, into, readers=1)

    def components() -> list[Component]:
        sha256 = pinned or [f.result().sha256 for f in fetching]
        return [_component(w, digest, into) for w, digest in zip(group, sha256, strict=True)]

    return _plan(
        group, _key(into, pinned) if pinned else key, entries, into, spec, components, start
    )


def _fetched_layer(
    group: list[ProductTarball], into: str, spec: UpsSpec, named: dict[str, WantedTarball]
) -> LayerPlan:
    return _plan(
        group,
        _key(into, [t.sha256 for t in group]),
        lambda: tarball_entries(group, into, readers=1),
        into,
        spec,
        lambda: [_component(named[t.url], t.sha256, into) for t in group],
    )


def _component(tarball: WantedTarball, sha256: str, into: str) -> Component:
    """A UPS product as the SBOM lists it: name, version, flavor, qualifiers, its tarball."""
    return Component(
        kind="ups",
        name=tarball.product,
        version=tarball.version,
        sha256=sha256,
        url=safe_url(tarball.url),
        path=f"/{into}/{tarball.product}/{tarball.version}",
        properties=(("flavor", tarball.flavor), ("qualifiers", tarball.qualifiers)),
    )


def _key(into: str, sha256: list[str]) -> str:
    return input_key("ups", LAYER_FORMAT, into, sha256)


def _plan(
    group: Sequence[WantedTarball | ProductTarball],
    key: str | Callable[[], str],
    entries: Callable[[], Iterable[Entry]],
    into: str,
    spec: UpsSpec,
    components: Callable[[], Sequence[Component]],
    start: Callable[[], None] | None = None,
) -> LayerPlan:
    size = sum(t.size for t in group)
    names = [f"{t.product} {t.version}" for t in group]
    if len(group) == 1:
        description = f"ups: {names[0]} ({_megabytes(size)} tarball)"
    else:
        description = (
            f"ups: {plural(len(group), 'product')} of {spec.what} ({_megabytes(size)} of tarballs)"
        )
    listed = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    return LayerPlan(
        key=key,
        description=description,
        # one tarball at a time: indexed_bzip2 already decodes it on every core, and a second
        # reader's decoders only compete with the first's for the cores and their caches
        entries=entries,
        created_by=f"ocibuild ups {spec.what} -> /{into}: {listed}",
        every_core=any(decodes_on_every_core(t.url) for t in group),
        weight=size,
        start=start,
        components=components,
    )


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
