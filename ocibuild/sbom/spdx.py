"""An image's SBOM as SPDX 2.3 JSON: the image a package (purpose CONTAINER) the document
describes, each layer a package (ARCHIVE, its blob's sha256) the image CONTAINS, each component
a package its layer CONTAINS, with its sha256, download location, package URL, declared
licenses and the source's own words (kind, flavor, qualifiers, ...) in its comment.

Files are packages too (purpose FILE): an SPDX file needs a SHA-1, which no source gives."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from ocibuild.sbom.component import Component
from ocibuild.sbom.image import ImageContents, sorted_components
from ocibuild.sbom.licenses import license_ref, spdx_id

NOASSERTION = "NOASSERTION"
PURPOSES = {"file": "FILE", "removed": "OTHER", "user": "OTHER"}


def spdx_document(image: ImageContents) -> bytes:
    packages: list[dict[str, Any]] = [
        {
            "SPDXID": "SPDXRef-Image",
            "name": image.name,
            "versionInfo": image.digest,
            "downloadLocation": NOASSERTION,
            "filesAnalyzed": False,
            "primaryPackagePurpose": "CONTAINER",
            "checksums": [{"algorithm": "SHA256", "checksumValue": image.digest[7:]}],
        }
    ]
    relationships = [_relation("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image")]
    extracted: dict[str, str] = {}
    for n, layer in enumerate(image.layers):
        layer_id = f"SPDXRef-Layer-{n}"
        packages.append(
            {
                "SPDXID": layer_id,
                "name": f"layer {n}",
                "versionInfo": layer.digest,
                "downloadLocation": NOASSERTION,
                "filesAnalyzed": False,
                "primaryPackagePurpose": "ARCHIVE",
                "checksums": [{"algorithm": "SHA256", "checksumValue": layer.digest[7:]}],
                "comment": "components as the recipe's sources declared them"
                if layer.described
                else "not described: a layer of a base image no source of this build made",
            }
        )
        relationships.append(_relation("SPDXRef-Image", "CONTAINS", layer_id))
        for m, component in enumerate(sorted_components(layer.components)):
            component_id = f"{layer_id}-{_idstring(component.kind)}-{m}"
            packages.append(_package(component, component_id, extracted))
            relationships.append(_relation(layer_id, "CONTAINS", component_id))
    document: dict[str, Any] = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": image.name,
        "documentNamespace": f"https://spdx.org/spdxdocs/{_idstring(image.name)}-{image.uuid}",
        "creationInfo": {
            "created": image.timestamp,
            "creators": [f"Tool: {image.tool.replace(' ', '-')}"],
        },
        "packages": packages,
        "relationships": relationships,
    }
    if extracted:
        document["hasExtractedLicensingInfos"] = [
            {"licenseId": ref, "extractedText": text, "name": text}
            for ref, text in sorted(extracted.items())
        ]
    return (json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _package(component: Component, spdx_id_: str, extracted: dict[str, str]) -> dict[str, Any]:
    package: dict[str, Any] = {
        "SPDXID": spdx_id_,
        "name": component.name,
        "downloadLocation": component.url if _downloadable(component.url) else NOASSERTION,
        "filesAnalyzed": False,
        "primaryPackagePurpose": PURPOSES.get(component.kind, "LIBRARY"),
        "licenseDeclared": _expression(component.licenses, extracted),
        "licenseConcluded": NOASSERTION,
        "comment": "; ".join(
            f"{k}: {v}"
            for k, v in [
                ("kind", component.kind),
                *component.properties,
                ("url", "" if _downloadable(component.url) else component.url),
            ]
            if v
        ),
    }
    if component.version:
        package["versionInfo"] = component.version
    if component.sha256:
        package["checksums"] = [{"algorithm": "SHA256", "checksumValue": component.sha256}]
    if component.purl:
        package["externalRefs"] = [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": component.purl,
            }
        ]
    if component.path:
        package["sourceInfo"] = f"in the image at {component.path}"
    return package


def _expression(licenses: tuple[str, ...], extracted: dict[str, str]) -> str:
    """The declared licenses, all applying (AND); ones without an SPDX id as LicenseRefs."""
    terms = []
    for declared in dict.fromkeys(licenses):
        known = spdx_id(declared)
        if known is None:
            known = license_ref(declared)
            extracted[known] = declared
        terms.append(known)
    return " AND ".join(terms) if terms else NOASSERTION


# SPDX 2.3's grammar of a download location's host: a DNS name ending in a 2-5 letter top-level
# domain (an IP address, `localhost` or a file: URL is not one: such URLs go to the comment)
_SPDX_HOST = re.compile(r"[a-z0-9]+([-.][a-z0-9]+)*\.[a-z]{2,5}", re.IGNORECASE)


def _downloadable(url: str) -> bool:
    """A URL SPDX takes as a download location."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https", "ftp", "sftp") and bool(
        _SPDX_HOST.fullmatch(parts.hostname or "")
    )


def _relation(element: str, kind: str, related: str) -> dict[str, str]:
    return {"spdxElementId": element, "relationshipType": kind, "relatedSpdxElement": related}


def _idstring(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-") or "x"
