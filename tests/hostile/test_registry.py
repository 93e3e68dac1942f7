"""Malformed manifests from a registry (a real one behind the fault proxy, which answers the
manifest request itself): one `error:` line naming the reference, nothing stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.hostile.conftest import Hostile
from tests.registry.conftest import Registry, start_registry
from tests.registry.proxy import Fault, FaultProxy

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
GOOD = "sha256:" + "a" * 64


def manifest(config: Any = None, layers: Any = None, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
    d["config"] = (
        config
        if config is not None
        else {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": GOOD, "size": 2}
    )
    d["layers"] = layers if layers is not None else []
    d.update(extra)
    return d


def layer(digest: Any = GOOD, size: Any = 10) -> dict[str, Any]:
    return {
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": digest,
        "size": size,
    }


BODIES: dict[str, tuple[bytes, str]] = {
    "digest-traversal": (
        json.dumps(manifest(layers=[layer("sha256:../../../../etc/passwd")])).encode(),
        "malformed manifest: not a sha256 digest: 'sha256:../../../../etc/passwd'",
    ),
    "digest-sha512": (
        json.dumps(manifest(layers=[layer("sha512:" + "b" * 128)])).encode(),
        "not a sha256 digest",
    ),
    "digest-uppercase": (
        json.dumps(manifest(layers=[layer("sha256:" + "A" * 64)])).encode(),
        "not a sha256 digest",
    ),
    "size-string": (
        json.dumps(manifest(layers=[layer(size="big")])).encode(),
        "layer 0: size 'big' is not a byte count",
    ),
    "size-negative": (
        json.dumps(manifest(layers=[layer(size=-1)])).encode(),
        "layer 0: size -1 is not a byte count",
    ),
    "size-bool": (json.dumps(manifest(layers=[layer(size=True)])).encode(), "is not a byte count"),
    "no-config": (
        json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode(),
        "manifest has no config",
    ),
    "config-a-string": (json.dumps(manifest(config="x")).encode(), "config is not a JSON object"),
    "layers-a-mapping": (
        json.dumps(manifest(layers={"a": 1})).encode(),
        "layers is not a JSON list",
    ),
    "layer-null": (json.dumps(manifest(layers=[None])).encode(), "layer 0 is not a JSON object"),
    "annotations-not-strings": (
        json.dumps(manifest(annotations={"a": 1})).encode(),
        "annotations must map strings to strings",
    ),
    "null": (b"null", "malformed manifest: not a JSON object"),
    "list": (b"[]", "malformed manifest: not a JSON object"),
    "not-json": (b"{", "manifest: not JSON"),
    "unknown-media-type": (
        json.dumps({"schemaVersion": 2, "mediaType": "application/x-evil"}).encode(),
        "unknown manifest media type ('application/x-evil')",
    ),
    "schema-1": (
        json.dumps({"schemaVersion": 1, "name": "x", "tag": "1", "fsLayers": []}).encode(),
        "a Docker schema 1 manifest (schema 1 is not supported)",
    ),
    "config-media-type-not-string": (
        json.dumps(manifest(config={"mediaType": 7, "digest": GOOD, "size": 2})).encode(),
        "config: mediaType 7 is not a string",
    ),
    "index-platform-not-object": (
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {"mediaType": OCI_MANIFEST, "digest": GOOD, "size": 2, "platform": "linux"}
                ],
            }
        ).encode(),
        "manifest 0: platform is not a JSON object",
    ),
    "index-platform-os-not-string": (
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {
                        "mediaType": OCI_MANIFEST,
                        "digest": GOOD,
                        "size": 2,
                        "platform": {"os": 1, "architecture": "amd64"},
                    }
                ],
            }
        ).encode(),
        "platform: os 1 is not a string",
    ),
    "index-manifests-null": (
        json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": None}).encode(),
        "manifests is not a JSON list",
    ),
    "schema-1-signed": (
        json.dumps(
            {"mediaType": "application/vnd.docker.distribution.manifest.v1+prettyjws"}
        ).encode(),
        "schema 1 is not supported",
    ),
    "index-entry-malformed": (
        json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"digest": GOOD}]}
        ).encode(),
        "manifest 0: size None is not a byte count",
    ),
}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    running = start_registry(tmp_path_factory.mktemp("hostile-registry"))
    yield running
    running.stop()


@pytest.fixture
def proxy(registry: Registry) -> Iterator[FaultProxy]:
    running = FaultProxy(registry.host)
    yield running
    running.close()


@pytest.mark.parametrize("case", sorted(BODIES))
def test_malformed_manifests_are_refused_naming_the_reference(
    case: str, hostile: Hostile, proxy: FaultProxy
) -> None:
    body, message = BODIES[case]
    proxy.add(Fault(r"GET /v2/t/hostile/manifests/", "status", times=-1, status=200, body=body))
    ref = f"{proxy.address}/t/hostile:1"
    hostile.refused("pull", "--insecure", ref, names=(ref, message))
