"""Downloaded rpm files -> layer entries: header metadata, cpio payload content."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ocibuild.errors import SourceError
from ocibuild.layer.entry import Entry, Kind
from ocibuild.limits import MEMBER_SIZE
from ocibuild.ospkg.accounts import IdMap
from ocibuild.ospkg.compress import decompressed
from ocibuild.ospkg.cpio import CpioReader, MemberContent
from ocibuild.ospkg.install import (
    PackageFiles,
    PayloadFile,
    claim_paths,
    directory_entries,
    owned_by,
)
from ocibuild.ospkg.rpmfile import RpmFile, RpmHeader, read_header

ACCOUNT_FILES = ("etc/passwd", "etc/group")


@dataclass(frozen=True)
class LocalRpm:
    path: Path
    header: RpmHeader

    @property
    def what(self) -> str:
        return f"rpm {self.header.nevra}"


def read_rpm(path: Path, what: str) -> LocalRpm:
    with open(path, "rb") as f:
        return LocalRpm(path, read_header(f, what))


def payload_files(rpm: LocalRpm, ids: IdMap, unknown: Callable[[str, str], object]) -> PackageFiles:
    """The package's installed files (ghosts are not installed) with numeric owners."""
    files = []
    for f in rpm.header.files:
        if f.ghost:
            continue
        MEMBER_SIZE.check(f.size, f"{rpm.what}: /{f.path}")
        for name, known in ((f.uname, ids.users), (f.gname, ids.groups)):
            if name != "root" and name not in known:
                unknown(name, f.path)
        files.append(
            PayloadFile(
                path=f.path,
                kind=f.kind,
                mode=f.mode,
                uid=ids.uid(f.uname),
                gid=ids.gid(f.gname),
                uname=f.uname,
                gname=f.gname,
                size=f.size if f.kind is Kind.FILE else 0,
                link=f.link if f.kind is Kind.SYMLINK else "",
                digest=f.digest,
                color=f.color,
                devmajor=(f.rdev >> 8) & 0xFF if f.kind in (Kind.CHAR, Kind.BLOCK) else 0,
                devminor=f.rdev & 0xFF if f.kind in (Kind.CHAR, Kind.BLOCK) else 0,
            )
        )
    return PackageFiles(rpm.header.nevra, files)


def shipped_accounts(rpms: Sequence[LocalRpm]) -> IdMap:
    """Users and groups from /etc/passwd and /etc/group that the packages themselves ship
    (CentOS's `setup`), so their files get the right owners in a layer built from scratch."""
    found: dict[str, bytes] = {}
    for rpm in rpms:
        wanted = {f.path for f in rpm.header.files if f.path in ACCOUNT_FILES and not f.ghost}
        if not wanted:
            continue
        for member, content in _members(rpm):
            if member.path in wanted:
                found[member.path] = content.read()
    return IdMap.from_files(found.get("etc/passwd"), found.get("etc/group"))


def layer_entries(
    rpms: Sequence[LocalRpm], ids: IdMap, unknown: Callable[[str, str], object]
) -> Iterator[Entry]:
    """Entries of all packages: their directories first, then each payload in package order."""
    packages = [payload_files(rpm, ids, unknown) for rpm in rpms]
    owners = claim_paths(packages)
    yield from directory_entries(packages, owners)
    for index, (rpm, files) in enumerate(zip(rpms, packages, strict=True)):
        by_path = {f.path: f for f in files.files}
        yield from _payload_entries(rpm, by_path, owned_by(owners, index))


def _members(rpm: LocalRpm) -> Iterator[tuple[RpmFile, MemberContent]]:
    """(header file, content reader) for each payload member, in payload order."""
    header = rpm.header
    by_name = {f.path: f for f in header.files}
    with open(rpm.path, "rb") as f:
        f.seek(header.payload_offset)
        if header.payload_format != "cpio":
            raise SourceError(f"{rpm.what}: unsupported payload format {header.payload_format!r}")
        with decompressed(f, header.payload_compressor, rpm.what) as stream:
            reader = CpioReader(stream, rpm.what, [x.size for x in header.files])
            for member in reader:
                rf = header.files[member.index] if member.index >= 0 else by_name.get(member.name)
                if rf is None:
                    raise SourceError(
                        f"{rpm.what}: payload entry {member.name!r} is not in its header"
                    )
                if member.index < 0 and rf.kind is Kind.FILE and member.size not in (0, rf.size):
                    raise SourceError(
                        f"{rpm.what}: /{rf.path} has {member.size} bytes in the payload, {rf.size} in the header"
                    )
                assert reader.content is not None
                yield rf, reader.content


def _payload_entries(
    rpm: LocalRpm, files: dict[str, PayloadFile], owned: Callable[[str], bool]
) -> Iterator[Entry]:
    header = rpm.header
    sets: dict[tuple[int, int], int] = {}
    for f in header.files:
        if f.kind is Kind.FILE and not f.ghost:
            sets[f.inode] = sets.get(f.inode, 0) + 1
    pending: dict[tuple[int, int], list[PayloadFile]] = {}
    for rf, content in _members(rpm):
        pf = files.get(rf.path)
        if pf is None or pf.kind is Kind.DIR:
            continue
        if pf.kind is Kind.FILE and sets.get(rf.inode, 1) > 1:
            group = pending.setdefault(rf.inode, [])
            group.append(pf)
            if len(group) < sets[rf.inode]:
                continue  # rpm writes a hardlink set's content with its last member
            mine = [p for p in group if owned(p.path)]
            if mine:
                yield mine[0].entry(open=lambda c=content: c)
                for p in mine[1:]:
                    yield p.entry(kind=Kind.HARDLINK, link=mine[0].path, size=0)
            del pending[rf.inode]
            continue
        if not owned(pf.path):
            continue
        yield pf.entry(open=lambda c=content: c) if pf.kind is Kind.FILE else pf.entry()
    if pending:
        paths = ", ".join("/" + p.path for group in pending.values() for p in group)
        raise SourceError(f"{rpm.what}: hardlink set without its content in the payload: {paths}")
