"""A flattened image tar stream -> an unpacked root filesystem directory.

The directory is filled under a temporary name beside the target and renamed when complete.
Owners are kept when running as root; no entry may land outside the directory, not even
through a symlink of the image.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ocibuild.errors import ExportError
from ocibuild.outpath import output_directory

CHUNK = 1 << 20


class _ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = iter(chunks)
        self.pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self.pending:
            try:
                self.pending = memoryview(next(self.chunks))
            except StopIteration:
                return 0
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


def _inside(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    root = os.path.realpath(dest)
    paths = [member.name, member.linkname] if member.islnk() else [member.name]
    for path in paths:
        resolved = os.path.realpath(os.path.join(dest, path))
        if os.path.commonpath([root, resolved]) != root:
            raise ExportError(
                f"/{member.name}: would be written outside the image, through a symlink"
            )
    return member


def write_rootdir(tar_chunks: Iterable[bytes], output: Path) -> None:
    """Unpack a tar stream into the directory `output`, which must not exist or be empty (a
    symlink to such a directory is followed); its parent must exist."""
    output = output_directory(output)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent))
    try:
        reader = io.BufferedReader(_ChunkReader(tar_chunks), CHUNK)
        with tarfile.open(fileobj=reader, mode="r|", bufsize=CHUNK) as tar:
            tar.extractall(tmp, numeric_owner=True, filter=_inside)
        tmp.chmod(0o755)
        if output.exists():
            output.rmdir()
        tmp.rename(output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
