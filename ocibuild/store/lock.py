"""Advisory file locks: builds share the store, gc and index updates take it alone.

On a read-only store the lock file is opened for reading (flock needs no write access), or,
if it was never made, not taken: nothing can change such a store, so readers need no lock."""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ocibuild.errors import StoreError

READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


@contextmanager
def file_lock(path: Path, shared: bool = False) -> Iterator[None]:
    fd = _open(path)
    if fd is None:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _open(path: Path) -> int | None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        if e.errno not in READ_ONLY:
            raise StoreError(f"cannot lock {path}: {e.strerror}") from None
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StoreError(f"cannot lock {path}: {e.strerror}") from None
