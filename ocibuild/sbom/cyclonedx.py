"""An image's SBOM as CycloneDX 1.6 JSON: the image the BOM's subject (metadata.component, a
container), each layer a component (its blob's sha256) whose nested components are what it
holds: their hashes, package URLs, licenses, where they came from (a distribution reference)
and the source's own words as `ocibuild:` properties."""

from __future__ import annotations

import json
from typing import Any

from ocibuild.sbom.component import Component
from ocibuild.sbom.image import ImageContents, sorted_components
from ocibuild.sbom.licenses import spdx_id

TYPES = {"file": "file", "removed": "file", "user": "data"}


def cyclonedx_document(image: ImageContents) -> bytes:
    layers = []
    for n, layer in enumerate(image.layers):
        layers.append(
            {
                "type": "file",
                "bom-ref": f"layer-{n}",
                "name": f"layer {n}",
                "version": layer.digest,
                "hashes": [{"alg": "SHA-256", "content": layer.digest[7:]}],
                "properties": [
                    {"name": "ocibuild:described", "value": str(layer.described).lower()}
                ],
                "components": [
                    _component(c, f"layer-{n}-{m}")
                    for m, c in enumerate(sorted_components(layer.components))
                ],
            }
        )
    name, _, version = image.tool.partition(" ")
    document = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{image.uuid}",
        "version": 1,
        "metadata": {
            "timestamp": image.timestamp,
            "tools": {"components": [{"type": "application", "name": name, "version": version}]},
            "component": {
                "type": "container",
                "bom-ref": "image",
                "name": image.name,
                "version": image.digest,
                "hashes": [{"alg": "SHA-256", "content": image.digest[7:]}],
            },
        },
        "components": layers,
        "dependencies": [{"ref": "image", "dependsOn": [f"layer-{n}" for n in range(len(layers))]}]
        + [{"ref": f"layer-{n}"} for n in range(len(layers))],
    }
    return (json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _component(component: Component, ref: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": TYPES.get(component.kind, "library"),
        "bom-ref": ref,
        "name": component.name,
        "properties": [
            {"name": f"ocibuild:{k}", "value": v}
            for k, v in [("kind", component.kind), ("path", component.path), *component.properties]
            if v
        ],
    }
    if component.version:
        out["version"] = component.version
    if component.sha256:
        out["hashes"] = [{"alg": "SHA-256", "content": component.sha256}]
    if component.purl:
        out["purl"] = component.purl
    if component.url:
        out["externalReferences"] = [{"type": "distribution", "url": component.url}]
    if component.licenses:
        out["licenses"] = [_license(name) for name in dict.fromkeys(component.licenses)]
    return out


def _license(declared: str) -> dict[str, Any]:
    known = spdx_id(declared)
    return {"license": {"id": known} if known else {"name": declared}}
