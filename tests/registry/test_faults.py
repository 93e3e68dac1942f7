"""Faults between client and registry, injected by the loopback proxy: the push completes and
the registry holds exactly the right blobs; a bad pull stores nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from ocibuild.errors import DigestMismatchError, NetworkError
from ocibuild.layer.entry import Entry
from ocibuild.oci import Descriptor
from ocibuild.progress import RetryEvent
from ocibuild.remote import PushResult, pull_image, push_image
from ocibuild.store import Store
from tests.registry.conftest import ROOT, Events, Registry, fast_options
from tests.registry.images import make_image, random_layer
from tests.registry.proxy import Fault, FaultProxy

KiB = 1024
CHUNKED = {"chunk_threshold": 100 * KiB, "chunk_size": 64 * KiB}


def image_digests(store: Store, ref: str) -> set[str]:
    image = store.image(ref)
    return {
        image.descriptor.digest,
        image.manifest.config.digest,
        *(d.digest for d in image.manifest.layers),
    }


@dataclass(frozen=True)
class ProxiedPush:
    """An image of the store to push through the fault proxy to a registry of this test alone."""

    store: Store
    registry: Registry
    proxy: FaultProxy
    events: Events
    ref: str

    def make(self, layers: Sequence[Sequence[Entry]]) -> None:
        make_image(self.store, [self.ref], layers)

    def push(self, **options: Any) -> PushResult:
        """Pushed as OCI, the store's own manifest, so that the registry's blobs are the store's."""
        settings = {"format": "oci", **options}
        return push_image(self.store, self.ref, fast_options(**settings), self.events)

    def assert_registry_holds_exactly_the_image(self) -> None:
        assert self.registry.blob_digests() == image_digests(self.store, self.ref)


@pytest.fixture
def pushing(
    store: Store,
    fresh_registry: Registry,
    fresh_proxy: FaultProxy,
    repo: Callable[[str], str],
    events: Events,
) -> ProxiedPush:
    return ProxiedPush(
        store, fresh_registry, fresh_proxy, events, f"{fresh_proxy.address}/{repo()}:1"
    )


def test_connection_cut_mid_chunk_restarts_the_upload(pushing: ProxiedPush) -> None:
    pushing.make([random_layer("big", 300 * KiB)])
    # the registry gets part of the second chunk, so it drops the upload: the client starts over
    cut = pushing.proxy.add(Fault(r"^PATCH ", "cut", skip=1, after=20 * KiB, forward=True))

    result = pushing.push(**CHUNKED)

    assert cut.hits == 1
    assert len(result.uploaded) == 2
    sessions = pushing.proxy.requests(r"^POST .*/blobs/uploads/")
    assert len(sessions) == 3  # config, layer, layer again
    assert pushing.events.of(RetryEvent)
    pushing.assert_registry_holds_exactly_the_image()


def test_connection_cut_before_the_registry_saw_the_chunk_resumes(pushing: ProxiedPush) -> None:
    pushing.make([random_layer("big", 300 * KiB)])
    pushing.proxy.add(Fault(r"^PATCH ", "cut", skip=1, after=20 * KiB, forward=False))

    pushing.push(**CHUNKED)

    exchanges = pushing.proxy.requests(r"/blobs/uploads/[^?]")
    patches = [e.content_range for e in exchanges if e.method == "PATCH"]
    second = f"{64 * KiB}-{128 * KiB - 1}"
    assert patches[:3] == [f"0-{64 * KiB - 1}", second, second]  # sent, cut, resent
    statuses = [(e.method, e.status) for e in exchanges]
    assert ("GET", 204) in statuses  # asked where the upload stands, then went on from there
    assert len(pushing.proxy.requests(r"^POST .*/blobs/uploads/")) == 2  # no new upload session
    pushing.assert_registry_holds_exactly_the_image()


def test_monolithic_upload_cut_is_retried(pushing: ProxiedPush) -> None:
    pushing.make([random_layer("a", 60 * KiB), random_layer("b", 40 * KiB)])
    cut = pushing.proxy.add(
        Fault(r"^PUT .*/blobs/uploads/", "cut", times=2, after=10 * KiB, forward=True)
    )

    pushing.push()

    assert cut.hits == 2
    pushing.assert_registry_holds_exactly_the_image()


def test_429_with_retry_after_is_honoured(pushing: ProxiedPush) -> None:
    pushing.make([random_layer("a", 10 * KiB)])
    pushing.proxy.add(
        Fault(r"^PUT .*/manifests/", "status", status=429, headers={"Retry-After": "1"})
    )

    started = time.monotonic()
    pushing.push()

    assert time.monotonic() - started >= 1.0
    (retry,) = pushing.events.of(RetryEvent)
    assert retry.delay == 1.0 and "HTTP 429" in retry.message
    pushing.assert_registry_holds_exactly_the_image()


def test_bursts_of_503(pushing: ProxiedPush) -> None:
    pushing.make([random_layer(name, 30 * KiB) for name in "abc"])
    pushing.proxy.add(Fault(r"^(HEAD|POST|PUT|PATCH) /v2/.+", "status", status=503, times=3))
    pushing.proxy.add(
        Fault(r"^(HEAD|POST|PUT|PATCH) /v2/.+", "status", status=503, skip=4, times=4)
    )
    pushing.proxy.add(Fault(r"^PUT .*/manifests/", "status", status=502, times=2))

    pushing.push(concurrency=2)

    assert len([e for e in pushing.proxy.requests("") if e.fault == "status"]) == 9
    assert len(pushing.events.of(RetryEvent)) == 9
    pushing.assert_registry_holds_exactly_the_image()


