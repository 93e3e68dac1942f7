"""An image of the store written into podman-hpc's squash store as a successful
`podman-hpc migrate` leaves it (`ocibuild export REF --format podman-hpc -o SQUASH_DIR`;
removal: store/podmanhpcrmi.py).

The export writes, in an order that keeps the store whole for podman at every instant:

1. per layer: `overlay/<id>/{diff,work,merged}`, its `link` file and the `l/<LINK>` symlink;
2. the image's squashfs, of the layers alone (whiteouts applied, owners and modes kept, nothing
   added: podman takes Env, Cmd, User and WorkingDir from the config), at
   `overlay/l/<LINK of the top layer>.squash`; images with the same layers share it. Each
   layer's tar-split comes from the same read of its tar, in a thread (a layer is decompressed
   once), checked against the config's diff id; all of these under temporary names renamed
   into place;
3. the image's big-data directory (the config, the manifest under both keys, no signatures);
4. under the stores' locks (store/cstorage.py): the layer records it lacks, the names taken
   from any other image that held them (one name, one image), the image record added or its
   names merged. Nothing changes when all of it is there already.

A killed export leaves at most pieces no record points at, which podman never reads and the
next export reuses. What is there is kept: a layer's link (migrate's random one too), its
record, a squash made by migrate.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, cast

from ocibuild.atomicfile import atomic_write_bytes, atomic_writer
from ocibuild.errors import DigestMismatchError, ExportError
from ocibuild.layer.reader import decompressed
from ocibuild.layer.tarsplit import TarFacts, tar_split
from ocibuild.oci import Descriptor
from ocibuild.oci.mediatypes import layer_compression
from ocibuild.progress import Message, Reporter, silent
from ocibuild.store.cstorage import (
    COMPRESSION,
    Record,
    Records,
    SquashDir,
    big_data_name,
    checkpoint,
    derived_link,
    go_time,
    layer_ids,
    locked_records,
    names_of,
    now,
    open_squash_dir,
    read_records,
)
from ocibuild.store.flatten import FlattenOptions, created_epoch, flat_tar
from ocibuild.store.image import StoredImage
from ocibuild.store.layout import Store
from ocibuild.store.squashfs import SquashfsOptions, write_squashfs

# The squash podman-hpc's migrate makes is lz4 (mksquashfs -comp lz4): fast to make and to read.
DEFAULT_COMPRESSION = "lz4"
TAR_SPLIT_LEVEL = 1  # ISA-L's gzip levels are 0-3
ATTEMPTS = 3  # a concurrent removal may take what the export found: then it writes again
QUEUED_CHUNKS = 8  # of a layer's copy, between the flattening and its tar-split's thread
HANDOVER = 1 << 20  # bytes of the copy put in the queue at once


@dataclass(frozen=True)
class _Layer:
    id: str
    parent: str | None
    descriptor: Descriptor
    diff_id: str


@dataclass(frozen=True)
class PodmanHpcExport:
    """What an export did: the image's id, its top layer, where its squash is, and whether the
    store changed at all (a re-export of an image with its names there changes nothing)."""

    image_id: str
    top_layer: str
    squash: Path
    names: tuple[str, ...]
    changed: bool


def export_podman_hpc(
    store: Store,
    image: StoredImage,
    root: Path,
    names: list[str],
    squashfs: SquashfsOptions,
    report: Reporter = silent,
) -> PodmanHpcExport:
    """Write `image` into the squash store at `root` under `names` (full references)."""
    if not names:
        raise ExportError(
            f"{image.ref} has no name to give it in podman-hpc's store: give --tag NAME"
        )
    config_digest = image.manifest.config.digest
    config = _verified(store, config_digest, "config")
    manifest = _verified(store, image.descriptor.digest, "manifest")
    diff_ids = [str(d) for d in image.config.diff_ids]
    if len(diff_ids) != len(image.manifest.layers) or not diff_ids:
        raise ExportError(
            f"{image.ref}: {len(image.manifest.layers)} layers but {len(diff_ids)} diff ids in "
            "its config; podman-hpc needs at least one layer, each with its diff id"
        )
    ids = layer_ids(diff_ids)
    layers = [
        _Layer(layer_id, ids[i - 1] if i else None, descriptor, diff_ids[i])
        for i, (layer_id, descriptor) in enumerate(zip(ids, image.manifest.layers, strict=True))
    ]
    squash = open_squash_dir(root)
    image_id = config_digest.hex
    big_data = _big_data(config_digest, config, str(image.descriptor.digest), manifest)
    record = _image_record(image, image_id, layers[-1].id, big_data)
    options = replace(squashfs, mtime=created_epoch(image.config))
    for _ in range(ATTEMPTS):
        facts = _write_pieces(store, image, squash, layers, options, image_id, big_data, report)
        with locked_records(squash) as records:
            checkpoint("locked")
            if _pieces_missing(squash, layers, image_id, big_data) or any(
                records.layer(layer.id) is None and layer.id not in facts for layer in layers
            ):
                continue  # taken by a removal since they were written: write them again
            _add_layers(records, layers, facts)
            _add_image(records, record, names)
            changed = records.commit()
        top_link = squash.link_of(layers[-1].id) or derived_link(layers[-1].id)
        return PodmanHpcExport(
            image_id, layers[-1].id, squash.squash(top_link), tuple(names), changed
        )
    raise ExportError(f"{root}: its images kept being removed while {image.ref} was written")


def _verified(store: Store, digest: str, what: str) -> bytes:
    data = store.read_blob(digest)
    if f"sha256:{hashlib.sha256(data).hexdigest()}" != digest:
        raise DigestMismatchError(f"the store's {what} blob {digest} does not match its digest")
    return data


def _big_data(
    config_digest: str, config: bytes, manifest_digest: str, manifest: bytes
) -> list[tuple[str, bytes]]:
    """The image's big-data items, in the order containers/image stores them."""
    return [
        (config_digest, config),
        (f"manifest-{manifest_digest}", manifest),
        ("manifest", manifest),
        (f"signature-{manifest_digest.removeprefix('sha256:')}", b""),
    ]


