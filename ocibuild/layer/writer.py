"""The one pass: entries -> tar (hashed: diff_id) -> compressor -> blob (hashed: digest).

A producer thread assembles the tar (reading files releases the GIL) while this thread hashes
and feeds the compressor, whose own threads compress; chunks are batched to about 1 MiB and the
queue between the two is bounded, so memory stays flat whatever the layer's size.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from ocibuild.compression import Compression
from ocibuild.cputime import stage
from ocibuild.errors import Cancelled
from ocibuild.layer.blob import Layer
from ocibuild.layer.codec import compressor
from ocibuild.layer.entry import Entry
from ocibuild.layer.tarstream import tar_stream
from ocibuild.oci.digest import Digest

BATCH = 1 << 20
QUEUE_DEPTH = 8


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


def batched(chunks: Iterable[bytes], size: int = BATCH) -> Iterator[bytes]:
    buffer = bytearray()
    for chunk in chunks:
        if not buffer and len(chunk) >= size:
            yield chunk
            continue
        buffer += chunk
        if len(buffer) >= size:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def _in_thread(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Iterate `chunks` in a producer thread, through a bounded queue."""
    pipe: queue.Queue[bytes | BaseException | None] = queue.Queue(QUEUE_DEPTH)
    stop = threading.Event()

    def produce() -> None:
        try:
            with stage("tar"):
                _produce()
        except BaseException as e:  # handed to the consumer, which re-raises it
            pipe.put(e)

    def _produce() -> None:
        for chunk in chunks:
            while not stop.is_set():
                try:
                    pipe.put(chunk, timeout=0.2)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return
        pipe.put(None)

    thread = threading.Thread(target=produce, name="tar-producer", daemon=True)
    thread.start()
    try:
        while (item := pipe.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def write_layer(
    entries: Iterable[Entry],
    sink: BinaryIO,
    compression: Compression,
    mtime: int = 0,
    progress: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
) -> Layer:
    """Write the layer of `entries` into `sink`; `progress` gets the tar bytes written so far.
    Once `cancel` is set, the writing stops at the next chunk (about 1 MiB) with `Cancelled`."""
    blob = HashingWriter(sink)
    tar_hash = hashlib.sha256()
    tar_size = 0
    count = 0

    def counted(_: Entry) -> None:
        nonlocal count
        count += 1

    with compressor(blob, compression) as out:  # type: ignore[arg-type]
        for chunk in _in_thread(batched(tar_stream(entries, mtime, on_entry=counted))):
            if cancel is not None and cancel.is_set():
                raise Cancelled("layer abandoned")
            with stage("hash"):
                tar_hash.update(chunk)
                out.write(chunk)
            tar_size += len(chunk)
            if progress:
                progress(tar_size)
    blob.flush()
    return Layer(
        digest=blob.digest,
        size=blob.size,
        diff_id=Digest("sha256:" + tar_hash.hexdigest()),
        tar_size=tar_size,
        media_type=compression.media_type,
        entries=count,
    )
