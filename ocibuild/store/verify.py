"""A store blob checked against its name: every byte read is hashed, and the blob is what its
digest says or the reader raises, naming the blob (and the image it was read for).

The store's blobs are verified whenever they leave it or are reused: read whole (manifests,
configs: `Store.read_blob`), streamed out (exports of every format, the flattened root
filesystem, a base image's layers read as the lower filesystem) through `VerifiedBlob`, and
before an upload, a layer cache hit, a base layer's reuse or a pull skipping a blob it has
(`Store.verified`)."""

from __future__ import annotations

import hashlib
from typing import BinaryIO

from ocibuild.errors import DigestMismatchError

CHUNK = 1 << 20


def mismatch(digest: str, actual: str, size: int, expected: int | None, where: str) -> str:
    """The message for a blob that is not what its name says."""
    sizes = f"{size} bytes" + (f", {expected} expected" if expected not in (None, size) else "")
    return f"blob {digest} {where}is corrupt: its content has digest {actual} ({sizes})"


class VerifiedBlob:
    """A blob of the store as a readable file that hashes what is read; `finish()` reads the
    rest and raises DigestMismatchError unless the whole is `digest` (and `size`, if given).
    `where` says where it is, for the message (`in the store STORE `)."""

    def __init__(
        self, raw: BinaryIO, digest: str, size: int | None = None, where: str = ""
    ) -> None:
        self.raw, self.digest, self.expected, self.where = raw, digest, size, where
        self.sha = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        """`n` bytes (all with -1), fewer only at the end; at the end of a blob shorter than
        its size, a DigestMismatchError rather than the reader's own failure."""
        data = self.raw.read(n)
        while 0 < len(data) < n and (more := self.raw.read(n - len(data))):
            data += more
        self.sha.update(data)
        self.size += len(data)
        if len(data) < n and self.expected is not None and self.size < self.expected:
            self.finish()
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.raw.close()

    def finish(self) -> None:
        while data := self.raw.read(CHUNK):
            self.sha.update(data)
            self.size += len(data)
        actual = f"sha256:{self.sha.hexdigest()}"
        if actual != self.digest or self.expected not in (None, self.size):
            raise DigestMismatchError(
                mismatch(self.digest, actual, self.size, self.expected, self.where)
            )

    def __enter__(self) -> VerifiedBlob:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
