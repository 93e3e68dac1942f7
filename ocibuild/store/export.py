"""Write one image of the store as an archive that other tools load.

- oci-archive: a tar of an OCI layout holding just this image (podman load, skopeo,
  apptainer `oci-archive:`), a Docker-format image indexed by its OCI view as in the store;
- docker-archive: `docker save`'s format: manifest.json, the config, and uncompressed layer
  tars named by diff_id (docker load, podman load, apptainer `docker-archive:`);
- squashfs: the image's root filesystem, flattened, as one squashfs (ch-run, Shifter's
  import, squashfuse, the kernel);
- dir: the same root filesystem as a directory (ch-run and other runtimes of directories);
- podman-hpc: the image written into podman-hpc's squash store, the directory given, as its
  `migrate` would leave it (store/podmanhpc.py).

All stream blobs from the store; the output path follows the output policy (`outpath`): a file
or directory is written under a temporary name, then renamed; a device or FIFO is written
through (archives also stream to stdout). The squashfs and dir forms carry what HPC runtimes
need (store/flatten.py).
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import BinaryIO, cast

import zstandard

from ocibuild.errors import DigestMismatchError, ExportError, OcibuildError
from ocibuild.layer.reader import decompressed
from ocibuild.oci import Descriptor, Index, MediaType, canonical_json
from ocibuild.oci.formats import in_format
from ocibuild.oci.mediatypes import layer_compression
from ocibuild.oci.reference import parse_reference
from ocibuild.outpath import (
    OutputPath,
    output_directory,
    output_file,
    output_target,
    outside_stores,
)
from ocibuild.progress import Message, Reporter, plural, silent
from ocibuild.store.flatten import FlattenOptions, created_epoch, flat_tar
from ocibuild.store.image import StoredImage
from ocibuild.store.layout import IDENTITY_ANNOTATION, REF_ANNOTATION, Store
from ocibuild.store.rootdir import HostSafety, write_rootdir
from ocibuild.store.squashfs import SquashfsOptions, tar2sqfs, write_squashfs

ARCHIVE_FORMATS = ("oci-archive", "docker-archive")
ROOTFS_FORMATS = ("squashfs", "dir")
PODMAN_HPC = "podman-hpc"
FORMATS = ARCHIVE_FORMATS + ROOTFS_FORMATS + (PODMAN_HPC,)
CHUNK = 1 << 20


@dataclass(frozen=True)
class RootfsOptions:
    """How the squashfs and dir formats write the root filesystem."""

    all_root: bool = False
    xattrs: bool = False
    compression: str = "gzip"  # squashfs only
    level: int | None = None  # squashfs only; the compression's default when None
    devices: bool = False  # dir only: write device nodes (dangerous: a hostile /dev/mem)
    keep_setid: bool = False  # dir only: keep set-uid and set-gid bits (dangerous)


def export_image(
    store: Store,
    ref: str,
    fmt: str,
    output: OutputPath,
    tags: list[str] | None = None,
    rootfs: RootfsOptions | None = None,
    report: Reporter = silent,
    platform: str | None = None,
) -> None:
    """Write image `ref` (of an index: `platform`'s, default this machine's) in `fmt` at
    `output`; what a directory export leaves out for the host's sake is reported as warnings."""
    _check_format(fmt, rootfs)
    if fmt == PODMAN_HPC:
        _export_podman_hpc(store, ref, output, tags, rootfs, report, platform)
        return
    rootfs = rootfs or RootfsOptions()
    squashfs = None
    if fmt == "squashfs":
        squashfs = SquashfsOptions(rootfs.compression, rootfs.level, rootfs.xattrs)
        tar2sqfs()  # a missing tool fails before anything is read
    if fmt == "dir":
        output_directory(output)  # refused before anything is read
    else:
        output_target(output)
    image = store.image(ref, platform)
    try:
        if fmt in ROOTFS_FORMATS:
            try:
                _export_rootfs(store, image, output, rootfs, squashfs, report)
            except OSError as e:
                raise ExportError(f"cannot write {output}: {e.strerror or e}") from None
        else:
            with output_file(output) as out:
                _write_archive(store, image, fmt, out, tags or [store.normalize(ref)])
    except DigestMismatchError as e:
        raise e.located(store.normalize(ref)) from None


def write_archive(
    store: Store,
    ref: str,
    fmt: str,
    out: BinaryIO,
    tags: list[str] | None = None,
    platform: str | None = None,
) -> None:
    """Stream the archive to `out` (a file, or a pipe: the tar is written front to back)."""
    _check_format(fmt, None)
    if fmt not in ARCHIVE_FORMATS:
        raise OcibuildError(
            f"--format {fmt} writes a file or directory, not a stream: give -o PATH"
        )
    try:
        _write_archive(store, store.image(ref, platform), fmt, out, tags or [store.normalize(ref)])
    except DigestMismatchError as e:
        # the end of the archive is not written: a reader sees it cut short, not whole
        raise e.located(store.normalize(ref)) from None


