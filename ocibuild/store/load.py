"""Load an archive into the store, the way `podman load` does; the format is told by content:

- oci-archive: a tar of an OCI layout (`oci-layout`, `index.json`, `blobs/sha256/...`), as
  `podman save --format oci-archive`, skopeo and `ocibuild export` write it. Manifests and
  blobs are kept as they are, so every digest stays the same.
- docker-archive: `docker save`'s format (`manifest.json`, a config, uncompressed layer tars).
  It has no manifest: one is written (OCI media types, layers as they come), so the config's
  digest stays, the manifest's is new.

One pass over the tar (a file or a pipe, compressed or not): every member is staged under its
sha256 as it streams in. Then each blob must be what the archive says (a blob's name is its
digest; a docker layer's sha256 is its diff_id), and only then are the blobs published and the
images tagged. A bad archive leaves the store as it was.
"""

from __future__ import annotations

import hashlib
import posixpath
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, BinaryIO

from ocibuild.errors import DigestMismatchError, OcibuildError
from ocibuild.jsonread import JSONObject, json_list, json_object, read_json, read_json_object
from ocibuild.layer.reader import DECODE_ERRORS, decompressed
from ocibuild.layer.safepath import check_tar_member
from ocibuild.oci import Descriptor, ImageConfig, Index, Manifest, MediaType
from ocibuild.oci.digest import Digest, sha256_digest
from ocibuild.oci.formats import in_format
from ocibuild.oci.mediatypes import INDEXES
from ocibuild.oci.reference import ReferenceError, parse_reference
from ocibuild.progress import Message, Reporter, silent
from ocibuild.store.layout import IDENTITY_ANNOTATION, REF_ANNOTATION, Store
from ocibuild.store.transaction import Transaction

CHUNK = 1 << 20
METADATA = frozenset({"oci-layout", "index.json", "manifest.json", "repositories"})
MAX_METADATA = 4 << 20
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class ArchiveError(OcibuildError):
    """An archive that is not an image archive, or whose content is not what it says."""


@dataclass(frozen=True)
class LoadedImage:
    refs: tuple[str, ...]
    descriptor: Descriptor


@dataclass(frozen=True)
class _Member:
    digest: Digest
    size: int


@dataclass
class _Contents:
    """What the pass over the tar found: small metadata files, and the staged blobs by name."""

    metadata: dict[str, bytes]
    blobs: dict[str, _Member]
    links: dict[str, str]

    def member(self, name: str, archive: str) -> _Member:
        name = _normal(name)
        for _ in range(16):
            if name not in self.links:
                break
            name = self.links[name]
        if name not in self.blobs:
            raise ArchiveError(f"{archive}: no file {name} in the archive")
        return self.blobs[name]


def load_archive(
    store: Store,
    stream: BinaryIO,
    archive: str,
    tags: Sequence[str] = (),
    report: Reporter = silent,
) -> list[LoadedImage]:
    """Load every image of the archive read from `stream` (`archive` names it in messages);
    `tags` replace the names the archive records (it must then hold one image)."""
    with store.build_lock(), store.transaction() as tx:
        contents = _read(tx, stream, archive, report)
        if "oci-layout" in contents.metadata and "index.json" in contents.metadata:
            images = _oci_images(tx, contents, archive)
        elif "manifest.json" in contents.metadata:
            images = _docker_images(tx, contents, archive)
        else:
            raise ArchiveError(
                f"{archive}: neither an oci-archive (no oci-layout and index.json) "
                "nor a docker-archive (no manifest.json)"
            )
        images = _named(images, tags, archive)
        tx.publish()
        for image in images:
            store.tag(image.refs, image.descriptor)
    return images


def _normal(name: str) -> str:
    return posixpath.normpath(name.lstrip("/")).removeprefix("./")


def _read(tx: Transaction, stream: BinaryIO, archive: str, report: Reporter) -> _Contents:
    contents = _Contents({}, {}, {})
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for info in tar:
                check_tar_member(info, archive)  # sparse maps, sizes: believed up to a budget
                name = _normal(info.name)
                if info.issym():
                    contents.links[name] = _normal(
                        posixpath.join(posixpath.dirname(name), info.linkname)
                    )
                elif info.islnk():
                    contents.links[name] = _normal(info.linkname)
                elif info.isfile():
                    f = tar.extractfile(info)
                    assert f is not None
                    if name in METADATA:
                        if info.size > MAX_METADATA:
                            raise ArchiveError(f"{archive}: {name} is larger than 4 MiB")
                        contents.metadata[name] = f.read()
                    else:
                        contents.blobs[name] = _stage(tx, f)
                        report(Message(f"read {name}", "debug"))
    except DECODE_ERRORS as e:
        if isinstance(e, OSError) and e.errno is not None:
            raise  # the disk, not the archive (a full store, a read error)
        raise ArchiveError(f"{archive}: not a readable tar archive ({e})") from None
    return contents


