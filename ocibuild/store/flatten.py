"""An image's layers merged into one tar stream: the root filesystem a runtime sees, read in
one pass over the layers and never unpacked.

Layers are read youngest first, so the first entry met for a path is the one that shows:
lower entries under a whiteout, an opaque directory or a non-directory of an upper layer are
dropped as they stream by. Directories may therefore come after their children (readers of
the stream, tar2sqfs and the directory writer, take that). A hardlink whose target is not
(yet) in the stream from its own layer waits to the end; when the file it names was replaced
by an upper layer, its content is read again from its own layer, the one case that reads a
layer twice. Each layer blob is hashed as it streams and checked against its digest.

Memory holds the set of paths, never file contents.

A `tap` gets a copy of each layer's tar as it is read (the whole tar: what follows its end
blocks too), for a second reader that would otherwise decompress the layer again.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Protocol, cast

from ocibuild.errors import ExportError, LayerError
from ocibuild.layer.entry import clean_path, read_whiteout
from ocibuild.layer.reader import UNREADABLE, decompressed, member_content, members
from ocibuild.layer.safepath import check_member_numbers
from ocibuild.oci import Descriptor, ImageConfig
from ocibuild.store.image import StoredImage
from ocibuild.store.layout import Store
from ocibuild.store.rootfs import under
from ocibuild.store.verify import VerifiedBlob

CHUNK = 1 << 20
BLOCK = 512
# What HPC runtimes bind-mount over: ch-run refuses an image lacking any of them.
MOUNT_DIRS = ("dev", "proc", "sys", "tmp", "mnt", "home")
MOUNT_FILES = ("etc/passwd", "etc/group", "etc/hosts", "etc/resolv.conf")
CH_ENVIRONMENT = "ch/environment"
CH_METADATA = "ch/metadata.json"


@dataclass(frozen=True)
class FlattenOptions:
    all_root: bool = False  # every entry owned by 0:0, as Shifter's gateway squashes images
    xattrs: bool = False  # keep extended attributes (SCHILY.xattr PAX records)
    runtime_files: bool = True  # add the mount points, /ch/environment and /ch/metadata.json


class LayerCopy(Protocol):
    """Where a tap sends a layer's tar: every chunk, then `close` at its end."""

    def write(self, data: bytes, /) -> int: ...

    def close(self) -> None: ...


Tap = Callable[[int], LayerCopy | None]  # layer index (bottom layer 0) -> its copy, if wanted


@dataclass(frozen=True)
class _Shown:
    layer: int  # index in the manifest, bottom layer 0
    type: bytes


@dataclass(frozen=True)
class _Link:
    layer: int
    path: str
    target: str
    info: tarfile.TarInfo


@dataclass
class _Merge:
    shown: dict[str, _Shown] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)  # whiteouts and non-directories of upper layers
    opaque: set[str] = field(default_factory=set)  # directories upper layers made opaque
    links: list[_Link] = field(default_factory=list)


def flat_tar(
    store: Store, image: StoredImage, options: FlattenOptions, tap: Tap | None = None
) -> Iterator[bytes]:
    """The merged root filesystem of `image` as a PAX tar stream, in chunks."""
    merge = _Merge()
    mtime = created_epoch(image.config)
    skipped = {CH_ENVIRONMENT, CH_METADATA} if options.runtime_files else set()
    layers = list(image.manifest.layers)
    for index in reversed(range(len(layers))):
        copy = tap(index) if tap else None
        yield from _layer(store, layers[index], index, merge, skipped, options, copy)
    yield from _deferred_links(store, layers, merge, options)
    if options.runtime_files:
        yield from _runtime_files(image.config, merge, mtime)
    yield b"\0" * (2 * BLOCK)


