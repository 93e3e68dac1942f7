"""`ups`: UPS products from a scisoft mirror, as `pullProducts` would install them.

    - ups: {bundle: art-v1_18_03, os: slf6, qualifiers: e9, build: prof}
    - ups: {products: [[art, v1_18_03, "e9:prof"], [cetpkgsupport, v1_08_07]], os: slf6}

Planning reads the manifest, asks each tarball's size (grouping products into layers needs
it), then starts the downloads in layer order (parallel, cached, pinned in the recipe's lock
file) and hands out each layer as a deferred plan: it is ready when its own tarballs are, so the
first layers are decoded and compressed while the later tarballs still download. When the lock
file pins every tarball, the keys and sizes come from the pins and nothing is downloaded while
planning: a layer's tarballs are fetched only if the builder has to write it. A layer streams
its tarballs into entries under `into`. Its cache key depends only on its tarballs' sha256 and
`into`, never on the bundle.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future

from ocibuild.errors import FetchError, LockError, Origin, SourceError
from ocibuild.fetch import Fetcher, Pin
from ocibuild.layer.entry import Entry, clean_path
from ocibuild.progress import Message, plural
from ocibuild.sources.base import (
    DeferredPlan,
    LayerPlan,
    Planned,
    SourceContext,
    fetcher_for,
    input_key,
)
from ocibuild.sources.specs import UpsSpec
from ocibuild.ups.layering import group_products
from ocibuild.ups.manifest import ManifestEntry
from ocibuild.ups.names import (
    colon_qualifiers,
    flavor_for_os,
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


def plan(spec: UpsSpec, ctx: SourceContext) -> list[Planned]:
    into = clean_path(spec.into)
    fetcher = fetcher_for(ctx, hint=MIRROR_HINT, mirror=ctx.mirror)
    try:
        entries = _entries(spec, ctx, fetcher)
        listed = wanted_tarballs(ctx.mirror, entries)
        pins = [None if ctx.update_lock else fetcher.pinned(w.url) for w in listed]
        if all(pins):
            return _pinned_plans(listed, [p for p in pins if p], fetcher, into, spec)
        wanted: list[WantedTarball] | None = listed  # grouping other than by size needs none
        if spec.layering == "auto":  # grouping by size: ask each tarball's
            wanted = tarball_sizes(fetcher, listed)
        if wanted is None:  # the mirror does not say sizes: group once everything is here
            tarballs = fetch_tarballs(fetcher, listed)
            return [_fetched_layer(g, into, spec) for g in group_products(tarballs, spec.layering)]
    except (FetchError, LockError, SourceError) as e:
        raise e.located(ctx.origin) from None
    groups = group_products(wanted, spec.layering)
    started = iter(start_tarballs(fetcher, [w for group in groups for w in group]))
    return [
        DeferredPlan(_when_fetched([next(started) for _ in group], into, spec, ctx.origin))
        for group in groups
    ]


def _pinned_plans(
    listed: list[WantedTarball], pins: list[Pin], fetcher: Fetcher, into: str, spec: UpsSpec
) -> list[Planned]:
    """Every tarball pinned: the layers, grouped and keyed by the pins, nothing downloaded."""
    pinned = [dataclasses.replace(w, size=pin.size) for w, pin in zip(listed, pins, strict=True)]
    sha256 = {w.url: pin.sha256 for w, pin in zip(listed, pins, strict=True)}
    return [
        _pinned_layer(group, [sha256[w.url] for w in group], fetcher, into, spec)
        for group in group_products(pinned, spec.layering)
    ]


def _entries(spec: UpsSpec, ctx: SourceContext, fetcher: Fetcher) -> list[ManifestEntry]:
    flavor = flavor_for_os(spec.os)
    if spec.bundle is not None:
        bundle = parse_bundle_spec(spec.bundle)
        manifest, entries = fetch_manifest(
            fetcher, ctx.mirror, bundle, flavor, spec.qualifiers, spec.build
        )
        ctx.report(Message(f"ups {spec.what}: {plural(len(entries), 'product')} in {manifest.url}"))
        return entries
    named = [
        (p[0], p[1], colon_qualifiers(p[2]) if len(p) > 2 else "", p[3] if len(p) > 3 else "")
        for p in spec.products
    ]
    return resolve_products(fetcher, ctx.mirror, named, flavor)


def _when_fetched(
    fetching: list[Future[ProductTarball]], into: str, spec: UpsSpec, origin: Origin
) -> Callable[[], LayerPlan]:
    def resolve() -> LayerPlan:
        try:
            group = [f.result() for f in fetching]
        except (FetchError, LockError, SourceError) as e:
            raise e.located(origin) from None
        return _fetched_layer(group, into, spec)

    return resolve


def _fetched_layer(group: list[ProductTarball], into: str, spec: UpsSpec) -> LayerPlan:
    return _layer(
        group,
        [t.sha256 for t in group],
        lambda: tarball_entries(group, into, readers=1),
        into,
        spec,
    )


def _pinned_layer(
    group: list[WantedTarball], sha256: list[str], fetcher: Fetcher, into: str, spec: UpsSpec
) -> LayerPlan:
    """A layer keyed by the lock file's pins: its tarballs are fetched only if it is written
    (`prepare`, in layer order), and read as each arrives."""
    fetching: list[Future[ProductTarball]] = []

    def prepare() -> None:
        if not fetching:
            fetching.extend(start_tarballs(fetcher, group))

    def entries() -> Iterator[Entry]:
        prepare()
        return tarball_entries(fetching, into, readers=1)

    return _layer(group, sha256, entries, into, spec, prepare)


def _layer(
    group: Sequence[WantedTarball | ProductTarball],
    sha256: list[str],
    entries: Callable[[], Iterable[Entry]],
    into: str,
    spec: UpsSpec,
    prepare: Callable[[], None] | None = None,
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
        key=input_key("ups", LAYER_FORMAT, into, sha256),
        description=description,
        # one tarball at a time: indexed_bzip2 already decodes it on every core, and a second
        # reader's decoders only compete with the first's for the cores and their caches
        entries=entries,
        created_by=f"ocibuild ups {spec.what} -> /{into}: {listed}",
        every_core=any(decodes_on_every_core(t.url) for t in group),
        prepare=prepare,
    )


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