def _stage(tx: Transaction, f: IO[bytes]) -> _Member:
    h = hashlib.sha256()
    size = 0

    def write(out: BinaryIO) -> str:
        nonlocal size
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
            out.write(chunk)
        return "sha256:" + h.hexdigest()

    digest = Digest(tx.stage(write))
    return _Member(digest, size)


def _json(data: bytes, what: str) -> JSONObject:
    try:
        return read_json_object(data, what)
    except ValueError as e:
        raise ArchiveError(str(e)) from None


# -- oci-archive ---------------------------------------------------------------------------------


def _oci_images(tx: Transaction, contents: _Contents, archive: str) -> list[LoadedImage]:
    for name, member in contents.blobs.items():
        if name.startswith("blobs/sha256/") and name != f"blobs/sha256/{member.digest.hex}":
            raise DigestMismatchError(f"{archive}: {name} has content of digest {member.digest}")
    try:
        index = Index.from_json(_json(contents.metadata["index.json"], f"{archive}: index.json"))
    except (KeyError, TypeError, ValueError) as e:
        raise ArchiveError(f"{archive}: index.json is not an image index ({e})") from None
    if not index.manifests:
        raise ArchiveError(f"{archive}: index.json lists no image")
    for descriptor in index.manifests:
        _check_tree(tx, contents, descriptor, archive)
    out = []
    for descriptor in index.manifests:
        name = descriptor.annotations.get(REF_ANNOTATION, "")
        out.append(
            LoadedImage((name,) if name else (), _identity(tx, contents, descriptor, archive))
        )
    return out


def _identity(
    tx: Transaction, contents: _Contents, descriptor: Descriptor, archive: str
) -> Descriptor:
    """The image an index entry stands for: the Docker manifest an OCI view's annotation names
    (as ocibuild's store and export write them), if it is that very image; else the entry."""
    digest = descriptor.annotations.get(IDENTITY_ANNOTATION)
    if digest is None:
        return Descriptor(
            descriptor.media_type, descriptor.digest, descriptor.size, platform=descriptor.platform
        )
    member = contents.member(f"blobs/sha256/{digest.removeprefix('sha256:')}", archive)
    try:
        manifest = Manifest.from_json(_json(tx.read_blob(member.digest), f"{archive}: {digest}"))
        view = in_format(manifest, "oci").to_bytes()
    except (KeyError, TypeError, ValueError) as e:
        raise ArchiveError(f"{archive}: {digest} is not an image manifest ({e})") from None
    if manifest.media_type != MediaType.DOCKER_MANIFEST or sha256_digest(view) != descriptor.digest:
        raise ArchiveError(
            f"{archive}: {IDENTITY_ANNOTATION} names {digest}, which is not the Docker form of "
            f"the image {descriptor.digest}"
        )
    return Descriptor(
        MediaType.DOCKER_MANIFEST, member.digest, member.size, platform=descriptor.platform
    )


def _check_tree(tx: Transaction, contents: _Contents, descriptor: Descriptor, archive: str) -> None:
    """Every blob `descriptor` reaches is in the archive, with the size it is announced with;
    each blob checked once, with a stack, not recursion (indexes may nest as deep as they go,
    and share children)."""
    pending, seen = [descriptor], set()
    while pending:
        descriptor = pending.pop()
        if (descriptor.digest, descriptor.media_type) in seen:
            continue
        seen.add((descriptor.digest, descriptor.media_type))
        member = contents.member(f"blobs/sha256/{descriptor.digest.hex}", archive)
        if member.size != descriptor.size:
            raise DigestMismatchError(
                f"{archive}: blob {descriptor.digest} has {member.size} bytes, "
                f"its descriptor says {descriptor.size}"
            )
        if descriptor.media_type in INDEXES:
            data = _json(tx.read_blob(descriptor.digest), f"{archive}: {descriptor.digest}")
            pending.extend(Index.from_json(data).manifests)
        elif descriptor.media_type in (MediaType.OCI_MANIFEST, MediaType.DOCKER_MANIFEST):
            data = _json(tx.read_blob(descriptor.digest), f"{archive}: {descriptor.digest}")
            manifest = Manifest.from_json(data)
            pending.extend((manifest.config, *manifest.layers))


