"""OCI 1.1 artifacts about an image (its SBOM, its provenance): a manifest of one layer, the
empty config, and a `subject`, the image it is about."""

from __future__ import annotations

from ocibuild.oci.mediatypes import MediaType
from ocibuild.oci.model import Descriptor, Manifest

EMPTY_CONFIG = b"{}"
PREDICATE_ANNOTATION = "in-toto.io/predicate-type"


def artifact_manifest(
    subject: Descriptor, artifact_type: str, data: bytes, annotations: dict[str, str] | None = None
) -> Manifest:
    return Manifest(
        config=Descriptor.of(MediaType.EMPTY, EMPTY_CONFIG),
        layers=(Descriptor.of(artifact_type, data, annotations=dict(annotations or {})),),
        artifact_type=artifact_type,
        subject=Descriptor(subject.media_type, subject.digest, subject.size),
    )
