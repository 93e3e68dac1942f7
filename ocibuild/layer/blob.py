"""A written layer: the one value the writer makes, the store's state caches and the builder
uses (kept apart from the writer, so that the store does not load compressors)."""

from __future__ import annotations

from dataclasses import dataclass

from ocibuild.oci.digest import Digest
from ocibuild.oci.model import Descriptor


@dataclass(frozen=True)
class Layer:
    """A written layer blob: what the writer makes, the store's state caches, the builder uses."""

    digest: Digest
    size: int
    diff_id: Digest
    tar_size: int
    media_type: str
    entries: int

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size)
