"""The layer scheduler: deferred plans are resolved in its pool while earlier layers are
written, and layers whose plans use every core are written one at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ocibuild.builder.scheduler import LayerScheduler
from ocibuild.compression import Compression
from ocibuild.layer.entry import Entry, bytes_entry
from ocibuild.progress import silent
from ocibuild.sources.base import DeferredPlan, LayerPlan
from ocibuild.store import Store


class Overlap:
    """How many layers were writing at once, at most."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def entries(self, name: str) -> Iterator[Entry]:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.3)  # long enough for the other worker to start its layer, if it may
        with self.lock:
            self.now -= 1
        yield bytes_entry(name, name.encode())


def write_two(tmp_path: Path, every_core: bool) -> int:
    overlap = Overlap()
    store = Store.open(tmp_path / "store")
    plans = [
        LayerPlan(
            key=name,
            description=name,
            entries=lambda name=name: overlap.entries(name),  # type: ignore[misc]
            created_by=name,
            every_core=every_core,
        )
        for name in ("a", "b")
    ]
    with store.transaction() as tx, ThreadPoolExecutor(max_workers=2) as pool:
        scheduler = LayerScheduler(tx, store.state, pool, Compression("gzip"), 0, silent)
        futures = [scheduler.schedule(plan) for plan in plans]
        built = [f.result() for f in futures]
    assert [b.plan.key for b in built] == ["a", "b"]
    return overlap.most


def test_layers_using_every_core_are_written_one_at_a_time(tmp_path: Path) -> None:
    assert write_two(tmp_path / "every-core", every_core=True) == 1
    assert write_two(tmp_path / "others", every_core=False) == 2


def test_a_deferred_plan_waits_while_the_layer_before_it_is_written(tmp_path: Path) -> None:
    ready = threading.Event()
    written: list[str] = []

    def first_entries() -> Iterator[Entry]:
        written.append("first")
        ready.set()  # the second plan resolves only once the first layer is being written
        yield bytes_entry("first", b"1")

    def second() -> LayerPlan:
        assert ready.wait(timeout=10), "the first layer was not written while this one waited"
        return LayerPlan("second", "second", lambda: iter([bytes_entry("second", b"2")]), "s")

    store = Store.open(tmp_path / "store")
    with store.transaction() as tx, ThreadPoolExecutor(max_workers=2) as pool:
        scheduler = LayerScheduler(tx, store.state, pool, Compression("gzip"), 0, silent)
        futures = [
            scheduler.schedule(DeferredPlan(second)),
            scheduler.schedule(LayerPlan("first", "first", first_entries, "f")),
        ]
        built = [f.result(timeout=20) for f in futures]
    assert [b.plan.key for b in built] == ["second", "first"]
    assert written == ["first"]