# -- docker-archive ------------------------------------------------------------------------------


def _docker_images(tx: Transaction, contents: _Contents, archive: str) -> list[LoadedImage]:
    what = f"{archive}: manifest.json"
    try:
        entries = json_list(read_json(contents.metadata["manifest.json"], what), what)
        images = [json_object(entry, f"{what}: an entry") for entry in entries]
        names = [
            (str(i["Config"]), [str(x) for x in json_list(i["Layers"], "Layers")]) for i in images
        ]
    except KeyError as e:
        raise ArchiveError(f"{what}: an entry without {e}") from None
    except ValueError as e:
        raise ArchiveError(str(e)) from None
    if not images:
        raise ArchiveError(f"{archive}: manifest.json lists no image")
    out = []
    for entry, (config_name, layer_names) in zip(images, names, strict=True):
        config_member = contents.member(config_name, archive)
        stem = posixpath.basename(config_name).removesuffix(".json")
        if len(stem) == 64 and stem != config_member.digest.hex:
            raise DigestMismatchError(
                f"{archive}: {config_name} has content of digest {config_member.digest}"
            )
        config_data = tx.read_blob(config_member.digest)
        config = ImageConfig.from_json(_json(config_data, f"{archive}: {config_name}"))
        if len(config.diff_ids) != len(layer_names):
            raise ArchiveError(
                f"{archive}: {config_name} lists {len(config.diff_ids)} layers, "
                f"manifest.json {len(layer_names)}"
            )
        layers = tuple(
            _docker_layer(tx, contents.member(name, archive), name, diff_id, archive)
            for name, diff_id in zip(layer_names, config.diff_ids, strict=True)
        )
        config_descriptor = Descriptor(
            MediaType.OCI_CONFIG, config_member.digest, config_member.size
        )
        manifest = Manifest(config_descriptor, layers).to_bytes()
        tx.stage_bytes(manifest)
        descriptor = Descriptor.of(MediaType.OCI_MANIFEST, manifest, platform=config.platform)
        tags = entry.get("RepoTags") or []
        refs = tuple(str(t) for t in tags) if isinstance(tags, list) else ()
        out.append(LoadedImage(refs, descriptor))
    return out


def _docker_layer(
    tx: Transaction, member: _Member, name: str, diff_id: str, archive: str
) -> Descriptor:
    """A layer tar of a docker-archive, verified against its diff_id (compressed ones too)."""
    if member.digest == diff_id:
        return Descriptor(MediaType.OCI_LAYER, member.digest, member.size)
    with tx.open_blob(member.digest) as f:
        magic = f.read(4)
    media_type = {GZIP_MAGIC: MediaType.OCI_LAYER_GZIP, ZSTD_MAGIC: MediaType.OCI_LAYER_ZSTD}.get(
        magic[:2] if magic[:2] == GZIP_MAGIC else magic
    )
    if media_type is not None and _uncompressed_digest(tx, member, media_type) == diff_id:
        return Descriptor(media_type, member.digest, member.size)
    raise DigestMismatchError(
        f"{archive}: layer {name} has content of digest {member.digest}, "
        f"the image config says {diff_id}"
    )


def _uncompressed_digest(tx: Transaction, member: _Member, media_type: str) -> str:
    h = hashlib.sha256()
    try:
        with tx.open_blob(member.digest) as blob, decompressed(blob, media_type) as stream:
            while chunk := stream.read(CHUNK):
                h.update(chunk)
    except (OSError, EOFError, ValueError):
        return ""
    return "sha256:" + h.hexdigest()


# -- names ---------------------------------------------------------------------------------------


def _named(images: list[LoadedImage], tags: Sequence[str], archive: str) -> list[LoadedImage]:
    if tags:
        if len(images) != 1:
            raise ArchiveError(
                f"{archive} holds {len(images)} images: --tag names the image of a "
                "one-image archive"
            )
        return [LoadedImage(tuple(_full(t, archive) for t in tags), images[0].descriptor)]
    out = []
    for number, image in enumerate(images, 1):
        if not image.refs:
            raise ArchiveError(
                f"{archive}: image {number} ({image.descriptor.digest}) has no name; "
                "give one with --tag"
            )
        out.append(LoadedImage(tuple(_full(r, archive) for r in image.refs), image.descriptor))
    return out


def _full(name: str, archive: str) -> str:
    try:
        return str(parse_reference(name))
    except ReferenceError as e:
        raise ArchiveError(f"{archive}: {e}") from None
