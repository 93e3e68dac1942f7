"""Which manifest family a push sends (the image's own, chosen when it was built, unless told
otherwise), and what that means to a client that asks for a manifest without an Accept header
(Shifter's image gateway, `dockerv2.py`): the real registry serves a Docker v2 schema 2 push to
it as a schema 1 manifest, and an OCI push as a 404."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ocibuild.errors import RegistryError
from ocibuild.oci import Descriptor, Manifest, MediaType
from ocibuild.oci.digest import Digest
from ocibuild.oci.formats import auto_format
from ocibuild.progress import Message, TransferEvent
from ocibuild.remote import push_image
from ocibuild.remote.manifests import push_format
from ocibuild.store import Store
from tests.registry.conftest import Events, Registry, fast_options
from tests.registry.images import busybox_layer, make_image, random_layer
from tests.registry.proxy import FaultProxy

ENV = (
    "PATH=/usr/local/bin:/usr/bin:/bin",
    "ART_VERSION=1.18.03",
    "UPS_OVERRIDE=-H Linux64bit+2.6-2.12",
)
WORKDIR = "/work"
CMD = ("/bin/sh", "-c", "art -c job.fcl")


def get_without_accept(host: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """A GET as the gateway sends it: http.client, no Accept header at all."""
    connection = http.client.HTTPConnection(host, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        connection.close()


def unpad(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signed_payload(data: bytes, manifest: dict[str, Any]) -> bytes:
    """What a schema 1 signature covers and the gateway hashes: the manifest up to
    `formatLength`, then `formatTail`."""
    (signature,) = manifest["signatures"]
    protected = json.loads(unpad(signature["protected"]))
    return data[: protected["formatLength"]] + unpad(protected["formatTail"])


def test_default_push_is_served_as_schema_1_to_a_client_without_accept(
    store: Store,
    registry: Registry,
    repo: Callable[[str], str],
    busybox: Path,
    events: Events,
) -> None:
    ref = f"{registry.host}/{repo('art')}:1.18"
    layers = [busybox_layer(busybox), random_layer("ups", 5000), random_layer("art", 3000)]
    make_image(store, [ref], layers, cmd=CMD, env=ENV, workdir=WORKDIR, fmt="auto")
    stored = store.image(ref)

    result = push_image(store, ref, fast_options(), events)

    assert (result.format, result.media_type) == ("docker", MediaType.DOCKER_MANIFEST)
    assert result.digest == stored.descriptor.digest
    status, headers, data = get_without_accept(registry.host, f"/v2/{repo('art')}/manifests/1.18")
    assert status == 200, data
    assert headers["content-type"] == "application/vnd.docker.distribution.manifest.v1+prettyjws"
    manifest = json.loads(data)
    assert manifest["schemaVersion"] == 1
    assert (manifest["name"], manifest["tag"]) == (repo("art"), "1.18")
    # every layer, youngest first, each with its history entry
    blobs = [layer["blobSum"] for layer in manifest["fsLayers"]]
    assert blobs == [layer.digest for layer in reversed(stored.manifest.layers)]
    assert len(manifest["history"]) == len(blobs)
    youngest = json.loads(manifest["history"][0]["v1Compatibility"])
    assert youngest["config"]["Env"] == list(ENV)
    assert youngest["config"]["WorkingDir"] == WORKDIR
    assert youngest["config"]["Cmd"] == list(CMD)
    # the chain the gateway builds: one layer without a parent, each other one's parent above it
    chain = [json.loads(h["v1Compatibility"]) for h in manifest["history"]]
    assert "parent" not in chain[-1]
    assert [c["parent"] for c in chain[:-1]] == [c["id"] for c in chain[1:]]
    # the digest check the gateway makes
    announced = headers["docker-content-digest"]
    assert "sha256:" + hashlib.sha256(signed_payload(data, manifest)).hexdigest() == announced


def test_oci_push_is_a_404_to_a_client_without_accept(
    store: Store, registry: Registry, repo: Callable[[str], str], events: Events
) -> None:
    """Why the default changed: the gateway gets nothing for an OCI manifest."""
    ref = f"{registry.host}/{repo()}:1"
    make_image(store, [ref], [random_layer("a", 1000)], env=ENV)

    result = push_image(store, ref, fast_options(format="oci"), events)

    assert result.format == "oci" and result.digest == store.image(ref).descriptor.digest
    status, _, data = get_without_accept(registry.host, f"/v2/{repo()}/manifests/1")
    assert status == 404
    (error,) = json.loads(data)["errors"]
    assert error["code"] == "MANIFEST_UNKNOWN"
    assert "accept header does not support OCI manifests" in error["message"]


def test_repush_of_a_converted_manifest_sends_nothing(
    store: Store, proxy: FaultProxy, repo: Callable[[str], str], events: Events
) -> None:
    ref = f"{proxy.address}/{repo()}:1"
    make_image(store, [ref], [random_layer("a", 2000), random_layer("b", 2000)])
    first = push_image(store, ref, fast_options(format="docker"), events)
    assert first.digest != store.image(ref).descriptor.digest
    (said,) = [m for m in events.of(Message) if "converted" in m.message]
    assert f"pushed as {first.digest}, not the image's own" in said.message
    assert first.manifest_pushed and len(proxy.requests(r"^PUT .*/manifests/")) == 1

    proxy.clear()
    again = push_image(store, ref, fast_options(format="docker"), events)

    assert (again.digest, again.format, again.manifest_pushed) == (first.digest, "docker", False)
    assert len(again.skipped) == 3
    assert proxy.requests(r"^PUT ") == [] and proxy.requests(r"/blobs/uploads/") == []
    (head,) = proxy.requests(r"^HEAD .*/manifests/1")
    assert head.status == 200
    assert (
        "the manifest too"
        in [e for e in events.of(TransferEvent) if e.status == "pushed"][-1].message
    )

    # another family under the same tag is a change: it is sent, and so is the way back
    proxy.clear()
    oci = push_image(store, ref, fast_options(), events)
    assert oci.manifest_pushed and oci.digest == store.image(ref).descriptor.digest
    back = push_image(store, ref, fast_options(format="docker"), events)
    assert back.manifest_pushed and back.digest == first.digest
    assert len(proxy.requests(r"^PUT .*/manifests/")) == 2


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_auto_is_oci_when_a_layer_is_not_gzip(
    compression: str,
    store: Store,
    registry: Registry,
    repo: Callable[[str], str],
    events: Events,
) -> None:
    ref = f"{registry.host}/{repo()}:1"
    make_image(store, [ref], [random_layer("a", 1000)], compression=compression, fmt="auto")

    result = push_image(store, ref, fast_options(), events)

    assert (result.format, result.media_type) == ("oci", MediaType.OCI_MANIFEST)
    assert result.digest == store.image(ref).descriptor.digest


def test_forced_docker_refuses_zstd(
    store: Store, registry: Registry, repo: Callable[[str], str], events: Events
) -> None:
    ref = f"{registry.host}/{repo()}:1"
    make_image(store, [ref], [random_layer("a", 100)], compression="zstd")
    with pytest.raises(RegistryError, match=r"cannot push as docker: zstd layers have no Docker"):
        push_image(store, ref, fast_options(format="docker"), events)


def descriptor(media_type: str, n: int = 1) -> Descriptor:
    return Descriptor(media_type, Digest("sha256:" + f"{n:064x}"), 10)


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        (Manifest(descriptor(MediaType.OCI_CONFIG), (descriptor(MediaType.OCI_LAYER_GZIP),)), "docker"),
        (Manifest(descriptor(MediaType.OCI_CONFIG), (descriptor(MediaType.OCI_LAYER_GZIP), descriptor(MediaType.OCI_LAYER_ZSTD, 2))), "oci"),
        (Manifest(descriptor(MediaType.OCI_CONFIG), (descriptor(MediaType.OCI_LAYER),)), "oci"),
        (Manifest(descriptor("application/vnd.example.artifact+json"), (descriptor(MediaType.OCI_LAYER_GZIP),)), "oci"),
        (Manifest(descriptor(MediaType.OCI_CONFIG), ()), "oci"),
        (Manifest(descriptor(MediaType.DOCKER_CONFIG), (descriptor(MediaType.DOCKER_LAYER_GZIP),), MediaType.DOCKER_MANIFEST), "docker"),
    ],
)  # fmt: skip
def test_auto_format_is_docker_only_for_gzip_images(manifest: Manifest, expected: str) -> None:
    assert auto_format(manifest) == expected


@pytest.mark.parametrize(
    ("media_type", "requested", "expected"),
    [
        (MediaType.OCI_MANIFEST, "auto", "oci"),
        (MediaType.DOCKER_MANIFEST, "auto", "docker"),
        (MediaType.OCI_MANIFEST, "docker", "docker"),
        (MediaType.DOCKER_MANIFEST, "oci", "oci"),
    ],
)
def test_push_sends_the_images_own_family_unless_told(
    media_type: str, requested: str, expected: str
) -> None:
    manifest = Manifest(
        descriptor(MediaType.OCI_CONFIG), (descriptor(MediaType.OCI_LAYER_GZIP),), media_type
    )
    assert push_format(manifest, requested) == expected