def _image_record(
    image: StoredImage, image_id: str, top: str, big_data: list[tuple[str, bytes]]
) -> Record:
    digest = str(image.descriptor.digest)
    return {
        "id": image_id,
        "digest": digest,
        "names": [],
        "names-history": [],
        "layer": top,
        "metadata": json.dumps({"signatures-sizes": {digest: []}}, separators=(",", ":")),
        "big-data-names": [key for key, _ in big_data],
        "big-data-sizes": {key: len(data) for key, data in big_data},
        "big-data-digests": {
            key: f"sha256:{hashlib.sha256(data).hexdigest()}" for key, data in big_data
        },
        "created": go_time(image.config.created or "") or now(),
    }


# -- pieces no record points at yet ------------------------------------------------------------------


def _write_pieces(
    store: Store,
    image: StoredImage,
    squash: SquashDir,
    layers: list[_Layer],
    options: SquashfsOptions,
    image_id: str,
    big_data: list[tuple[str, bytes]],
    report: Reporter,
) -> dict[str, TarFacts]:
    """Every file the records will point at, where missing; the tar facts of the layers the
    store has no record of (their records are made from them). When the squash is made, the
    tar-splits come from the same read of the layers."""
    known = read_records(squash)
    wanted = {
        layer.id
        for layer in layers
        if known.layer(layer.id) is None or not squash.tar_split(layer.id).exists()
    }
    links = [_write_layer_dir(squash, layer) for layer in layers]
    checkpoint("layers")
    target = squash.squash(links[-1])
    facts: dict[str, TarFacts] = {}
    if target.exists():
        for number, layer in enumerate(layers, 1):
            if layer.id in wanted:
                report(Message(f"podman-hpc: tar-split of layer {number}/{len(layers)}"))
                facts[layer.id] = _TarSplitter(store, squash, layer).finish()
    else:
        splits: dict[str, _TarSplitter] = {}

        def tap(index: int) -> _TarSplitter | None:
            layer = layers[index]
            if layer.id in wanted:
                splits[layer.id] = _TarSplitter(store, squash, layer, threaded=True)
            return splits.get(layer.id)

        report(Message(f"podman-hpc: squashfs of {image.ref} ({options.compression})"))
        flat = flat_tar(store, image, FlattenOptions(runtime_files=False), tap)
        try:
            write_squashfs(_stopping(flat, "squash"), target, options)
            facts = {layer_id: split.finish() for layer_id, split in splits.items()}
        finally:
            for split in splits.values():
                split.abandon()
    _write_big_data(squash, image_id, big_data)
    checkpoint("big-data")
    return facts


