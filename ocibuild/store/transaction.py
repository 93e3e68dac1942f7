"""One image's writes to the store, all or nothing.

Layer blobs are staged under temporary names: readable through the transaction (the layers
above read them as their lower filesystem), absent from the layout. `commit` gives them their
digests' names, remembers them in the layer cache, writes the config and manifest and tags the
image; a transaction left without a commit deletes what it staged.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO, Protocol

from ocibuild.layer.blob import Layer
from ocibuild.oci import Descriptor, ImageConfig, Manifest, MediaType
from ocibuild.oci.formats import in_format
from ocibuild.store.image import StoredImage
from ocibuild.store.pending import PendingBlob


class BlobStore(Protocol):
    """What a transaction needs of the store it writes to (a `Store`, which opens it)."""

    def pending_blob(self) -> AbstractContextManager[PendingBlob]: ...
    def writing(self) -> AbstractContextManager[None]: ...
    def has_blob(self, digest: str) -> bool: ...
    def verified(self, digest: str, size: int | None = None) -> bool: ...
    def open_blob(self, digest: str) -> BinaryIO: ...
    def blob_path(self, digest: str) -> Path: ...
    def put_json(self, media_type: str, data: bytes) -> Descriptor: ...


class Transaction:
    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self._staged: dict[str, Path] = {}
        self._mutex = threading.Lock()

    def write_layer(self, write: Callable[[BinaryIO], Layer]) -> Layer:
        """Stage the layer blob that `write` writes into the file it is given."""
        return self._stage_layer(lambda pending: write(pending.file))

    def write_layer_at(self, write: Callable[[Path], Layer]) -> Layer:
        """Stage the layer blob that `write` writes into the (empty) file at the path it is
        given: another process's writer."""
        return self._stage_layer(lambda pending: write(pending.tmp))

    def _stage_layer(self, write: Callable[[PendingBlob], Layer]) -> Layer:
        layers: list[Layer] = []

        def written(pending: PendingBlob) -> str:
            layers.append(write(pending))
            return layers[0].digest

        self._stage(written)
        return layers[0]

    def stage(self, write: Callable[[BinaryIO], str]) -> str:
        """Stage the blob that `write` writes into the file it is given; `write` returns its
        digest (computed as it wrote)."""
        return self._stage(lambda pending: write(pending.file))

    def _stage(self, write: Callable[[PendingBlob], str]) -> str:
        with self.store.pending_blob() as pending:
            digest = write(pending)
            tmp = pending.keep()
        with self._mutex:
            if digest in self._staged:
                tmp.unlink(missing_ok=True)
            else:  # published over a blob of the store of that name too: it may be corrupt
                self._staged[digest] = tmp
        return digest

    def stage_bytes(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()

        def write(out: BinaryIO) -> str:
            out.write(data)
            return digest

        return self.stage(write)

    def has_blob(self, digest: str) -> bool:
        return digest in self._staged or self.store.has_blob(digest)

    def verified(self, digest: str, size: int | None = None) -> bool:
        """Whether the blob is staged here or in the store intact (`Store.verified`)."""
        return digest in self._staged or self.store.verified(digest, size)

    def open_blob(self, digest: str) -> BinaryIO:
        staged = self._staged.get(digest)
        return open(staged, "rb") if staged else self.store.open_blob(digest)

    def read_blob(self, digest: str) -> bytes:
        with self.open_blob(digest) as f:
            return f.read()

    def publish(self) -> None:
        """Give the staged blobs their digests' names."""
        with self._mutex, self.store.writing():
            for digest, tmp in self._staged.items():
                os.replace(tmp, self.store.blob_path(digest))
            self._staged.clear()

    def commit(
        self,
        ref: str,
        config: ImageConfig,
        layers: Sequence[Descriptor],
        annotations: dict[str, str] | None = None,
        fmt: str = "oci",
    ) -> StoredImage:
        """Publish the staged blobs and write the image's config and manifest, in the family
        `fmt` ("oci", "docker", or "auto": `oci.formats.auto_format`). Naming it
        (`Store.tag_all`) and caching its layers (`State.remember_layers`) is the caller's, once
        for many images: one update of index.json per image made large recipes quadratic."""
        self.publish()
        config_desc = self.store.put_json(MediaType.OCI_CONFIG, config.to_bytes())
        manifest = Manifest(config=config_desc, layers=tuple(layers), annotations=annotations or {})
        manifest = in_format(manifest, fmt)
        descriptor = self.store.put_json(manifest.media_type, manifest.to_bytes())
        return StoredImage(ref, descriptor, manifest, config)

    def discard(self) -> None:
        with self._mutex:
            for tmp in self._staged.values():
                tmp.unlink(missing_ok=True)
            self._staged.clear()