def _check_format(fmt: str, rootfs: RootfsOptions | None) -> None:
    if fmt not in FORMATS:
        raise OcibuildError(f"unknown export format {fmt!r} (one of {', '.join(FORMATS)})")
    if fmt == PODMAN_HPC and rootfs is not None and (rootfs.all_root or rootfs.xattrs):
        raise OcibuildError(
            "--all-root and --xattrs do not apply to --format podman-hpc (its squash keeps the "
            "image's owners, as podman runs it; images with the same layers share it)"
        )
    if rootfs is not None and (rootfs.devices or rootfs.keep_setid) and fmt != "dir":
        raise OcibuildError("--devices and --keep-setid apply to --format dir only")
    if rootfs is not None and fmt not in (*ROOTFS_FORMATS, PODMAN_HPC):
        raise OcibuildError(
            f"--all-root, --xattrs, --compression and --level apply to {' and '.join(ROOTFS_FORMATS)} only"
        )


def _export_podman_hpc(
    store: Store,
    ref: str,
    given: OutputPath,
    tags: list[str] | None,
    rootfs: RootfsOptions | None,
    report: Reporter,
    platform: str | None,
) -> None:
    from ocibuild.store.podmanhpc import DEFAULT_COMPRESSION, export_podman_hpc

    output = outside_stores(given)
    options = rootfs or RootfsOptions(compression=DEFAULT_COMPRESSION)
    squashfs = SquashfsOptions(options.compression, options.level)
    tar2sqfs()  # a missing tool fails before anything is read or written
    image = store.image(ref, platform)
    names = [store.normalize(name) for name in tags or [ref]]
    if any("@" in name or name.startswith("sha256:") for name in names):
        raise OcibuildError(f"podman-hpc runs images by name: give {ref} one with --tag NAME:TAG")
    try:
        done = export_podman_hpc(store, image, output, names, squashfs, report)
    except OSError as e:
        raise ExportError(f"cannot write into {output}: {e.strerror or e}") from None
    what = "written" if done.changed else "already there, nothing changed"
    report(
        Message(
            f"{', '.join(done.names)}: image {done.image_id[:12]} {what} "
            f"(squash {done.squash.relative_to(output)})"
        )
    )


def _export_rootfs(
    store: Store,
    image: StoredImage,
    output: OutputPath,
    rootfs: RootfsOptions,
    squashfs: SquashfsOptions | None,
    report: Reporter,
) -> None:
    stream = flat_tar(store, image, FlattenOptions(rootfs.all_root, rootfs.xattrs))
    if squashfs is None:
        safety = write_rootdir(stream, output, HostSafety(rootfs.devices, rootfs.keep_setid))
        if safety.dropped_devices:
            report(
                Message(
                    f"{output}: {plural(safety.dropped_devices, 'device node')} of the image "
                    "not written (--devices writes them)",
                    "warning",
                )
            )
        if safety.cleared_setid:
            report(
                Message(
                    f"{output}: set-uid/set-gid bits of "
                    f"{plural(safety.cleared_setid, 'file')} cleared (--keep-setid keeps them)",
                    "warning",
                )
            )
    else:
        write_squashfs(stream, output, replace(squashfs, mtime=created_epoch(image.config)))


def _write_archive(
    store: Store, image: StoredImage, fmt: str, out: BinaryIO, names: list[str]
) -> None:
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
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
    entry, view = image.descriptor, b""
    if image.descriptor.media_type == MediaType.DOCKER_MANIFEST:  # indexed as in the store
        view = in_format(image.manifest, "oci").to_bytes()
        entry = Descriptor.of(
            MediaType.OCI_MANIFEST, view, annotations={IDENTITY_ANNOTATION: image.descriptor.digest}
        )
    descriptors = [entry.with_annotations(**{REF_ANNOTATION: n}) for n in names]
    _add_bytes(tar, "index.json", Index(tuple(descriptors)).to_bytes())
    tar.addfile(_dir("blobs/"))
    tar.addfile(_dir("blobs/sha256/"))
    if view:
        _add_bytes(tar, f"blobs/sha256/{entry.digest.hex}", view)
    blobs = [image.descriptor, image.manifest.config, *image.manifest.layers]
    for descriptor in {d.digest: d for d in blobs}.values():
        with store.open_verified(descriptor.digest, descriptor.size) as f:
            _add_stream(
                tar, f"blobs/sha256/{descriptor.digest.hex}", descriptor.size, cast(BinaryIO, f)
            )
            f.finish()


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
            with _tar_of(store, layer) as (size, stream):
                _add_stream(tar, name, size, stream)
        layer_names.append(name)
    repo_tags = [_docker_tag(n) for n in names]
    manifest = [{"Config": config_name, "RepoTags": repo_tags, "Layers": layer_names}]
    _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())


def _docker_tag(name: str) -> str:
    ref = parse_reference(name)
    return f"{ref.name}:{ref.tag or 'latest'}"


@contextmanager
def _tar_of(store: Store, layer: Descriptor) -> Iterator[tuple[int, BinaryIO]]:
    """The uncompressed tar of a layer and its size (a first pass counts it when compressed),
    the blob verified in each pass."""
    if layer_compression(layer.media_type) == "none":
        with store.open_verified(layer.digest, layer.size) as f:
            yield layer.size, cast(BinaryIO, f)
            f.finish()
        return
    size = 0
    with store.open_verified(layer.digest, layer.size) as blob:
        try:
            with decompressed(cast(BinaryIO, blob), layer.media_type) as stream:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
        except (OSError, EOFError, ValueError, zstandard.ZstdError):
            blob.finish()  # a blob that does not verify says so, not how it fails to inflate
            raise
        blob.finish()
    with store.open_verified(layer.digest, layer.size) as blob:
        with decompressed(cast(BinaryIO, blob), layer.media_type) as stream:
            yield size, stream
        blob.finish()