def _stopping(chunks: Iterator[bytes], name: str) -> Iterator[bytes]:
    """The chunks, with the kill tests' checkpoint after the first."""
    for index, chunk in enumerate(chunks):
        yield chunk
        if index == 0:
            checkpoint(name)


class _TarSplitter:
    """A layer's tar-split, written under a temporary name and renamed into place once its tar
    matched the diff id: read from the layer's blob (`finish`), or, `threaded`, from the copy
    of the tar the flattening sends it (`write`, `close`) in a thread of its own."""

    def __init__(
        self, store: Store, squash: SquashDir, layer: _Layer, threaded: bool = False
    ) -> None:
        self.store, self.squash, self.layer = store, squash, layer
        self.chunks: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=QUEUED_CHUNKS)
        self.held: list[bytes] = []  # the writer's, until a MiB is there
        self.held_bytes = 0
        self.reading: collections.deque[bytes] = collections.deque()  # the reader's
        self.stopped = threading.Event()  # the thread failed, or was abandoned
        self.result: TarFacts | BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True) if threaded else None
        if self.thread:
            self.thread.start()

    def write(self, data: bytes, /) -> int:
        """Handed over a MiB at a time: fewer hand-overs, fewer waits for the GIL."""
        self.held.append(data)
        self.held_bytes += len(data)
        if self.held_bytes >= HANDOVER:
            self._hand_over()
        return len(data)

    def close(self) -> None:
        self._hand_over()
        if not self.stopped.is_set():
            self.chunks.put(None)

    def _hand_over(self) -> None:
        if self.held and not self.stopped.is_set():
            self.chunks.put(self.held)
        self.held, self.held_bytes = [], 0

    def read(self, n: int = -1) -> bytes:
        """The copy's next chunk, as the flattening read it; b"" at its end."""
        while not self.reading:
            chunks = self.chunks.get()
            if chunks is None:
                return b""
            self.reading = collections.deque(chunks)
        return self.reading.popleft()

    def _run(self) -> None:
        try:
            self.result = self._split(cast(BinaryIO, self))
        except BaseException as e:  # raised by finish(), in the exporting thread
            self.result = e
            self.stopped.set()  # no more writes; one blocked on a full queue gets room:
            with contextlib.suppress(queue.Empty):
                while True:
                    self.chunks.get_nowait()

    def _split(self, stream: BinaryIO) -> TarFacts:
        from isal import igzip

        layer = self.layer
        what = f"layer {layer.descriptor.digest}"
        with (
            atomic_writer(self.squash.tar_split(layer.id), 0o644, create_parent=False) as out,
            igzip.GzipFile(fileobj=out, mode="wb", compresslevel=TAR_SPLIT_LEVEL, mtime=0) as gz,
        ):
            # a layer this store built was hashed as it was written: its tar's digest is known
            known = self.store.state.diff_id(str(layer.descriptor.digest))
            facts = tar_split(stream, gz, what, known)
            if facts.digest != layer.diff_id:
                raise DigestMismatchError(
                    f"{what} does not verify: its tar has {facts.digest}, the config's diff id "
                    f"is {layer.diff_id}"
                )
        return facts

    def finish(self) -> TarFacts:
        if self.thread is None:
            with (
                self.store.open_blob(self.layer.descriptor.digest) as blob,
                decompressed(blob, self.layer.descriptor.media_type) as stream,
            ):
                return self._split(stream)
        self.thread.join()
        if isinstance(self.result, BaseException):
            raise self.result
        assert self.result is not None
        return self.result

    def abandon(self) -> None:
        """After a failure elsewhere: end the thread (its temporary file goes with it)."""
        if self.thread is not None and self.thread.is_alive():
            self.stopped.set()
            self.chunks.put(None)
            self.thread.join()


