"""A blob being written into the store's blob directory under a temporary name, and the name
it gets once its digest is known."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from ocibuild.oci.digest import Digest


def blob_path(blobs: Path, digest: str) -> Path:
    """Where blob `digest` lives in the blob directory `blobs` (STORE/blobs/sha256)."""
    return blobs / Digest(digest).hex


class PendingBlob:
    """`commit` moves the blob to its digest's name; `keep` leaves it under the temporary name
    for a transaction to publish later."""

    def __init__(self, blobs: Path, file: BinaryIO, tmp: Path) -> None:
        self.blobs, self.file, self.tmp = blobs, file, tmp
        self.done = False

    def commit(self, digest: str) -> Path:
        self._close()
        target = blob_path(self.blobs, digest)
        os.replace(self.tmp, target)
        return target

    def keep(self) -> Path:
        self._close()
        return self.tmp

    def _close(self) -> None:
        self.done = True
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.chmod(self.tmp, 0o644)
