"""One image, as a flat list of steps: plan each layer source, schedule its layers (cache hit
or write), compute the config and history, and commit it all to the store in one transaction."""

from __future__ import annotations

import datetime
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

from ocibuild.builder.config import image_config
from ocibuild.builder.scheduler import BuiltLayer, LayerScheduler
from ocibuild.compression import Compression
from ocibuild.errors import DigestMismatchError, RecipeError
from ocibuild.layer.blob import Layer
from ocibuild.oci import Descriptor, ImageConfig
from ocibuild.oci.mediatypes import to_oci
from ocibuild.progress import Event, SetupEvent
from ocibuild.recipe import ImageSpec
from ocibuild.sources.session import BuildSession, ImageFiles, LayerContext
from ocibuild.store import Store, StoredImage
from ocibuild.store.rootfs import ImageFS
from ocibuild.store.transaction import Transaction


@dataclass(frozen=True)
class BuiltImage(StoredImage):
    """An image as stored, with every reference it was tagged with and its own layers."""

    refs: tuple[str, ...] = ()
    layers: tuple[BuiltLayer, ...] = ()
    not_frozen: int = 0  # UPS table lines the frozen Env could not hold (warned)


def build_image(
    store: Store,
    session: BuildSession,
    image: ImageSpec,
    refs: list[str],
    base: StoredImage | None,
    compression: Compression,
    uncached: dict[str, Layer],
    fmt: str = "auto",
    platform: str | None = None,
) -> BuiltImage:
    """Build `image` for `platform` (os/arch, default the image's `platform`) on `base` into
    `store`, its manifest in the family `fmt` (auto, oci, docker); `uncached` collects the layers this build wrote (remembered in the layer cache
    once the build ends) and answers for them meanwhile."""
    mtime = session.source_date_epoch
    platform = platform or image.platform
    created = datetime.datetime.fromtimestamp(mtime, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    base_config = base.config if base else ImageConfig()
    base_layers = base.manifest.layers if base else ()
    futures: list[Future[BuiltLayer]] = []
    not_frozen = 0

    def report(event: Event) -> None:
        nonlocal not_frozen
        if isinstance(event, SetupEvent):
            not_frozen += event.not_frozen
        session.report(event)

    image_session = replace(session, report=report)
    if base is not None:
        _check_base(store, base)
    with store.transaction() as tx:
        pool = ThreadPoolExecutor(max_workers=max(1, session.settings.jobs))
        try:
            scheduler = LayerScheduler(
                tx,
                store.state,
                pool,
                compression,
                mtime,
                session.report,
                not session.settings.no_cache,
                session.cancel,
                uncached,
            )
            source_start: list[int] = []  # per layer: how many layers its source's come after
            for index, layer in enumerate(image.layers):
                lower = _files(tx, base_layers, futures) if layer.needs_lower else None
                ctx = LayerContext(image_session, layer.origin, index, lower, platform)
                plans = layer.plan(ctx)
                source_start += [len(futures)] * len(plans)
                futures += scheduler.schedule(plans)
            layers = tuple(f.result() for f in futures)
        except BaseException:
            # layers not started never start; those under way stop at their next chunk
            session.cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown()
        whole = _files(tx, base_layers, futures)
        config = image_config(
            base_config,
            [built.plan for built in layers],
            [built.layer for built in layers],
            image,
            created,
            lambda i: ImageFiles(whole, _files(tx, base_layers, futures[: source_start[i]])),
            platform,
        )
        try:
            stored = tx.commit(
                refs[0],
                config,
                [*(_as_oci(d) for d in base_layers), *(built.descriptor for built in layers)],
                annotations=dict(image.annotations),
                fmt=fmt,
            )
        except ValueError as e:  # a family the layers have no form in (zstd as Docker)
            raise RecipeError(f"format {fmt}: {e}", image.origin) from None
    return BuiltImage(
        stored.ref,
        stored.descriptor,
        stored.manifest,
        stored.config,
        tuple(refs),
        layers,
        not_frozen,
    )


def _check_base(store: Store, base: StoredImage) -> None:
    """The base image's layers are reused as they are: each must be in the store intact (a
    corrupt one is removed, so that pulling or building the base again restores it)."""
    for layer in base.manifest.layers:
        if not store.verified(layer.digest, layer.size):
            raise DigestMismatchError(
                f"base image {base.ref}: its layer {layer.digest} is missing from the store "
                f"{store.root} or was corrupt (removed): pull or build {base.ref} again"
            )


def _files(
    tx: Transaction, base_layers: tuple[Descriptor, ...], below: list[Future[BuiltLayer]]
) -> ImageFS:
    """The filesystem of the base image and the layers `below` (waiting for them)."""
    return ImageFS(tx, [*base_layers, *(f.result().descriptor for f in below)])


def _as_oci(descriptor: Descriptor) -> Descriptor:
    return Descriptor(
        to_oci(descriptor.media_type),
        descriptor.digest,
        descriptor.size,
        dict(descriptor.annotations),
    )