def test_slow_registry_and_an_answer_slower_than_the_timeout(pushing: ProxiedPush) -> None:
    pushing.make([random_layer("a", 40 * KiB), random_layer("b", 20 * KiB)])
    # the registry completes this upload, but its answer comes after the client gave up waiting
    late = pushing.proxy.add(Fault(r"^PUT .*/blobs/uploads/.*digest=", "delay", seconds=1.5))
    pushing.proxy.add(Fault(r".", "delay", seconds=0.05, times=-1))

    pushing.push(read_timeout=0.6)

    assert late.hits == 1
    assert any("(read timeout)" in r.message for r in pushing.events.of(RetryEvent))
    pushing.assert_registry_holds_exactly_the_image()


def test_killed_push_started_again_uploads_only_what_is_missing(pushing: ProxiedPush) -> None:
    store, ref = pushing.store, pushing.ref
    pushing.make([random_layer(name, 20 * KiB) for name in "abcd"])
    held = pushing.proxy.add(Fault(r"^PUT .*/blobs/uploads/", "hold", skip=2, times=-1))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ocibuild",
            "--store",
            str(store.root),
            "push",
            ref,
            "--insecure",
            "-j",
            "1",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while held.hits == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert held.hits == 1, "the push never reached its third upload"
    process.send_signal(signal.SIGKILL)
    process.wait()
    first = {
        e.query.rsplit("digest=", 1)[1].replace("%3A", ":")
        for e in pushing.proxy.requests(r"digest=")
        if e.status == 201
    }
    assert len(first) == 2
    assert pushing.registry.blob_digests() == first  # killed before the rest and the manifest
    pushing.proxy.clear()

    result = pushing.push()

    everything = image_digests(store, ref) - {store.resolve(ref).digest}
    assert set(result.uploaded) == everything - first
    assert set(result.skipped) == first
    pushing.assert_registry_holds_exactly_the_image()


# -- pull ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PushedImage:
    ref: str  # in the registry
    via_proxy: str  # the same image through the fault proxy
    layer: Descriptor  # its larger layer


@pytest.fixture
def pushed(
    store: Store, registry: Registry, proxy: FaultProxy, repo: Callable[[str], str], events: Events
) -> PushedImage:
    ref = f"{registry.host}/{repo()}:1"
    make_image(store, [ref], [random_layer("a", 50 * KiB), random_layer("b", 5 * KiB)])
    push_image(store, ref, fast_options(format="oci"), events)  # the store's manifest digest
    layer = store.image(ref).manifest.layers[0]
    return PushedImage(ref, ref.replace(registry.host, proxy.address), layer)


def assert_nothing_stored(store: Store) -> None:
    assert store.refs() == {}
    assert [p.name for p in store.blobs.iterdir()] == []


@pytest.mark.parametrize("fault", ["corrupt", "truncate"])
def test_pull_refuses_a_wrong_or_truncated_blob(
    fault: str,
    store: Store,
    other_store: Store,
    proxy: FaultProxy,
    pushed: PushedImage,
    events: Events,
) -> None:
    ref, via_proxy, layer = pushed.ref, pushed.via_proxy, pushed.layer
    proxy.add(Fault(f"^GET .*/blobs/{layer.digest}", fault, times=-1, after=30 * KiB))

    if fault == "corrupt":
        with pytest.raises(
            DigestMismatchError,
            match=f"content has digest sha256:[0-9a-f]+, expected {layer.digest}",
        ):
            pull_image(other_store, via_proxy, fast_options(concurrency=1), events)
    else:
        with pytest.raises(
            NetworkError,
            match=f"blob {layer.digest} from .*: transfer broken after \\d+ of {layer.size} bytes .*IncompleteRead",
        ):
            pull_image(other_store, via_proxy, fast_options(concurrency=1), events)
    # no tag, no manifest, not a byte of the bad blob (verified blobs that came before it stay)
    assert other_store.refs() == {}
    assert not other_store.has_blob(layer.digest)
    assert not other_store.has_blob(store.resolve(ref).digest)
    assert not [p for p in other_store.blobs.iterdir() if p.name.startswith(".tmp")]


def test_pull_refuses_a_tampered_manifest(
    store: Store, other_store: Store, proxy: FaultProxy, pushed: PushedImage, events: Events
) -> None:
    ref, via_proxy = pushed.ref, pushed.via_proxy
    proxy.add(Fault(r"^GET .*/manifests/", "corrupt", times=-1, after=3))
    with pytest.raises(
        DigestMismatchError, match=r"the manifest has digest sha256:.*, the registry announced"
    ):
        pull_image(other_store, via_proxy, fast_options(), events)
    digest = store.resolve(ref).digest
    with pytest.raises(DigestMismatchError, match="the registry sent a manifest with digest"):
        pull_image(other_store, via_proxy.rsplit(":", 1)[0] + f"@{digest}", fast_options(), events)
    assert_nothing_stored(other_store)
