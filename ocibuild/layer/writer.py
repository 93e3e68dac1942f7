"""The one pass: entries -> tar (hashed: diff_id) -> compressor -> blob (hashed: digest)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO

from ocibuild.layer.codec import Compression, compressor
from ocibuild.layer.entry import Entry
from ocibuild.layer.tarstream import tar_stream
from ocibuild.oci.digest import Digest


@dataclass(frozen=True)
class LayerBlob:
    digest: Digest
    size: int
    diff_id: Digest
    tar_size: int
    media_type: str
    entries: int


class HashingWriter:
    """Counts and hashes what passes through to `sink`."""

    def __init__(self, sink: BinaryIO) -> None:
        self.sink = sink
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.sink.write(data)

    def flush(self) -> None:
        self.sink.flush()

    @property
    def digest(self) -> Digest:
        return Digest("sha256:" + self.hash.hexdigest())

    # what compressors probe for on the file they write to
    def writable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return False

    def close(self) -> None:
        pass


def write_layer(
    entries: Iterable[Entry],
    sink: BinaryIO,
    compression: Compression,
    mtime: int = 0,
    progress: Callable[[int], None] | None = None,
) -> LayerBlob:
    """Write the layer of `entries` into `sink`; `progress` gets the tar bytes written so far."""
    blob = HashingWriter(sink)
    tar_hash = hashlib.sha256()
    tar_size = 0
    count = 0

    def counted(_: Entry) -> None:
        nonlocal count
        count += 1

    with compressor(blob, compression) as out:  # type: ignore[arg-type]
        for chunk in tar_stream(entries, mtime, on_entry=counted):
            tar_hash.update(chunk)
            out.write(chunk)
            tar_size += len(chunk)
            if progress:
                progress(tar_size)
    blob.flush()
    return LayerBlob(
        digest=blob.digest,
        size=blob.size,
        diff_id=Digest("sha256:" + tar_hash.hexdigest()),
        tar_size=tar_size,
        media_type=compression.media_type,
        entries=count,
    )
