"""What a layer is made of: entries, each a path in the image with its metadata and content."""

from __future__ import annotations

import enum
import hashlib
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

from ocibuild.errors import UnsafePathError

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"


class Kind(enum.Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    CHAR = "char"
    BLOCK = "block"
    FIFO = "fifo"


Opener = Callable[[], BinaryIO]


@dataclass(frozen=True)
class Entry:
    """One path of a layer.

    `path` is relative to the image root, normalized, without a leading slash (`usr/bin/sh`).
    `link` is a symlink's target as written, or a hardlink's target path (image-relative).
    `open` gives the content of a FILE as a binary stream of exactly `size` bytes.
    """

    path: str
    kind: Kind
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    uname: str = ""
    gname: str = ""
    size: int = 0
    link: str = ""
    open: Opener | None = field(default=None, compare=False, repr=False)
    xattrs: Mapping[str, bytes] = field(default_factory=dict)
    devmajor: int = 0
    devminor: int = 0
    source: str = field(default="", compare=False)  # host path the content comes from, if any


def dir_entry(path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Entry:
    return Entry(clean_path(path), Kind.DIR, mode=mode, uid=uid, gid=gid)


def bytes_entry(path: str, data: bytes, mode: int = 0o644, uid: int = 0, gid: int = 0) -> Entry:
    import io

    return Entry(
        clean_path(path),
        Kind.FILE,
        mode=mode,
        uid=uid,
        gid=gid,
        size=len(data),
        open=lambda: io.BytesIO(data),
    )


def symlink_entry(path: str, target: str) -> Entry:
    return Entry(clean_path(path), Kind.SYMLINK, mode=0o777, link=target)


def whiteout_entry(path: str) -> Entry:
    """The OCI whiteout that removes `path` of lower layers."""
    parent, name = posixpath.split(clean_path(path))
    return Entry(posixpath.join(parent, WHITEOUT_PREFIX + name), Kind.FILE, mode=0o644)


@dataclass(frozen=True)
class Whiteout:
    """What a whiteout entry of a layer says: `path` is removed from the layers below, or with
    `opaque`, everything below the directory `path` is."""

    path: str
    opaque: bool


def read_whiteout(path: str) -> Whiteout | None:
    """The whiteout `path` (a clean layer path) stands for, or None for an ordinary entry."""
    parent, name = posixpath.split(path)
    if name == OPAQUE_WHITEOUT:
        return Whiteout(parent, opaque=True)
    if name.startswith(WHITEOUT_PREFIX):
        return Whiteout(posixpath.join(parent, name[len(WHITEOUT_PREFIX) :]), opaque=False)
    return None


def clean_path(path: str, what: str = "path") -> str:
    """Normalize an image path to `a/b/c`; refuse anything that would leave the root.

    Leading slashes are allowed (image paths are absolute by nature); `..` components that climb
    above the root are not.
    """
    if "\x00" in path:
        raise UnsafePathError(f"{what} {path!r} contains a NUL byte")
    parts: list[str] = []
    for part in path.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise UnsafePathError(f"{what} {path!r} escapes the image root")
            parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def check_relative(path: str, what: str = "entry") -> str:
    """Validate a path from an untrusted archive: no absolute paths and no `..` at all."""
    if path.startswith("/"):
        raise UnsafePathError(f"{what} {path!r} is an absolute path")
    if ".." in path.replace("\\", "/").split("/"):
        raise UnsafePathError(f"{what} {path!r} contains '..'")
    return clean_path(path, what)


def content_sha256(entry: Entry) -> str:
    """sha256 of a file entry's content (empty for entries without content)."""
    h = hashlib.sha256()
    if entry.open is not None:
        with entry.open() as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()