def created_epoch(config: ImageConfig) -> int:
    """The image's creation time in seconds (0 when it has none): the time of what we add."""
    if not config.created:
        return 0
    try:
        return int(datetime.fromisoformat(config.created.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def _layer(
    store: Store,
    layer: Descriptor,
    index: int,
    merge: _Merge,
    skipped: set[str],
    options: FlattenOptions,
    copy: LayerCopy | None = None,
) -> Iterator[bytes]:
    removed: set[str] = set()
    opaque: set[str] = set()
    what = f"layer {layer.digest}"
    with (
        _verified_blob(store, layer) as blob,
        decompressed(cast(BinaryIO, blob), layer.media_type) as tar_stream,
    ):
        stream = cast(BinaryIO, _Copying(tar_stream, copy)) if copy else tar_stream
        try:
            for info, tar in members(stream, what):
                check_member_numbers(info, what)  # what it writes is bounded as what it reads
                path = clean_path(info.name, f"{what}: entry")
                if not path:
                    continue  # the root directory: runtimes make their own
                whiteout = read_whiteout(path)
                if whiteout is not None:
                    (opaque if whiteout.opaque else removed).add(whiteout.path)
                    continue
                if (
                    path in merge.shown
                    or path in skipped
                    or under(path, merge.removed)
                    or under(posixpath.dirname(path), merge.opaque)
                ):
                    continue
                yield from _entry(info, tar, path, index, merge, options)
                if info.type != tarfile.DIRTYPE:
                    removed.add(path)
            while copy and stream.read(CHUNK):
                pass  # the rest of the tar, for the copy
        except UNREADABLE as e:
            blob.finish()  # a blob that does not verify says so, rather than how it fails to parse
            if isinstance(e, LayerError):
                raise
            raise LayerError(f"{what}: not a readable tar layer ({e})") from None
        blob.finish()
    if copy:
        copy.close()
    merge.removed |= removed
    merge.opaque |= opaque


def _entry(
    info: tarfile.TarInfo,
    tar: tarfile.TarFile,
    path: str,
    index: int,
    merge: _Merge,
    options: FlattenOptions,
) -> Iterator[bytes]:
    if info.islnk():
        target = clean_path(info.linkname, f"hardlink {path}")
        shown = merge.shown.get(target)
        merge.shown[path] = _Shown(index, tarfile.LNKTYPE)  # claimed here in any case
        if shown is None or shown.layer != index or shown.type != tarfile.REGTYPE:
            merge.links.append(_Link(index, path, target, info))  # written at the end
        else:
            yield _header(info, path, options, linkname=target)
        return
    kind = tarfile.REGTYPE if info.isreg() else info.type
    merge.shown[path] = _Shown(index, kind)
    yield _header(info, path, options)
    if info.isreg() and info.size:
        yield from _content(tar, info)


def _deferred_links(
    store: Store, layers: list[Descriptor], merge: _Merge, options: FlattenOptions
) -> Iterator[bytes]:
    """Hardlinks to a file of a lower layer, or to one an upper layer replaced."""
    copies: dict[tuple[int, str], str] = {}  # (layer, target) -> the path now holding its content
    for link in merge.links:
        shown = merge.shown.get(link.target)
        if shown is not None and shown.layer <= link.layer and shown.type == tarfile.REGTYPE:
            yield _header(link.info, link.path, options, linkname=link.target)
            continue
        key = (link.layer, link.target)
        if key in copies:
            yield _header(link.info, link.path, options, linkname=copies[key])
            continue
        copies[key] = link.path
        yield from _reread(store, layers, link, options)


def _reread(
    store: Store, layers: list[Descriptor], link: _Link, options: FlattenOptions
) -> Iterator[bytes]:
    """The content a hardlink named, from its own layer or the nearest below that has it."""
    for index in reversed(range(link.layer + 1)):
        layer = layers[index]
        what = f"layer {layer.digest}"
        with (
            _verified_blob(store, layer) as blob,
            decompressed(cast(BinaryIO, blob), layer.media_type) as stream,
        ):
            for info, tar in members(stream, what):
                if info.isreg() and clean_path(info.name, what) == link.target:
                    yield _header(info, link.path, options)
                    yield from _content(tar, info)
                    return
    raise LayerError(
        f"layer {layers[link.layer].digest}: hardlink {link.path} -> {link.target}: "
        "no such file in this layer or below"
    )


def _runtime_files(config: ImageConfig, merge: _Merge, mtime: int) -> Iterator[bytes]:
    """The mount points HPC runtimes bind to (only where missing), and Charliecloud's /ch."""

    def is_dir(path: str) -> bool:
        shown = merge.shown.get(path)
        return shown is not None and shown.type == tarfile.DIRTYPE

    for directory in (*MOUNT_DIRS, "etc", "ch"):
        if directory not in merge.shown:
            merge.shown[directory] = _Shown(-1, tarfile.DIRTYPE)
            yield _made(directory, tarfile.DIRTYPE, 0o755, mtime)
    if is_dir("etc"):
        for path in MOUNT_FILES:
            if path not in merge.shown:
                yield _made(path, tarfile.REGTYPE, 0o644, mtime)
    if is_dir("ch"):
        for path, data in (
            (CH_ENVIRONMENT, ch_environment(config)),
            (CH_METADATA, ch_metadata(config)),
        ):
            yield _made(path, tarfile.REGTYPE, 0o644, mtime, len(data))
            yield data + b"\0" * (-len(data) % BLOCK)


def ch_environment(config: ImageConfig) -> bytes:
    """/ch/environment as ch-image writes it: KEY=VALUE lines, sorted by key."""
    env = config.config.env_dict()
    for key, value in env.items():
        if "\n" in key or "\n" in value:
            raise ExportError(
                f"the image's Env {key} holds a line break, which /ch/environment (KEY=VALUE "
                "lines) cannot hold"
            )
    return "".join(f"{k}={v}\n" for k, v in sorted(env.items())).encode()


def ch_metadata(config: ImageConfig) -> bytes:
    """/ch/metadata.json in ch-image's form (Charliecloud's image.py `metadata_save`)."""
    runtime = config.config
    metadata = {
        "arch": config.architecture or "amd64",
        "arg": {},
        "cwd": runtime.working_dir or "/",
        "env": runtime.env_dict(),
        "history": [h.to_json() for h in config.history],
        "labels": dict(runtime.labels),
        "shell": ["/bin/sh", "-c"],
        "volumes": list(runtime.volumes),
    }
    return (json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode()


def _header(
    info: tarfile.TarInfo, path: str, options: FlattenOptions, linkname: str | None = None
) -> bytes:
    out = tarfile.TarInfo(path)
    out.type = tarfile.REGTYPE if info.isreg() else info.type
    out.mode = info.mode
    out.mtime = int(info.mtime)
    out.size = info.size if info.isreg() else 0
    out.linkname = linkname if linkname is not None else info.linkname
    out.devmajor, out.devminor = info.devmajor, info.devminor
    if options.all_root:
        out.uname = out.gname = "root"
    else:
        out.uid, out.gid, out.uname, out.gname = info.uid, info.gid, info.uname, info.gname
    if options.xattrs:
        out.pax_headers = {
            k: v for k, v in info.pax_headers.items() if k.startswith("SCHILY.xattr.")
        }
    return out.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _made(path: str, kind: bytes, mode: int, mtime: int, size: int = 0) -> bytes:
    info = tarfile.TarInfo(path)
    info.type, info.mode, info.mtime, info.size = kind, mode, mtime, size
    info.uname = info.gname = "root"
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _content(tar: tarfile.TarFile, info: tarfile.TarInfo) -> Iterator[bytes]:
    yield from member_content(tar, info, CHUNK)
    if info.size % BLOCK:
        yield b"\0" * (BLOCK - info.size % BLOCK)


class _Copying:
    """A tar stream that sends what is read from it to a copy."""

    def __init__(self, raw: BinaryIO, copy: LayerCopy) -> None:
        self.raw, self.copy = raw, copy

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if data:
            self.copy.write(data)
        return data


def _verified_blob(store: Store, layer: Descriptor) -> VerifiedBlob:
    return store.open_verified(layer.digest, layer.size)
