"""A flattened image tar stream -> an unpacked root filesystem directory.

The directory is filled under a temporary name beside the target and renamed when complete.
Owners are kept when running as root; no entry may land outside the directory, not even
through a symlink of the image; device nodes are left out and set-uid/set-gid bits cleared
unless asked for (`HostSafety`); trees of any depth are made and removed without recursion.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ocibuild.errors import ExportError
from ocibuild.layer.reader import open_stream
from ocibuild.outpath import OutputPath, output_directory

CHUNK = 1 << 20
SETID = stat.S_ISUID | stat.S_ISGID


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


@dataclass
class HostSafety:
    """What a directory export may create on the host: device nodes only with `devices`,
    set-uid and set-gid bits of files only with `keep_setid` (both dangerous: a hostile image's
    `/dev/mem` or set-uid shell would be there for anyone who can reach the directory; the
    set-gid bit of a directory only hands its group down, and stays). It counts what it left
    out."""

    devices: bool = False
    keep_setid: bool = False
    dropped_devices: int = 0
    cleared_setid: int = 0


def _member_filter(
    safety: HostSafety,
) -> Callable[[tarfile.TarInfo, str], tarfile.TarInfo | None]:
    reals: dict[str, _RealPaths] = {}

    def policy(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
        name = os.path.normpath(member.name).lstrip("/")
        if name in ("", ".") or name == ".." or name.startswith("../"):
            raise ExportError(f"/{member.name}: not a path inside the image")
        real = reals.setdefault(dest, _RealPaths(dest))
        _inside(member, real)
        if member.issym():
            real.forget()  # a new symlink may change how paths below it resolve
        if (member.ischr() or member.isblk()) and not safety.devices:
            safety.dropped_devices += 1
            return None
        if member.mode & SETID and not member.isdir() and not safety.keep_setid:
            safety.cleared_setid += 1
            member = member.replace(mode=member.mode & ~SETID, deep=False)
        _make_parents(dest, member.name)
        return member

    return policy


class _RealPaths:
    """Where paths below `dest` really are, symlinks followed, each directory resolved once
    from its parent's answer (os.path.realpath of every member would cost the tree's depth in
    system calls each: quadratic in a deep tree)."""

    def __init__(self, dest: str) -> None:
        self.root = os.path.realpath(dest)
        self.known: dict[str, str] = {"": self.root}

    def forget(self) -> None:
        self.known = {"": self.root}

    def of(self, path: str) -> str:
        path = os.path.normpath(path).lstrip("/")
        path = "" if path == "." else path
        missing = []
        while path not in self.known:
            missing.append(path)
            path = os.path.dirname(path)
        real = self.known[path]
        for path in reversed(missing):
            candidate = os.path.join(real, os.path.basename(path))
            real = os.path.realpath(candidate) if os.path.islink(candidate) else candidate
            self.known[path] = real
        return real


def _inside(member: tarfile.TarInfo, real: _RealPaths) -> None:
    """Refuse a member that would land outside the directory, through a symlink of the image
    (or a hardlink to a file outside)."""
    root = real.root
    paths = [member.name, member.linkname] if member.islnk() else [member.name]
    for path in paths:
        resolved = real.of(path)
        if resolved != root and not resolved.startswith(root.rstrip("/") + "/"):
            raise ExportError(
                f"/{member.name}: would be written outside the image, through a symlink"
            )


def _make_parents(dest: str, name: str) -> None:
    """The directories above `name`, made one by one from the top (tarfile would make them by
    recursion, which a tree deeper than Python's recursion limit breaks)."""
    parent = os.path.dirname(name.rstrip("/"))
    missing = []
    while parent and not os.path.isdir(os.path.join(dest, parent)):
        missing.append(parent)
        parent = os.path.dirname(parent)
    for directory in reversed(missing):
        os.mkdir(os.path.join(dest, directory), 0o755)


def remove_tree(path: Path) -> None:
    """`rm -rf path` with a stack, not recursion (shutil.rmtree recurses per level)."""
    if not path.is_dir() or path.is_symlink():
        path.unlink(missing_ok=True)
        return
    stack = [str(path)]
    while stack:
        directory = stack[-1]
        with os.scandir(directory) as entries:
            subdirectories = []
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    subdirectories.append(entry.path)
                else:
                    os.unlink(entry.path)
        if subdirectories:
            stack.extend(subdirectories)
        else:
            os.rmdir(directory)
            stack.pop()


def write_rootdir(
    tar_chunks: Iterable[bytes], output: OutputPath, safety: HostSafety | None = None
) -> HostSafety:
    """Unpack a tar stream into the directory `output`, which must not exist or be empty (a
    symlink to such a directory is followed); its parent must exist. What it leaves out or
    changes for the host's sake (`HostSafety`) is counted in what it returns."""
    safety = safety or HostSafety()
    output = output_directory(output)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent))
    try:
        reader = io.BufferedReader(_ChunkReader(tar_chunks), CHUNK)
        try:
            with open_stream(reader) as tar:
                tar.extractall(tmp, numeric_owner=True, filter=_member_filter(safety))
        except tarfile.TarError as e:
            raise ExportError(
                f"cannot write {output}: the image's tree is not readable ({e})"
            ) from None
        tmp.chmod(0o755)
        if output.exists():
            output.rmdir()
        tmp.rename(output)
    except BaseException:
        with contextlib.suppress(OSError):
            remove_tree(tmp)
        raise
    return safety
