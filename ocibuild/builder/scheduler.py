"""The layers of one image, each a future of one `Layer`: a hit of the layer cache, or written
(in a thread pool: compressors release the GIL) into the image's store transaction. A plan
whose key waits on its downloads is resolved in the pool too, so earlier layers are written
while it waits. Layers whose plans use every core read their entries one at a time. When a
source has several heavy layers that can be made apart, each is written in a process of its
own (`ocibuild.layer.apart`): their Python work then shares no GIL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ocibuild.compression import Compression
from ocibuild.errors import Cancelled
from ocibuild.layer import apart
from ocibuild.layer.blob import Layer
from ocibuild.layer.codec import threads
from ocibuild.layer.entry import Entry
from ocibuild.layer.writer import write_layer
from ocibuild.oci import Descriptor
from ocibuild.progress import LayerEvent, Message, Reporter
from ocibuild.sources.base import Apart, LayerPlan, input_key
from ocibuild.store.state import State
from ocibuild.store.transaction import Transaction

PROGRESS_INTERVAL = 0.1  # seconds between progress reports of a layer being written
# a layer is written apart when its source has at least APART_LAYERS layers of at least
# APART_WEIGHT (tarball bytes) that can be, on a machine of more than one core: a process
# costs an interpreter's start, and only layers that would share the GIL gain from one
APART_WEIGHT = 16 << 20
APART_LAYERS = 2


@dataclass(frozen=True)
class BuiltLayer:
    """A layer of a built image: the blob, what made it, and whether the cache had it."""

    layer: Layer
    key: str  # the layer cache's key: the plan's inputs, compression and timestamp
    plan: LayerPlan
    cached: bool

    @property
    def descriptor(self) -> Descriptor:
        return self.layer.descriptor


class LayerScheduler:
    def __init__(
        self,
        tx: Transaction,
        state: State,
        pool: ThreadPoolExecutor,
        compression: Compression,
        mtime: int,
        report: Reporter,
        use_cache: bool = True,
        cancel: threading.Event | None = None,
        uncached: dict[str, Layer] | None = None,
    ) -> None:
        self.tx, self.state, self.pool = tx, state, pool
        self.compression, self.mtime, self.report = compression, mtime, report
        self.use_cache = use_cache
        self.cancel = cancel or threading.Event()
        self.uncached = {} if uncached is None else uncached
        self.every_core = threading.Lock()  # held while reading the entries of such a layer

    def schedule(self, plans: Sequence[LayerPlan]) -> list[Future[BuiltLayer]]:
        """The layers of one source's `plans`, called in layer order: a cache hit at once when
        its key is known, else started (its downloads begin, in layer order) and resolved in
        the pool, the heaviest first: the longest layer does not wait for the short ones."""
        futures: dict[int, Future[BuiltLayer]] = {}
        for index, plan in enumerate(plans):
            if isinstance(plan.key, str) and (hit := self._cache_hit(plan, plan.key)) is not None:
                done: Future[BuiltLayer] = Future()
                done.set_result(hit)
                futures[index] = done
            elif plan.start is not None:
                plan.start()
        waiting = [i for i in range(len(plans)) if i not in futures]
        heavy = _apart([plans[i] for i in waiting])
        for index in sorted(waiting, key=lambda i: -plans[i].weight):
            plan = plans[index]
            futures[index] = self.pool.submit(
                self._build, plan, plan.apart if plan in heavy else None
            )
        return [futures[i] for i in range(len(plans))]

    def _cache_key(self, plan_key: str) -> str:
        return input_key(plan_key, str(self.compression), self.mtime)

    def _cache_hit(self, plan: LayerPlan, plan_key: str) -> BuiltLayer | None:
        if not self.use_cache:
            return None
        key = self._cache_key(plan_key)
        if hit := self.uncached.get(key):  # written by this build
            return self._finished(key, plan, hit, cached=True)
        hit = self.state.cached_layer(key)
        if hit is None:
            return None
        present = self.tx.has_blob(hit.digest)
        if present and self.tx.verified(hit.digest, hit.size):
            return self._finished(key, plan, hit, cached=True)
        if present:  # not what its digest says: removed by `verified`
            self.report(
                Message(
                    f"{plan.description}: the layer cache's blob {hit.digest} is corrupt: "
                    "removed, and the layer built again",
                    "warning",
                )
            )
        self.state.forget_layers({hit.digest})
        return None

    def _build(self, plan: LayerPlan, made_apart: Apart | None) -> BuiltLayer:
        if self.cancel.is_set():
            raise Cancelled("layer not started")
        if isinstance(plan.key, str):  # not in the cache: `schedule` looked
            return self._write(plan, plan.key, made_apart)
        plan_key = plan.key()  # waits for what the key depends on (downloads)
        if self.cancel.is_set():
            raise Cancelled("layer not started")
        return self._cache_hit(plan, plan_key) or self._write(plan, plan_key, made_apart)

    def _write(self, plan: LayerPlan, plan_key: str, made_apart: Apart | None) -> BuiltLayer:
        key = self._cache_key(plan_key)

        def progress(done: int) -> None:
            self.report(LayerEvent(key, plan.description, "building", done, plan.size_hint))

        progress(0)
        started = time.monotonic()
        shown = [started]

        def throttled(done: int) -> None:
            now = time.monotonic()
            if now - shown[0] >= PROGRESS_INTERVAL:
                shown[0] = now
                progress(done)

        def entries() -> Iterable[Entry]:
            if plan.every_core:
                return _holding(self.every_core, plan.entries)
            return plan.entries()

        if made_apart is not None:
            layer = self.tx.write_layer_at(
                lambda path: self._written_apart(made_apart, path, throttled)
            )
        else:
            layer = self.tx.write_layer(
                lambda sink: write_layer(
                    entries(), sink, self.compression, self.mtime, throttled, self.cancel
                )
            )
        self.uncached.setdefault(key, layer)
        return self._finished(key, plan, layer, cached=False, seconds=time.monotonic() - started)

    def _written_apart(
        self, made_apart: Apart, path: Path, progress: Callable[[int], None]
    ) -> Layer:
        job, settle = made_apart()
        try:
            layer, outcome = apart.write_apart(
                job, path, self.compression, self.mtime, progress, self.cancel
            )
        except BaseException as e:
            settle(e)
            raise
        settle(outcome)
        return layer

    def _finished(
        self, key: str, plan: LayerPlan, layer: Layer, *, cached: bool, seconds: float = 0.0
    ) -> BuiltLayer:
        status = "cached" if cached else "built"
        done = layer.tar_size
        if cached:
            self.report(LayerEvent(key, plan.description, status, done, done))
        else:
            self.report(
                LayerEvent(
                    key, plan.description, status, done, done, layer.size, layer.digest, seconds
                )
            )
        return BuiltLayer(layer, key, plan, cached)


def _apart(plans: Sequence[LayerPlan]) -> set[LayerPlan]:
    """The plans to write in processes of their own."""
    heavy = {p for p in plans if p.apart is not None and p.weight >= APART_WEIGHT}
    return heavy if len(heavy) >= APART_LAYERS and threads() > 1 else set()


def _holding(lock: threading.Lock, entries: Callable[[], Iterable[Entry]]) -> Iterator[Entry]:
    """The entries, read while holding `lock`: the next such layer starts reading as soon as
    this one's are all read, while this one's compressor and hashes finish."""
    with lock:
        yield from entries()
