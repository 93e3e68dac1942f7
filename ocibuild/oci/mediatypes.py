"""Media types of the OCI image spec and of Docker's v2 schema 2, and the mapping between them."""

from __future__ import annotations


class MediaType:
    OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
    OCI_INDEX = "application/vnd.oci.image.index.v1+json"
    OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
    OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
    OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
    OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
    OCI_LAYOUT_VERSION = "1.0.0"

    DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
    DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
    DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
    DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
    DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

    # artifacts about an image (OCI 1.1 referrers, cosign's attachments)
    EMPTY = "application/vnd.oci.empty.v1+json"  # the config of an artifact: `{}`
    SPDX = "application/spdx+json"
    CYCLONEDX = "application/vnd.cyclonedx+json"
    IN_TOTO = "application/vnd.in-toto+json"
    DSSE = "application/vnd.dsse.envelope.v1+json"
    SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"


MANIFESTS = frozenset({MediaType.OCI_MANIFEST, MediaType.DOCKER_MANIFEST})
INDEXES = frozenset({MediaType.OCI_INDEX, MediaType.DOCKER_MANIFEST_LIST})
IMAGE_CONFIGS = frozenset({MediaType.OCI_CONFIG, MediaType.DOCKER_CONFIG})

OCI_TO_DOCKER = {
    MediaType.OCI_MANIFEST: MediaType.DOCKER_MANIFEST,
    MediaType.OCI_INDEX: MediaType.DOCKER_MANIFEST_LIST,
    MediaType.OCI_CONFIG: MediaType.DOCKER_CONFIG,
    MediaType.OCI_LAYER_GZIP: MediaType.DOCKER_LAYER_GZIP,
    MediaType.OCI_LAYER: MediaType.DOCKER_LAYER,
}
DOCKER_TO_OCI = {docker: oci for oci, docker in OCI_TO_DOCKER.items()}
DOCKER_TO_OCI[MediaType.DOCKER_FOREIGN_LAYER] = MediaType.OCI_LAYER_GZIP


def to_docker(media_type: str) -> str:
    """The Docker v2 schema 2 equivalent of an OCI media type (zstd layers have none)."""
    if media_type == MediaType.OCI_LAYER_ZSTD:
        raise ValueError("zstd layers have no Docker v2 schema 2 media type; build with gzip")
    return OCI_TO_DOCKER.get(media_type, media_type)


def to_oci(media_type: str) -> str:
    return DOCKER_TO_OCI.get(media_type, media_type)


def layer_compression(media_type: str) -> str:
    """'gzip', 'zstd' or 'none' for a layer media type of either family."""
    if media_type.endswith(("+gzip", ".tar.gzip")):
        return "gzip"
    if media_type.endswith("+zstd"):
        return "zstd"
    return "none"