def _write_layer_dir(squash: SquashDir, layer: _Layer) -> str:
    """overlay/<id>/{diff,work,merged} (+ empty under the base layer), the link and its
    symlink; a link already there (migrate's, or another export's) is kept. The link."""
    directory = squash.layer_dir(layer.id)
    directory.mkdir(mode=0o755, exist_ok=True)
    for sub in ("diff", "work", "merged") + (() if layer.parent else ("empty",)):
        (directory / sub).mkdir(mode=0o755, exist_ok=True)
    link = squash.link_of(layer.id)
    if link is None:
        link = derived_link(layer.id)
        atomic_write_bytes(directory / "link", link.encode())
    symlink = squash.links / link
    if not os.path.lexists(symlink):
        temporary = squash.links / f".{link}.{os.getpid()}.tmp"
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(f"../{layer.id}/diff")
        os.replace(temporary, symlink)
    return link


def _write_big_data(squash: SquashDir, image_id: str, big_data: list[tuple[str, bytes]]) -> None:
    """Each file replaced whole: a directory left by rmsqi or a killed export may hold an
    older manifest of the same config."""
    directory = squash.image_dir(image_id)
    directory.mkdir(mode=0o755, exist_ok=True)
    for key, data in big_data:
        path = directory / big_data_name(key)
        if not _holds(path, data):
            atomic_write_bytes(path, data)


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except FileNotFoundError:
        return False


def _pieces_missing(
    squash: SquashDir, layers: list[_Layer], image_id: str, big_data: list[tuple[str, bytes]]
) -> bool:
    for layer in layers:
        link = squash.link_of(layer.id)
        if (
            link is None
            or not (squash.layer_dir(layer.id) / "diff").is_dir()
            or not (squash.links / link).is_symlink()
            or not squash.tar_split(layer.id).exists()
        ):
            return True
    top_link = squash.link_of(layers[-1].id)
    return (
        top_link is None
        or not squash.squash(top_link).exists()
        or not all(
            (squash.image_dir(image_id) / big_data_name(key)).exists() for key, _ in big_data
        )
    )


# -- records ------------------------------------------------------------------------------------------


def _add_layers(records: Records, layers: list[_Layer], facts: dict[str, TarFacts]) -> None:
    """Records of the layers the store lacks; those there are kept as they are (migrate's)."""
    for layer in layers:
        if records.layer(layer.id) is None:
            records.layers.append(_layer_record(layer, facts[layer.id]))
            records.layers_changed = True


def _layer_record(layer: _Layer, facts: TarFacts) -> Record:
    record: Record = {"id": layer.id}
    if layer.parent:
        record["parent"] = layer.parent
    record |= {
        "created": now(),
        "compressed-diff-digest": str(layer.descriptor.digest),
        "compressed-size": layer.descriptor.size,
        "diff-digest": facts.digest,
        "diff-size": facts.size,
    }
    compression = COMPRESSION[layer_compression(layer.descriptor.media_type)]
    if compression:
        record["compression"] = compression
    if facts.uids:
        record["uidset"] = list(facts.uids)
        record["gidset"] = list(facts.gids)
    return record


def _add_image(records: Records, new: Record, names: list[str]) -> None:
    """The image's record with `names`, each taken from any other image holding it (a name on
    two images makes every podman command fail); names and history merged as migrate merges
    them (its `drop_tag` and `upsert_image`)."""
    image_id = new["id"]
    for other in records.images:
        held = names_of(other, "names")
        if other.get("id") != image_id and any(n in held for n in names):
            other["names"] = [n for n in held if n not in names]
            records.images_changed = True
    existing = records.image(str(image_id))
    if existing is None:
        records.images.append(new | {"names": names, "names-history": names[::-1]})
        records.images_changed = True
        return
    held, history = names_of(existing, "names"), names_of(existing, "names-history")
    merged = held + [n for n in names if n not in held]
    merged_history = history + [n for n in names if n not in history]
    if merged != held or merged_history != history:
        existing["names"], existing["names-history"] = merged, merged_history
        records.images_changed = True
