"""Write one image of the store as an archive that other tools load.

- oci-archive: a tar of an OCI layout holding just this image (podman load, skopeo,
  apptainer `oci-archive:`);
- docker-archive: `docker save`'s format: manifest.json, the config, and uncompressed layer
  tars named by diff_id (docker load, podman load, apptainer `docker-archive:`).

Both stream blobs from the store and are written under a temporary name, then renamed.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ocibuild.atomicfile import atomic_writer
from ocibuild.errors import OcibuildError
from ocibuild.layer.reader import decompressed
from ocibuild.oci import Index, MediaType, canonical_json
from ocibuild.oci.mediatypes import layer_compression
from ocibuild.oci.reference import parse_reference
from ocibuild.store.layout import REF_ANNOTATION, Store, StoredImage

FORMATS = ("oci-archive", "docker-archive")
CHUNK = 1 << 20


def export_image(
    store: Store, ref: str, fmt: str, output: Path, tags: list[str] | None = None
) -> None:
    if fmt not in FORMATS:
        raise OcibuildError(f"unknown export format {fmt!r} (one of {', '.join(FORMATS)})")
    image = store.image(ref)
    names = tags or [store.normalize(ref)]
    with (
        atomic_writer(output) as out,
        tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        if fmt == "oci-archive":
            _oci_archive(store, image, names, tar)
        else:
            _docker_archive(store, image, names, tar)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_stream(tar: tarfile.TarFile, name: str, size: int, stream: BinaryIO) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    tar.addfile(info, stream)


def _oci_archive(store: Store, image: StoredImage, names: list[str], tar: tarfile.TarFile) -> None:
    _add_bytes(
        tar, "oci-layout", canonical_json({"imageLayoutVersion": MediaType.OCI_LAYOUT_VERSION})
    )
    descriptors = [image.descriptor.with_annotations(**{REF_ANNOTATION: n}) for n in names]
    _add_bytes(tar, "index.json", Index(tuple(descriptors)).to_bytes())
    tar.addfile(_dir("blobs/"))
    tar.addfile(_dir("blobs/sha256/"))
    blobs = [image.descriptor, image.manifest.config, *image.manifest.layers]
    for digest in dict.fromkeys(d.digest for d in blobs):
        with store.open_blob(digest) as f:
            _add_stream(tar, f"blobs/sha256/{digest.hex}", store.blob_size(digest), f)


def _dir(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info


def _docker_archive(
    store: Store, image: StoredImage, names: list[str], tar: tarfile.TarFile
) -> None:
    config_name = f"{image.manifest.config.digest.hex}.json"
    _add_bytes(tar, config_name, store.read_blob(image.manifest.config.digest))
    layer_names = []
    for layer, diff_id in zip(image.manifest.layers, image.config.diff_ids, strict=True):
        name = f"{diff_id.hex}/layer.tar"
        if name not in layer_names:
            with _tar_of(store, layer.digest, layer.media_type) as (size, stream):
                _add_stream(tar, name, size, stream)
        layer_names.append(name)
    repo_tags = [_docker_tag(n) for n in names]
    manifest = [{"Config": config_name, "RepoTags": repo_tags, "Layers": layer_names}]
    _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())


def _docker_tag(name: str) -> str:
    ref = parse_reference(name)
    return f"{ref.name}:{ref.tag or 'latest'}"


@contextmanager
def _tar_of(store: Store, digest: str, media_type: str) -> Iterator[tuple[int, BinaryIO]]:
    """The uncompressed tar of a layer and its size (a first pass counts it when compressed)."""
    if layer_compression(media_type) == "none":
        with store.open_blob(digest) as f:
            yield store.blob_size(digest), f
        return
    size = 0
    with store.open_blob(digest) as blob, decompressed(blob, media_type) as stream:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
    with store.open_blob(digest) as blob, decompressed(blob, media_type) as stream:
        yield size, stream
