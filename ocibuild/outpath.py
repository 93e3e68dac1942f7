"""The one policy for writing a path a user gave (`export -o`, `bench report -o`, the docker
config of `login`, a recipe's lock file):

- a regular file, or a new name in an existing directory: replaced atomically (temp + rename);
- a symlink: resolved, and its target replaced atomically (the link stays);
- a character device or a FIFO (`/dev/null`, a named pipe): written through, never replaced;
- a directory, socket or block device: refused;
- a missing parent directory: an error (user paths are never created with `mkdir -p`);
- a path ending with `/` names a directory: never a file, not even an existing one;
- a path inside a store this process opened (`protect`), even through symlinks: refused, so
  that no output replaces a store's `index.json` or one of its blobs.

A path is taken as the user wrote it (a `str`; a `Path` has lost its trailing slash). Every
refusal and every failure to write is an `OutputError`, one line naming the path.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ocibuild.atomicfile import atomic_path, atomic_writer
from ocibuild.errors import OutputError

OutputPath = str | Path  # as given: a trailing "/" says a directory is meant
_protected: set[str] = set()  # real paths of directories no output may be written into

REFUSED = {
    stat.S_IFDIR: "is a directory",
    stat.S_IFSOCK: "is a socket",
    stat.S_IFBLK: "is a block device",
}


@dataclass(frozen=True)
class Target:
    """Where the bytes for `given` go: `path` (symlinks resolved), replaced or written through."""

    given: str
    path: Path
    through: bool  # a character device or FIFO: open and write, no temporary name


def protect(directory: Path) -> None:
    """Refuse every output inside `directory` from now on (a store, once opened)."""
    _protected.add(os.path.realpath(directory))


def _check_unprotected(given: str, path: Path) -> None:
    real = os.path.realpath(path)
    for root in _protected:
        if real == root or real.startswith(root.rstrip("/") + "/"):
            raise OutputError(f"cannot write {given}: it is inside the store {root}")


def outside_stores(given: OutputPath) -> Path:
    """`given` as a path, or an `OutputError` if it is inside a store (for an output that is a
    store of its own, such as podman-hpc's squash directory)."""
    path = Path(given)
    _check_unprotected(str(given), path)
    return path


def output_target(given: OutputPath) -> Target:
    """Apply the policy to `given`: where to write, or an `OutputError` saying why not."""
    text = str(given)
    named = Path(text)
    path = Path(os.path.realpath(named)) if named.is_symlink() else named
    _check_unprotected(text, path)
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None
    except OSError as e:
        raise OutputError(f"cannot write {text}: {e.strerror or e}") from None
    if text.endswith("/") and (mode is None or stat.S_IFMT(mode) != stat.S_IFDIR):
        what = "does not exist" if mode is None else "is not a directory"
        raise OutputError(
            f"cannot write {text}: a path ending with / names a directory, and this one {what}"
        )
    if mode is None:
        parent = path.parent
        if not parent.is_dir():
            what = "is not a directory" if parent.exists() else "does not exist"
            raise OutputError(f"cannot write {text}: directory {parent} {what}")
        return Target(text, path, through=False)
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFLNK:
        raise OutputError(f"cannot write {text}: too many levels of symbolic links")
    if kind in REFUSED:
        raise OutputError(f"cannot write {text}: {REFUSED[kind]}")
    return Target(text, path, through=kind in (stat.S_IFCHR, stat.S_IFIFO))


@contextmanager
def output_file(given: OutputPath, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A file to write `given` by the policy; complete (renamed, or flushed to the device)
    when the block ends without an error."""
    target = output_target(given)
    try:
        if target.through:
            with open(target.path, "wb") as f:
                yield f
        else:
            with atomic_writer(target.path, mode, create_parent=False) as f:
                yield f
    except OSError as e:
        raise OutputError(f"cannot write {given}: {_reason(e, target.path)}") from None


def _reason(e: OSError, path: Path) -> str:
    """Why a write failed; a temporary name beside the target that cannot be made says so
    (`/proc/version` is a file, but /proc takes no new one)."""
    name = Path(str(e.filename)).name if e.filename else ""
    if name.startswith(f".{path.name}.") and name.endswith(".tmp"):
        return f"cannot create a file in {path.parent} ({e.strerror})"
    return e.strerror or str(e)


def write_output(given: OutputPath, data: bytes, mode: int = 0o644) -> None:
    with output_file(given, mode) as f:
        f.write(data)


@contextmanager
def output_name(given: OutputPath, mode: int = 0o644) -> Iterator[Path]:
    """A name for another program to write `given` at: a temporary name renamed to the
    target (with `mode`) on success, or the device or FIFO itself."""
    target = output_target(given)
    if target.through:
        yield target.path
        return
    try:
        with atomic_path(target.path, create_parent=False, mode=mode) as tmp:
            yield tmp
    except OSError as e:
        raise OutputError(f"cannot write {given}: {_reason(e, target.path)}") from None


def output_directory(given: OutputPath) -> Path:
    """Where to put the directory `given` (symlinks resolved): it must not exist, or be an
    empty directory, and its parent must exist."""
    named = Path(given)
    path = Path(os.path.realpath(named)) if named.is_symlink() else named
    _check_unprotected(str(given), path)
    if path.is_dir():
        if any(path.iterdir()):
            raise OutputError(f"cannot write {given}: a directory that is not empty")
        return path
    if os.path.lexists(path):
        raise OutputError(f"cannot write {given}: exists and is not an empty directory")
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {given}: directory {path.parent} does not exist")
    return path


def output_report_dir(given: OutputPath) -> Path:
    """A directory to write files into (`bench report -o DIR`): made if missing, but only
    when its parent exists."""
    named = Path(given)
    path = Path(os.path.realpath(named)) if named.is_symlink() else named
    _check_unprotected(str(given), path)
    if path.is_dir():
        return path
    if os.path.lexists(path):
        raise OutputError(f"cannot write into {given}: exists and is not a directory")
    if not path.parent.is_dir():
        raise OutputError(f"cannot write into {given}: directory {path.parent} does not exist")
    try:
        path.mkdir()
    except OSError as e:
        raise OutputError(f"cannot write into {given}: {e.strerror or e}") from None
    return path
