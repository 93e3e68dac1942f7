"""The layer scheduler: deferred plans are resolved in its pool while earlier layers are
written, layers whose plans use every core are written one at a time, and a source's heaviest
layers start first."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ocibuild.builder.scheduler import LayerScheduler
from ocibuild.compression import Compression
from ocibuild.layer.entry import Entry, bytes_entry
from ocibuild.progress import silent
from ocibuild.sources.base import LayerPlan
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
        futures = scheduler.schedule(plans)
        built = [f.result() for f in futures]
    assert [b.plan.key for b in built] == ["a", "b"]
    return overlap.most


def test_layers_using_every_core_are_written_one_at_a_time(tmp_path: Path) -> None:
    assert write_two(tmp_path / "every-core", every_core=True) == 1
    assert write_two(tmp_path / "others", every_core=False) == 2


def test_a_plan_whose_key_waits_lets_the_layer_after_it_be_written(tmp_path: Path) -> None:
    ready = threading.Event()
    written: list[str] = []

    def first_entries() -> Iterator[Entry]:
        written.append("first")
        ready.set()  # the second plan resolves only once the first layer is being written
        yield bytes_entry("first", b"1")

    started: list[str] = []

    def second_key() -> str:
        assert started == ["second"], "the key was asked for before the plan was started"
        assert ready.wait(timeout=10), "the first layer was not written while this one waited"
        return "second"

    second = LayerPlan(
        second_key,
        "second",
        lambda: iter([bytes_entry("second", b"2")]),
        "s",
        start=lambda: started.append("second"),
    )

    store = Store.open(tmp_path / "store")
    with store.transaction() as tx, ThreadPoolExecutor(max_workers=2) as pool:
        scheduler = LayerScheduler(tx, store.state, pool, Compression("gzip"), 0, silent)
        futures = [
            *scheduler.schedule([second]),
            *scheduler.schedule([LayerPlan("first", "first", first_entries, "f")]),
        ]
        built = [f.result(timeout=20) for f in futures]
    assert [b.key for b in built] == [
        scheduler._cache_key("second"),
        scheduler._cache_key("first"),
    ]
    assert written == ["first"]


def test_the_heaviest_layers_of_a_source_start_first_and_stay_in_layer_order(
    tmp_path: Path,
) -> None:
    started: list[str] = []
    begun: list[str] = []

    def entries(name: str) -> Iterator[Entry]:
        begun.append(name)
        yield bytes_entry(name, name.encode())

    plans = [
        LayerPlan(
            name,
            name,
            lambda name=name: entries(name),  # type: ignore[misc]
            name,
            weight=weight,
            start=lambda name=name: started.append(name),  # type: ignore[misc]
        )
        for name, weight in (("small", 1), ("big", 100), ("unknown", 0), ("middle", 50))
    ]
    store = Store.open(tmp_path / "store")
    with store.transaction() as tx, ThreadPoolExecutor(max_workers=1) as pool:
        scheduler = LayerScheduler(tx, store.state, pool, Compression("gzip"), 0, silent)
        built = [f.result(timeout=20) for f in scheduler.schedule(plans)]
    assert [b.plan.key for b in built] == ["small", "big", "unknown", "middle"]
    assert started == ["small", "big", "unknown", "middle"]  # downloads begin in layer order
    assert begun == ["big", "middle", "small", "unknown"]


def test_heavy_layers_go_apart_only_when_two_can_share_the_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process per layer pays only when two heavy layers would otherwise share the GIL."""
    from ocibuild.builder import scheduler

    def plan(name: str, weight: int, apart: bool = True) -> LayerPlan:
        return LayerPlan(
            key=name,
            description=name,
            entries=list,
            created_by=name,
            weight=weight,
            apart=(lambda: (None, lambda _: None)) if apart else None,  # type: ignore[arg-type]
        )

    heavy = scheduler.APART_WEIGHT
    one, two = plan("one", heavy), plan("two", heavy + 1)
    light, fixed = plan("light", heavy - 1), plan("fixed", heavy, apart=False)
    monkeypatch.setattr(scheduler, "threads", lambda: 2)
    assert scheduler._apart([one, two, light, fixed]) == {one, two}
    assert scheduler._apart([one, light, fixed]) == set()
    monkeypatch.setattr(scheduler, "threads", lambda: 1)
    assert scheduler._apart([one, two]) == set()
