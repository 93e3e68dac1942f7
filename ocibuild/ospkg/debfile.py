"""The .deb format: an `ar` archive of `debian-binary`, `control.tar.*` and `data.tar.*`."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, cast

from ocibuild.errors import SourceError
from ocibuild.layer.entry import Entry, Kind, check_relative
from ocibuild.layer.reader import DECODE_ERRORS, each_member, open_stream
from ocibuild.layer.safepath import check_tar_member
from ocibuild.limits import check_expansion
from ocibuild.ospkg.compress import compression_of, decompressed
from ocibuild.ospkg.cpio import MemberContent
from ocibuild.ospkg.deb822 import paragraphs
from ocibuild.ospkg.debindex import check_control_names
from ocibuild.ospkg.install import PackageFiles, PayloadFile

AR_MAGIC = b"!<arch>\n"
AR_HEADER = 60
INSTALL_SCRIPTS = ("preinst", "postinst", "config", "triggers")
_KINDS = {
    tarfile.REGTYPE: Kind.FILE,
    tarfile.AREGTYPE: Kind.FILE,
    tarfile.DIRTYPE: Kind.DIR,
    tarfile.SYMTYPE: Kind.SYMLINK,
    tarfile.LNKTYPE: Kind.HARDLINK,
    tarfile.CHRTYPE: Kind.CHAR,
    tarfile.BLKTYPE: Kind.BLOCK,
    tarfile.FIFOTYPE: Kind.FIFO,
}


@dataclass(frozen=True)
class ArMember:
    name: str
    offset: int
    size: int


@dataclass(frozen=True)
class DebArchive:
    path: Path
    what: str
    control: dict[str, str]
    control_files: dict[str, bytes]  # md5sums, conffiles, maintainer scripts, ...
    data: ArMember

    @property
    def conffiles(self) -> list[str]:
        text = self.control_files.get("conffiles", b"").decode(errors="replace")
        return [line.strip() for line in text.splitlines() if line.strip().startswith("/")]

    @property
    def install_scripts(self) -> tuple[str, ...]:
        return tuple(name for name in INSTALL_SCRIPTS if name in self.control_files)


def ar_members(f: BinaryIO, what: str) -> list[ArMember]:
    """The members of an ar archive; a member size is believed only if it is decimal digits
    and the member fits in the file (a size of -60 would step back onto its own header)."""
    if f.read(len(AR_MAGIC)) != AR_MAGIC:
        raise SourceError(f"{what}: not a .deb (ar) archive")
    end = os.fstat(f.fileno()).st_size
    members: list[ArMember] = []
    offset = len(AR_MAGIC)
    while True:
        header = f.read(AR_HEADER)
        if not header:
            return members
        if len(header) != AR_HEADER or header[58:60] != b"`\n":
            raise SourceError(f"{what}: corrupt ar member header at byte {offset}")
        text = header[48:58].strip()
        size = int(text) if text.isdigit() else -1
        if size < 0 or offset + AR_HEADER + size > end:
            raise SourceError(
                f"{what}: corrupt ar member size {text.decode('ascii', 'replace')!r} at byte "
                f"{offset} (the archive has {end} bytes)"
            )
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        members.append(ArMember(name, offset + AR_HEADER, size))
        offset += AR_HEADER + size + (size % 2)
        f.seek(offset)


@contextmanager
def _tar(f: BinaryIO, member: ArMember, what: str) -> Iterator[tarfile.TarFile]:
    f.seek(member.offset)
    window = MemberContent(f, member.size, what)
    with decompressed(window, compression_of(member.name), f"{what} {member.name}") as stream:  # type: ignore[arg-type]
        try:
            with open_stream(stream) as tar:
                yield tar
            # past tar's end-of-archive blocks, to the end: checks the compressed tail (CRC)
            drained = 0
            while chunk := stream.read(1 << 20):
                drained += len(chunk)
                check_expansion(drained, member.size, f"{what} {member.name}")
        except DECODE_ERRORS as e:
            raise SourceError(f"{what}: {member.name} is not a readable tar ({e})") from None


def read_deb(path: Path, what: str) -> DebArchive:
    with open(path, "rb") as f:
        members = {m.name: m for m in ar_members(f, what)}
        control_member = next((m for n, m in members.items() if n.startswith("control.tar")), None)
        data_member = next((m for n, m in members.items() if n.startswith("data.tar")), None)
        if control_member is None or data_member is None:
            raise SourceError(f"{what}: a .deb needs control.tar and data.tar members")
        control_files: dict[str, bytes] = {}
        with _tar(f, control_member, what) as tar:
            for info in tar:
                name = info.name.removeprefix("./")
                if info.isfile() and "/" not in name and name:
                    stream = tar.extractfile(info)
                    control_files[name] = stream.read() if stream else b""
    if "control" not in control_files:
        raise SourceError(f"{what}: control.tar has no control file")
    found = list(paragraphs(control_files.pop("control").decode("utf-8", "replace").splitlines()))
    if not found or "Package" not in found[0]:
        raise SourceError(f"{what}: malformed control file")
    try:
        check_control_names(found[0])
    except ValueError as e:
        raise SourceError(f"{what}: control file: {e}") from None
    return DebArchive(path, what, found[0], control_files, data_member)


def _members(deb: DebArchive) -> Iterator[tuple[PayloadFile, tarfile.TarFile, tarfile.TarInfo]]:
    with open(deb.path, "rb") as f, _tar(f, deb.data, deb.what) as tar:
        unpacked = 0
        for info in each_member(tar):
            check_tar_member(info, deb.what)
            unpacked += 512 + info.size
            check_expansion(unpacked, deb.data.size, deb.what)
            path = check_relative(info.name.removeprefix("./"), f"{deb.what}: payload entry")
            if not path:
                continue
            kind = _KINDS.get(info.type)
            if kind is None:
                raise SourceError(f"{deb.what}: /{path} has an unsupported tar type {info.type!r}")
            link = ""
            if kind is Kind.SYMLINK:
                link = info.linkname
            elif kind is Kind.HARDLINK:
                link = check_relative(
                    info.linkname.removeprefix("./"), f"{deb.what}: hardlink target"
                )
            yield (
                PayloadFile(
                    path=path,
                    kind=kind,
                    mode=info.mode & 0o7777,
                    uid=info.uid,
                    gid=info.gid,
                    uname=info.uname,
                    gname=info.gname,
                    size=info.size if kind is Kind.FILE else 0,
                    link=link,
                    devmajor=info.devmajor,
                    devminor=info.devminor,
                ),
                tar,
                info,
            )


@dataclass(frozen=True)
class DebListing:
    files: PackageFiles
    paths: list[str]  # in archive order, for dpkg's info/<package>.list
    conffile_md5: dict[str, str]
    file_md5: dict[str, str]  # other regular files, for info/<package>.md5sums if it has none


def list_deb(deb: DebArchive, label: str) -> DebListing:
    """One pass over data.tar: every path, with a content digest of each regular file."""
    files: list[Any] = []
    paths: list[str] = []
    md5s: dict[str, str] = {}
    conffile_md5s: dict[str, str] = {}
    conffiles = {c.lstrip("/") for c in deb.conffiles}
    for pf, tar, info in _members(deb):
        paths.append(pf.path)
        if pf.kind is Kind.FILE:
            sha, md5 = hashlib.sha256(), hashlib.md5()
            stream = _content(tar, info, deb.what)
            while chunk := stream.read(1 << 20):
                sha.update(chunk)
                md5.update(chunk)
            pf = replace(pf, digest=sha.hexdigest())
            (conffile_md5s if pf.path in conffiles else md5s)[pf.path] = md5.hexdigest()
        files.append(pf)
    return DebListing(PackageFiles(label, files), paths, conffile_md5s, md5s)


def data_entries(deb: DebArchive, owned: Callable[[str], bool]) -> Iterator[Entry]:
    """Non-directory entries of data.tar that this package installs, in archive order."""
    for pf, tar, info in _members(deb):
        if pf.kind is Kind.DIR or not owned(pf.path):
            continue
        if pf.kind is Kind.FILE:
            yield pf.entry(open=lambda t=tar, i=info: _content(t, i, deb.what))
        else:
            yield pf.entry()


class _Content(io.RawIOBase):
    """A member's content, read where the consumer reads it (outside `_tar`'s `with`): an
    archive that ends inside it is a SourceError naming the package, not tarfile's error."""

    def __init__(self, tar: tarfile.TarFile, info: tarfile.TarInfo, what: str) -> None:
        self.file, self.what, self.name = tar.extractfile(info), what, info.name

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.file is None:
            return b""
        try:
            return self.file.read(size)
        except DECODE_ERRORS as e:
            raise SourceError(f"{self.what}: data.tar ends inside {self.name} ({e})") from None

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _content(tar: tarfile.TarFile, info: tarfile.TarInfo, what: str) -> BinaryIO:
    return cast(BinaryIO, _Content(tar, info, what))
