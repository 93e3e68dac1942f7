"""One image, as a flat list of steps: plan each layer source, schedule its layers (cache hit
or write), compute the config and history, and commit it all to the store in one transaction."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ocibuild.builder.config import image_config
from ocibuild.builder.inputs import ContentDigests, source_date_epoch
from ocibuild.builder.scheduler import BuiltLayer, LayerScheduler
from ocibuild.compression import Compression
from ocibuild.errors import Origin
from ocibuild.fetch import LockFile
from ocibuild.layer.blob import Layer
from ocibuild.oci import Descriptor, ImageConfig
from ocibuild.oci.mediatypes import to_oci
from ocibuild.progress import Event, Reporter, SetupEvent
from ocibuild.recipe import ImageSpec, Recipe
from ocibuild.sources import SOURCES
from ocibuild.sources.base import SourceContext
from ocibuild.store import Store, StoredImage
from ocibuild.store.rootfs import ImageFS
from ocibuild.store.transaction import Transaction


@dataclass(frozen=True)
class BuiltImage(StoredImage):
    """An image as stored, with every reference it was tagged with and its own layers."""

    refs: tuple[str, ...] = ()
    layers: tuple[BuiltLayer, ...] = ()
    not_frozen: int = 0  # UPS table lines the frozen Env could not hold (warned)


@dataclass(frozen=True)
class ImageInputs:
    """What the build of every image of a recipe shares."""

    recipe: Recipe
    lock: LockFile
    mirror: str
    cache_dir: Path
    offline: bool
    update_lock: bool
    content_digest: ContentDigests
    report: Reporter
    variables: Mapping[str, str]  # `--var NAME=VALUE`
    cancel: threading.Event  # set on Ctrl-C or a failed layer: the others stop
    warned: set[str]  # UPS setup warnings already given in this build
    insecure: bool  # downloads without TLS verification (`--insecure`)
    uncached: dict[str, Layer]  # layers written by this build, cached once it ends


def build_image(
    store: Store,
    inputs: ImageInputs,
    image: ImageSpec,
    refs: list[str],
    base: StoredImage | None,
    compression: Compression,
    jobs: int,
    use_cache: bool,
) -> BuiltImage:
    recipe = inputs.recipe
    mtime = source_date_epoch(recipe)
    created = datetime.datetime.fromtimestamp(mtime, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    base_config = base.config if base else ImageConfig()
    base_layers = base.manifest.layers if base else ()
    futures: list[Future[BuiltLayer]] = []
    not_frozen = 0

    def report(event: Event) -> None:
        nonlocal not_frozen
        if isinstance(event, SetupEvent):
            not_frozen += event.not_frozen
        inputs.report(event)

    with store.transaction() as tx:
        pool = ThreadPoolExecutor(max_workers=max(1, jobs))
        try:
            scheduler = LayerScheduler(
                tx,
                store.state,
                pool,
                compression,
                mtime,
                inputs.report,
                use_cache,
                inputs.cancel,
                inputs.uncached,
            )
            for index, spec in enumerate(image.layers):
                kind = SOURCES[spec.source]
                lower = None
                if kind.needs_lower:
                    lower = _files(tx, base_layers, futures)
                ctx = _context(inputs, spec.origin, index, mtime, lower, report)
                for planned in kind.plan(spec.spec, ctx):
                    futures.append(scheduler.schedule(planned))
            layers = tuple(f.result() for f in futures)
        except BaseException:
            # layers not started never start; those under way stop at their next chunk
            inputs.cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown()
        config = image_config(
            base_config,
            [built.plan for built in layers],
            [built.layer for built in layers],
            image,
            created,
            _files(tx, base_layers, futures),
        )
        stored = tx.commit(
            refs[0],
            config,
            [*(_as_oci(d) for d in base_layers), *(built.descriptor for built in layers)],
            annotations=dict(image.annotations),
        )
    return BuiltImage(
        stored.ref,
        stored.descriptor,
        stored.manifest,
        stored.config,
        tuple(refs),
        layers,
        not_frozen,
    )


def _files(
    tx: Transaction, base_layers: tuple[Descriptor, ...], below: list[Future[BuiltLayer]]
) -> ImageFS:
    """The filesystem of the base image and the layers `below` (waiting for them)."""
    return ImageFS(tx, [*base_layers, *(f.result().descriptor for f in below)])


def _context(
    inputs: ImageInputs,
    origin: Origin,
    index: int,
    mtime: int,
    lower: ImageFS | None,
    report: Reporter,
) -> SourceContext:
    return SourceContext(
        recipe_file=inputs.recipe.path,
        origin=origin,
        layer_index=index,
        source_date_epoch=mtime,
        mirror=inputs.mirror,
        cache_dir=inputs.cache_dir,
        offline=inputs.offline,
        update_lock=inputs.update_lock,
        lower=lower,
        report=report,
        lock=inputs.lock,
        content_digest=inputs.content_digest,
        variables=inputs.variables,
        warned=inputs.warned,
        insecure=inputs.insecure,
        cancel=inputs.cancel,
    )


def _as_oci(descriptor: Descriptor) -> Descriptor:
    return Descriptor(
        to_oci(descriptor.media_type),
        descriptor.digest,
        descriptor.size,
        dict(descriptor.annotations),
    )
