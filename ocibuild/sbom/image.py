"""What an SBOM describes: an image (its name, its manifest digest, its time) and, layer by
layer, the components each holds. Pure data; the documents (`spdx`, `cyclonedx`) are pure
functions of it, so the same image gives the same bytes."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass

from ocibuild.sbom.component import Component


@dataclass(frozen=True)
class LayerContents:
    digest: str  # the layer blob's
    components: tuple[Component, ...]
    described: bool = True  # False: a layer no source of this store described (a pulled base)


@dataclass(frozen=True)
class ImageContents:
    name: str  # the image's full reference
    digest: str  # its manifest's: the SBOM's subject
    created: int  # SOURCE_DATE_EPOCH: the document's time
    tool: str  # "ocibuild 0.1.0"
    layers: tuple[LayerContents, ...]

    @property
    def timestamp(self) -> str:
        when = datetime.datetime.fromtimestamp(self.created, datetime.UTC)
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")

    @property
    def uuid(self) -> str:
        """A UUID of the image (and tool): the same document gets the same one."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.tool} {self.name}@{self.digest}"))


def sorted_components(components: tuple[Component, ...]) -> list[Component]:
    return sorted(
        components,
        key=lambda c: (c.kind, c.name, c.version, c.purl, c.path, c.sha256, c.url, c.properties),
    )
