"""An image the store holds: the reference it was found by, its manifest and config."""

from __future__ import annotations

from dataclasses import dataclass

from ocibuild.oci import Descriptor, ImageConfig, Manifest


@dataclass(frozen=True)
class StoredImage:
    ref: str
    descriptor: Descriptor
    manifest: Manifest
    config: ImageConfig
