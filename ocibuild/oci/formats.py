"""The two manifest families an image can be written in, and the one rule that picks between
them: Docker v2 schema 2 when every layer is gzip (what `docker push` sends, and what a
registry serves to Shifter's gateway and other schema-1 clients), else OCI.

An image's family is chosen when it is built; the manifest's bytes in that family are the
image's identity (its digest), the same in the store and in every registry it is pushed to.
Converting gives the same config and layers under the other family's media types: other bytes,
so another digest."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from ocibuild.oci.mediatypes import (
    IMAGE_CONFIGS,
    MANIFESTS,
    MediaType,
    layer_compression,
    to_docker,
    to_oci,
)
from ocibuild.oci.model import Manifest

ManifestFormat = Literal["auto", "oci", "docker"]
FORMATS: tuple[ManifestFormat, ...] = ("auto", "oci", "docker")


def manifest_format(media_type: str) -> str:
    """ "docker" or "oci": the family of a manifest media type."""
    return "docker" if media_type == MediaType.DOCKER_MANIFEST else "oci"


def auto_format(manifest: Manifest) -> str:
    """The family "auto" picks for an image of these layers and config: Docker v2 schema 2 when
    every layer is gzip and the config is an image config, else OCI (zstd and uncompressed
    layers, artifacts, images without layers)."""
    gzip = all(layer_compression(layer.media_type) == "gzip" for layer in manifest.layers)
    image = manifest.config.media_type in IMAGE_CONFIGS
    return "docker" if manifest.layers and gzip and image else "oci"


def in_format(manifest: Manifest, fmt: str) -> Manifest:
    """The manifest in `fmt` ("oci" or "docker"; "auto": `auto_format`): itself if it is in that
    family already, else the same config and layers under the other family's media types.
    ValueError if it has no such form (zstd layers in Docker's)."""
    if fmt == "auto":
        fmt = auto_format(manifest)
    if manifest.media_type not in MANIFESTS:
        raise ValueError(f"a {manifest.media_type} is not an image manifest")
    if manifest_format(manifest.media_type) == fmt:
        return manifest
    mapping = to_docker if fmt == "docker" else to_oci
    return replace(
        manifest,
        media_type=mapping(manifest.media_type),
        config=replace(manifest.config, media_type=mapping(manifest.config.media_type)),
        layers=tuple(
            replace(layer, media_type=mapping(layer.media_type)) for layer in manifest.layers
        ),
    )
