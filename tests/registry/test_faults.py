"""Faults between client and registry, injected by the loopback proxy: the push completes and
the registry holds exactly the right blobs; a bad pull stores nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from ocibuild.errors import DigestMismatchError, RegistryError
from ocibuild.oci import Descriptor
from ocibuild.remote import pull_image, push_image
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


def assert_registry_holds_exactly(registry: Registry, store: Store, *refs: str) -> None:
    expected: set[str] = set()
    for ref in refs:
        expected |= image_digests(store, ref)
    assert registry.blob_digests() == expected


def test_connection_cut_mid_chunk_restarts_the_upload(
    store: Store,
    fresh_registry: Registry,
    fresh_proxy: FaultProxy,
    repo: Callable[[str], str],
    events: Events,
) -> None:
    ref = f"{fresh_proxy.address}/{repo()}:1"
    make_image(store, [ref], [random_layer("big", 300 * KiB)])
    # the registry gets part of the second chunk, so it drops the upload: the client starts over
    cut = fresh_proxy.add(Fault(r"^PATCH ", "cut", skip=1, after=20 * KiB, forward=True))

    result = push_image(store, ref, fast_options(**CHUNKED), events)

    assert cut.hits == 1
    assert len(result.uploaded) == 2
    assert len(fresh_proxy.requests(r"^POST .*/blobs/uploads/")) == 3  # config, layer, layer again
    assert events.of("retry")
    assert_registry_holds_exactly(fresh_registry, store, ref)


def test_connection_cut_before_the_registry_saw_the_chunk_resumes(
    store: Store,
    fresh_registry: Registry,
    fresh_proxy: FaultProxy,
    repo: Callable[[str], str],
    events: Events,
) -> None:
    ref = f"{fresh_proxy.address}/{repo()}:1"
    make_image(store, [ref], [random_layer("big", 300 * KiB)])
    fresh_proxy.add(Fault(r"^PATCH ", "cut", skip=1, after=20 * KiB, forward=False))

    push_image(store, ref, fast_options(**CHUNKED), events)

    exchanges = fresh_proxy.requests(r"/blobs/uploads/[^?]")
    patches = [e.content_range for e in exchanges if e.method == "PATCH"]
    second = f"{64 * KiB}-{128 * KiB - 1}"
    assert patches[:3] == [f"0-{64 * KiB - 1}", second, second]  # sent, cut, resent
    statuses = [(e.method, e.status) for e in exchanges]
    assert ("GET", 204) in statuses  # asked where the upload stands, then went on from there
    assert len(fresh_proxy.requests(r"^POST .*/blobs/uploads/")) == 2  # no new upload session
    assert_registry_holds_exactly(fresh_registry, store, ref)


def test_monolithic_upload_cut_is_retried(
    store: Store,
    fresh_registry: Registry,
    fresh_proxy: FaultProxy,
    repo: Callable[[str], str],
    events: Events,
) -> None:
    ref = f"{fresh_proxy.address}/{repo()}:1"
    make_image(store, [ref], [random_layer("a", 60 * KiB), random_layer("b", 40 * KiB)])
    cut = fresh_proxy.add(
        Fault(r"^PUT .*/blobs/uploads/", "cut", times=2, after=10 * KiB, forward=True)
    )

    push_image(store, ref, fast_options(), events)

    assert cut.hits == 2
    assert_registry_holds_exactly(fresh_registry, store, ref)


def test_429_with_retry_after_is_honoured(
    store: Store,
    fresh_registry: Registry,
    fresh_proxy: FaultProxy,
    repo: Callable[[str], str],
    events: Events,
) -> None:
    ref = f"{fresh_proxy.address}/{repo()}:1"
    make_image(store, [ref], [random_layer("a", 10 * KiB)])
    fresh_proxy.add(
        Fault(r"^PUT .*/manifests/", "status", status=429, headers={"Retry-After": "1"})
    )

    started = time.monotonic()
    push_image(store, ref, fast_options(), events)

    assert time.monotonic() - started >= 1.0
    (retry,) = events.of("retry")
    assert retry["delay"] == 1.0 and "HTTP 429" in retry["message"]
    assert_registry_holds_exactly(fresh_registry, store, ref)


def test_bursts_of_503(
    store: Store,
    fresh_registry: Registry,
    fresh_proxy: FaultProxy,
    repo: Callable[[str], str],
    events: Events,
) -> None:
    ref = f"{fresh_proxy.address}/{repo()}:1"
    make_image(store, [ref], [random_layer(name, 30 * KiB) for name in "abc"])
    fresh_proxy.add(Fault(r"^(HEAD|POST|PUT|PATCH) /v2/.+", "status", status=503, times=3))
    fresh_proxy.add(Fault(r"^(HEAD|POST|PUT|PATCH) /v2/.+", "status", status=503, skip=4, times=4))
    fresh_proxy.add(Fault(r"^PUT .*/manifests/", "status", status=502, times=2))

    push_image(store, ref, fast_options(concurrency=2), events)

    assert len([e for e in fresh_proxy.requests("") if e.fault == "status"]) == 9
    assert len(events.of("retry")) == 9
    assert_registry_holds_exactly(fresh_registry, store, ref)


def test_slow_registry_and_an_answer_slower_than_the_timeout(
    store: Store,
    fresh_registry: Registry,
    fresh_proxy: FaultProxy,
    repo: Callable[[str], str],
    events: Events,
) -> None:
    ref = f"{fresh_proxy.address}/{repo()}:1"
    make_image(store, [ref], [random_layer("a", 40 * KiB), random_layer("b", 20 * KiB)])
    # the registry completes this upload, but its answer comes after the client gave up waiting
    late = fresh_proxy.add(Fault(r"^PUT .*/blobs/uploads/.*digest=", "delay", seconds=1.5))
    fresh_proxy.add(Fault(r".", "delay", seconds=0.05, times=-1))

    push_image(store, ref, fast_options(read_timeout=0.6), events)

    assert late.hits == 1
    assert any("ReadTimeout" in r["message"] for r in events.of("retry"))
    assert_registry_holds_exactly(fresh_registry, store, ref)


def test_killed_push_started_again_uploads_only_what_is_missing(
    store: Store,
    fresh_registry: Registry,
    fresh_proxy: FaultProxy,
    repo: Callable[[str], str],
    events: Events,
) -> None:
    ref = f"{fresh_proxy.address}/{repo()}:1"
    make_image(store, [ref], [random_layer(name, 20 * KiB) for name in "abcd"])
    held = fresh_proxy.add(Fault(r"^PUT .*/blobs/uploads/", "hold", skip=2, times=-1))
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
        for e in fresh_proxy.requests(r"digest=")
        if e.status == 201
    }
    assert len(first) == 2
    assert fresh_registry.blob_digests() == first  # killed before the rest and the manifest
    fresh_proxy.clear()

    result = push_image(store, ref, fast_options(), events)

    everything = image_digests(store, ref) - {store.resolve(ref).digest}
    assert set(result.uploaded) == everything - first
    assert set(result.skipped) == first
    assert_registry_holds_exactly(fresh_registry, store, ref)


# -- pull ---------------------------------------------------------------------------------------


def pushed_image(
    store: Store, registry: Registry, repo: str, events: Events
) -> tuple[str, Descriptor]:
    ref = f"{registry.host}/{repo}:1"
    make_image(store, [ref], [random_layer("a", 50 * KiB), random_layer("b", 5 * KiB)])
    push_image(store, ref, fast_options(), events)
    return ref, store.image(ref).manifest.layers[0]


def assert_nothing_stored(store: Store) -> None:
    assert store.refs() == {}
    assert [p.name for p in store.blobs.iterdir()] == []


@pytest.mark.parametrize("fault", ["corrupt", "truncate"])
def test_pull_refuses_a_wrong_or_truncated_blob(
    fault: str,
    store: Store,
    other_store: Store,
    registry: Registry,
    proxy: FaultProxy,
    repo: Callable[[str], str],
    events: Events,
) -> None:
    ref, layer = pushed_image(store, registry, repo(), events)
    proxy.add(Fault(f"^GET .*/blobs/{layer.digest}", fault, times=-1, after=30 * KiB))
    via_proxy = ref.replace(registry.host, proxy.address)

    if fault == "corrupt":
        with pytest.raises(
            DigestMismatchError,
            match=f"content has digest sha256:[0-9a-f]+, expected {layer.digest}",
        ):
            pull_image(other_store, via_proxy, fast_options(concurrency=1), events)
    else:
        with pytest.raises(
            RegistryError,
            match=f"blob {layer.digest} from .*: transfer broken after \\d+ of {layer.size} bytes .*IncompleteRead",
        ):
            pull_image(other_store, via_proxy, fast_options(concurrency=1), events)
    # no tag, no manifest, not a byte of the bad blob (verified blobs that came before it stay)
    assert other_store.refs() == {}
    assert not other_store.has_blob(layer.digest)
    assert not other_store.has_blob(store.resolve(ref).digest)
    assert not [p for p in other_store.blobs.iterdir() if p.name.startswith(".tmp")]


def test_pull_refuses_a_tampered_manifest(
    store: Store,
    other_store: Store,
    registry: Registry,
    proxy: FaultProxy,
    repo: Callable[[str], str],
    events: Events,
) -> None:
    ref, _ = pushed_image(store, registry, repo(), events)
    proxy.add(Fault(r"^GET .*/manifests/", "corrupt", times=-1, after=3))
    via_proxy = ref.replace(registry.host, proxy.address)
    with pytest.raises(
        DigestMismatchError, match=r"the manifest has digest sha256:.*, the registry announced"
    ):
        pull_image(other_store, via_proxy, fast_options(), events)
    digest = store.resolve(ref).digest
    with pytest.raises(DigestMismatchError, match="the registry sent a manifest with digest"):
        pull_image(other_store, via_proxy.rsplit(":", 1)[0] + f"@{digest}", fast_options(), events)
    assert_nothing_stored(other_store)
