"""Reading a file a user named (a recipe, its lock file, a docker config): only a regular file
is read. A FIFO would block the build forever and `/dev/zero` would fill memory; both are refused
before a byte is read."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
}


class NotRegularFileError(OSError):
    """A named input that is not a regular file (its `strerror` says what it is)."""


def open_regular_file(path: Path) -> BinaryIO:
    """`path` opened for reading (symlinks followed), or OSError; NotRegularFileError if it is
    not a regular file. Opened without blocking, so a FIFO with no writer cannot hang the
    caller, and a device is refused before a byte is read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    f = os.fdopen(fd, "rb")
    kind = stat.S_IFMT(os.fstat(fd).st_mode)
    if kind != stat.S_IFREG:
        f.close()
        raise NotRegularFileError(
            errno.EINVAL, f"not a regular file but {KINDS.get(kind, 'a special file')}", str(path)
        )
    os.set_blocking(fd, True)
    return f


def read_regular_file(path: Path, limit: int | None = None) -> bytes:
    """The bytes of `path` (at most `limit`), read only if it is a regular file
    (`open_regular_file`)."""
    with open_regular_file(path) as f:
        return f.read() if limit is None else f.read(limit)
