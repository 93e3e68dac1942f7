"""The OCI data model: media types, digests, descriptors, manifests, indexes, image configs.

Frozen values and pure functions only; no I/O.
"""

from ocibuild.oci.digest import Digest, sha256_digest
from ocibuild.oci.json import canonical_json
from ocibuild.oci.mediatypes import MediaType
from ocibuild.oci.model import (
    Descriptor,
    History,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    RuntimeConfig,
)

__all__ = [
    "Descriptor",
    "Digest",
    "History",
    "ImageConfig",
    "Index",
    "Manifest",
    "MediaType",
    "Platform",
    "RuntimeConfig",
    "canonical_json",
    "sha256_digest",
]
