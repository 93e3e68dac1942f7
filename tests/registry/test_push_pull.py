"""Push to and pull from a real registry; check with skopeo and podman what arrived."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from ocibuild.errors import NotFoundError, RegistryError
from ocibuild.oci import Descriptor, MediaType
from ocibuild.progress import BlobEvent, RateLimitEvent, RetryEvent
from ocibuild.remote import pull_image, push_image, push_images, target_reference
from ocibuild.store import Store
from tests.podman import Podman
from tests.registry.conftest import Events, Registry, fast_options
from tests.registry.images import busybox_layer, make_image, random_layer
from tests.registry.proxy import Fault, FaultProxy

UPLOADS = r"/blobs/uploads/"


def skopeo_inspect(ref: str, raw: bool = False) -> dict:  # type: ignore[type-arg]
    args = [
        "skopeo",
        "inspect",
        "--tls-verify=false",
        *(["--raw"] if raw else []),
        f"docker://{ref}",
    ]
    return json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)


def one_layer_image(store: Store, ref: str, size: int) -> Descriptor:
    """An image of one random layer of `size` bytes, tagged `ref`; its layer."""
    make_image(store, [ref], [random_layer("a", size)])
    return store.image(ref).manifest.layers[0]


@pytest.mark.parametrize("fmt", ["oci", "auto"])
def test_push_then_skopeo_and_podman_run(
    fmt: str,
    store: Store,
    registry: Registry,
    repo: Callable[[str], str],
    podman: Podman,
    busybox: Path,
    events: Events,
) -> None:
    ref = f"{registry.host}/{repo('busybox')}:1.0"
    make_image(
        store,
        [ref],
        [busybox_layer(busybox), random_layer("payload", 4096)],
        cmd=["/bin/sh"],
        fmt=fmt,
    )

    result = push_image(store, ref, fast_options(), events)

    raw = skopeo_inspect(ref, raw=True)
    # auto makes Docker v2 schema 2, every layer being gzip; the push sends the image as it is
    expected = MediaType.DOCKER_MANIFEST if fmt == "auto" else MediaType.OCI_MANIFEST
    assert raw["mediaType"] == expected
    layer_type = MediaType.DOCKER_LAYER_GZIP if fmt == "auto" else MediaType.OCI_LAYER_GZIP
    assert {layer["mediaType"] for layer in raw["layers"]} == {layer_type}
    info = skopeo_inspect(ref)
    assert info["Digest"] == result.digest
    image = store.image(ref)
    assert info["Layers"] == [layer.digest for layer in image.manifest.layers]
    statuses = {e.digest: e.status for e in events.of(BlobEvent) if e.status != "uploading"}
    assert set(statuses.values()) == {"uploaded"} and len(statuses) == 3

    podman("pull", "--tls-verify=false", ref)
    assert podman.run(ref, "/bin/sh", "-c", "echo hello from $0") == "hello from /bin/sh\n"
    podman("rmi", ref)


@pytest.mark.parametrize("fmt", ["oci", "auto"])
def test_pull_into_fresh_store_is_byte_identical(
    fmt: str,
    store: Store,
    other_store: Store,
    registry: Registry,
    repo: Callable[[str], str],
    events: Events,
) -> None:
    """An image comes back as the store's very manifest, OCI or Docker (auto, the layers being
    gzip), over the same config and layer bytes."""
    ref = f"{registry.host}/{repo(fmt)}:v1"
    stored = make_image(store, [ref], [random_layer("a", 3000), random_layer("b", 70000)], fmt=fmt)
    result = push_image(store, ref, fast_options(), events)
    assert (result.format, result.digest) == ("oci" if fmt == "oci" else "docker", stored.digest)

    descriptor = pull_image(other_store, ref, fast_options(), events)

    assert descriptor.digest == result.digest
    assert other_store.resolve(ref).digest == result.digest
    assert other_store.read_blob(stored.digest) == store.read_blob(stored.digest)
    manifest = store.image(ref).manifest
    for digest in [manifest.config.digest, *(d.digest for d in manifest.layers)]:
        assert other_store.read_blob(digest) == store.read_blob(digest)
    assert other_store.state.blob_repos(manifest.layers[0].digest, registry.host) == [repo(fmt)]
    # blobs already in the store are not fetched again
    pull_image(other_store, ref, fast_options(), events)
    assert [e.status for e in events.of(BlobEvent)[-3:]] == ["present"] * 3


def test_second_push_uploads_nothing_and_other_repository_mounts(
    store: Store, proxy: FaultProxy, repo: Callable[[str], str], events: Events
) -> None:
    shared = [random_layer("base", 50000), random_layer("lib", 20000)]
    first = f"{proxy.address}/{repo('first')}:1"
    second = f"{proxy.address}/{repo('second')}:1"
    make_image(store, [first], shared)
    make_image(store, [second], [*shared, random_layer("app", 10000)])

    initial = push_image(store, first, fast_options(), events)
    assert len(initial.uploaded) == 3
    assert len(proxy.requests(r"^PUT .*/blobs/uploads/.*digest=")) == 3

    proxy.clear()
    again = push_image(store, first, fast_options(), events)
    assert again.uploaded == () and again.mounted == ()
    assert len(again.skipped) == 3
    assert proxy.requests(UPLOADS) == []
    assert [e.line.split(" ")[0] for e in proxy.requests("/blobs/")] == ["HEAD"] * 3
    assert again.digest == initial.digest

    proxy.clear()
    other = push_image(store, second, fast_options(), events)
    layers = store.image(second).manifest.layers
    assert set(other.mounted) == {layers[0].digest, layers[1].digest}
    mounts = proxy.requests(r"^POST .*/blobs/uploads/\?.*mount=")
    assert {e.status for e in mounts} == {201} and len(mounts) == 2
    assert all(f"from={repo('first').replace('/', '%2F')}" in e.query for e in mounts)
    assert set(other.uploaded) == {layers[2].digest, store.image(second).manifest.config.digest}
    assert skopeo_inspect(second)["Layers"] == [d.digest for d in layers]


def test_all_tags_and_push_under_another_name(
    store: Store, proxy: FaultProxy, registry: Registry, repo: Callable[[str], str], events: Events
) -> None:
    refs = [f"example.org/hep/{repo('tags')}:{tag}" for tag in ("1.0", "latest")]
    make_image(store, refs, [random_layer("x", 1000)])
    prefix = f"{proxy.address}/site/"
    pairs = [(ref, target_reference(ref, prefix)) for ref in refs]
    assert str(pairs[0][1]) == f"{proxy.address}/site/hep/{repo('tags')}:1.0"

    results = push_images(store, pairs, fast_options(), events)

    assert [r.reference for r in results] == [str(t) for _, t in pairs]
    assert results[0].digest == results[1].digest
    assert len(proxy.requests(r"^HEAD .*/blobs/")) == 2  # config + layer, once for both tags
    assert len(proxy.requests(r"^PUT .*/manifests/")) == 2
    for _, target in pairs:
        assert (
            skopeo_inspect(str(target).replace(proxy.address, registry.host))["Digest"]
            == results[0].digest
        )


def test_target_reference_forms() -> None:
    source = "docker.io/paterno/centos67base:latest"
    assert str(target_reference(source)) == source
    assert (
        str(target_reference(source, "site.org:5000/hep/base")) == "site.org:5000/hep/base:latest"
    )
    assert str(target_reference(source, "site.org:5000/hep/base:2")) == "site.org:5000/hep/base:2"
    assert (
        str(target_reference(source, "site.org:5000/"))
        == "site.org:5000/paterno/centos67base:latest"
    )
    assert str(target_reference("centos:6.7", "localhost:5000/mirror/")) == (
        "localhost:5000/mirror/library/centos:6.7"
    )


def test_pull_picks_linux_amd64_from_an_index(
    store: Store, other_store: Store, registry: Registry, repo: Callable[[str], str], events: Events
) -> None:
    ref = f"{registry.host}/{repo('multi')}:1"
    amd64 = make_image(store, [ref + "-amd64"], [random_layer("amd64", 2000)])
    arm64 = make_image(store, [ref + "-arm64"], [random_layer("arm64", 2000)])
    push_images(
        store,
        [(r, target_reference(r)) for r in (ref + "-amd64", ref + "-arm64")],
        fast_options(format="oci"),  # the index below names the store's OCI manifests
        events,
    )
    index = {
        "schemaVersion": 2,
        "mediaType": MediaType.OCI_INDEX,
        "manifests": [
            {
                **arm64.to_json(),
                "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
            },
            {**amd64.to_json(), "platform": {"os": "linux", "architecture": "amd64"}},
        ],
    }
    response = requests.put(
        f"http://{registry.host}/v2/{repo('multi')}/manifests/1",
        data=json.dumps(index),
        headers={"Content-Type": MediaType.OCI_INDEX},
        timeout=10,
    )
    assert response.status_code == 201

    descriptor = pull_image(other_store, ref, fast_options(), events)
    assert descriptor.digest == amd64.digest
    assert str(descriptor.platform) == "linux/amd64"
    arm = pull_image(other_store, ref, fast_options(platform="linux/arm64"), events)
    assert arm.digest == arm64.digest
    with pytest.raises(
        RegistryError, match=r"no image for linux/ppc64le .* linux/arm64/v8, linux/amd64"
    ):
        pull_image(other_store, ref, fast_options(platform="linux/ppc64le"), events)


def test_refused_mount_falls_back_to_upload_in_the_session_it_opened(
    store: Store, proxy: FaultProxy, repo: Callable[[str], str], events: Events
) -> None:
    ref = f"{proxy.address}/{repo()}:1"
    layer = one_layer_image(store, ref, 5000)
    store.state.record_blob_repo(layer.digest, proxy.address, repo("nowhere"))

    result = push_image(store, ref, fast_options(), events)

    assert layer.digest in result.uploaded and result.mounted == ()
    (mount,) = proxy.requests(r"^POST .*mount=")
    assert mount.status == 202
    assert len(proxy.requests(r"^POST ")) == 2  # the refused mount's session took the layer
    assert proxy.requests(f"^PUT .*digest=sha256%3A{layer.digest.hex}")[0].status == 201


def test_chunks_honour_the_registry_minimum(
    store: Store, proxy: FaultProxy, repo: Callable[[str], str], events: Events
) -> None:
    ref = f"{proxy.address}/{repo()}:1"
    make_image(store, [ref], [random_layer("a", 300 * 1024)])
    proxy.add(
        Fault(r"^POST ", "headers", times=-1, headers={"OCI-Chunk-Min-Length": str(128 * 1024)})
    )

    push_image(store, ref, fast_options(chunk_threshold=1024, chunk_size=64 * 1024), events)

    ranges = [e.content_range for e in proxy.requests(r"^PATCH ")]
    assert ranges[:2] == [f"0-{128 * 1024 - 1}", f"{128 * 1024}-{256 * 1024 - 1}"]


def test_low_rate_limit_is_reported(
    store: Store,
    other_store: Store,
    registry: Registry,
    proxy: FaultProxy,
    repo: Callable[[str], str],
    events: Events,
) -> None:
    ref = f"{registry.host}/{repo()}:1"
    make_image(store, [ref], [random_layer("a", 1000)])
    push_image(store, ref, fast_options(), events)
    headers = {"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "3;w=21600"}
    proxy.add(Fault(r"^GET .*/manifests/", "headers", headers=headers))

    pull_image(other_store, ref.replace(registry.host, proxy.address), fast_options(), events)

    (low,) = events.of(RateLimitEvent)
    assert (low.remaining, low.limit) == (3, 100)
    assert "3 of 100" in low.message


def test_unreachable_registry_is_named(
    store: Store, repo: Callable[[str], str], events: Events
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ref = f"127.0.0.1:{port}/{repo()}:1"
    make_image(store, [ref], [random_layer("a", 100)])
    with pytest.raises(
        RegistryError,
        match=rf"cannot reach the registry 127.0.0.1:{port}: .*connection refused",
    ):
        push_image(store, ref, fast_options(retries=2), events)
    assert not events.of(RetryEvent)  # refused is not worth retrying


def test_docker_format_refuses_zstd_layers(
    store: Store, registry: Registry, repo: Callable[[str], str], events: Events
) -> None:
    ref = f"{registry.host}/{repo()}:1"
    make_image(store, [ref], [random_layer("a", 100)], compression="zstd")
    with pytest.raises(RegistryError, match="zstd layers have no Docker v2 schema 2 media type"):
        push_image(store, ref, fast_options(format="docker"), events)
    assert push_image(store, ref, fast_options(), events).uploaded


def test_push_names_a_blob_missing_from_the_store(
    store: Store, registry: Registry, repo: Callable[[str], str], events: Events
) -> None:
    ref = f"{registry.host}/{repo()}:1"
    layer = one_layer_image(store, ref, 1000)
    store.blob_path(layer.digest).unlink()
    with pytest.raises(NotFoundError, match=f"blob {layer.digest} is not in the store"):
        push_image(store, ref, fast_options(), events)
    assert skopeo_failed(ref)


def skopeo_failed(ref: str) -> bool:
    """True if the registry has no manifest for `ref` (nothing was half-pushed)."""
    args = ["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{ref}"]
    return subprocess.run(args, check=False, capture_output=True).returncode != 0
