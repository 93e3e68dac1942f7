"""A wheel file, opened for installing and checked before anything of it is used: its name,
its one `.dist-info` directory, every member path (no absolute paths, no `..`), every member
listed in RECORD with the size the zip declares, and the sizes against the limits on untrusted
archives (a zip bomb is refused from its central directory, before anything is inflated).

Members are read straight from the cached wheel (`zipfile`), never unpacked on disk; each read
is hashed as it streams and checked against RECORD when it ends.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import IO, BinaryIO, cast

from installer.exceptions import InstallerError
from installer.records import Hash, InvalidRecordEntry, RecordEntry, parse_record_file
from installer.sources import WheelFile
from installer.utils import SCHEME_NAMES, parse_metadata_file
from isal import isal_zlib
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from ocibuild.errors import SourceError, UnsafePathError
from ocibuild.layer.entry import check_relative
from ocibuild.limits import MEMBER_SIZE, check_expansion

SIGNATURES = ("RECORD.jws", "RECORD.p7s")


@dataclass(frozen=True)
class Member:
    """One file of a wheel: where it goes (`scheme`, and `path` inside that scheme's
    directory), its zip name, size and RECORD hash."""

    name: str
    scheme: str  # purelib, platlib, headers, scripts, data
    path: str
    size: int
    executable: bool
    hash: Hash | None  # None for signature files (RECORD does not list them)


class WheelArchive:
    """An open wheel: `what` names it in every message (its file name)."""

    def __init__(self, path: Path, filename: str) -> None:
        self.what = filename
        try:
            name, version, _, self.tags = parse_wheel_filename(filename)
        except InvalidWheelFilename as e:
            raise SourceError(f"{filename}: not a wheel file name ({e})") from None
        self.name, self.version = str(name), str(version)
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as e:
            raise SourceError(f"{filename}: not a readable zip archive ({e})") from None
        try:
            self.zip.filename = filename  # what installer's messages name
            self._source = WheelFile(self.zip)
            self.dist_info = self._source.dist_info_dir
            self.data_dir = self._source.data_dir
            self._check_members(path)
            self.wheel_info = self._parse_wheel()
            self.members = self._members()
        except BaseException:
            self.zip.close()
            raise

    def close(self) -> None:
        self.zip.close()

    def __enter__(self) -> WheelArchive:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _check_members(self, path: Path) -> None:
        seen: set[str] = set()
        total = 0
        for info in self.zip.infolist():
            try:
                check_relative(info.filename, "member")
            except UnsafePathError as e:
                raise UnsafePathError(f"{self.what}: {e}") from None
            if info.filename in seen:
                raise SourceError(f"{self.what}: member {info.filename!r} appears twice")
            seen.add(info.filename)
            MEMBER_SIZE.check(info.file_size, f"{self.what}: member {info.filename!r}")
            total += info.file_size
        check_expansion(total, path.stat().st_size, self.what)
        try:
            self._source.validate_record(validate_contents=False)
        except InstallerError as e:
            raise SourceError(f"{self.what}: RECORD disagrees with the wheel: {e}") from None

    def _parse_wheel(self) -> Message:
        info = parse_metadata_file(self.read_dist_info("WHEEL"))
        if not (info["Wheel-Version"] or "").startswith("1."):
            raise SourceError(
                f"{self.what}: unsupported Wheel-Version {info['Wheel-Version']!r} (1.x only)"
            )
        return info

    @property
    def root_scheme(self) -> str:
        return "purelib" if self.wheel_info["Root-Is-Purelib"] == "true" else "platlib"

    def read_dist_info(self, filename: str) -> str:
        try:
            return self._source.read_dist_info(filename)
        except KeyError:
            raise SourceError(f"{self.what}: no {self.dist_info}/{filename}") from None
        except UnicodeDecodeError as e:
            raise SourceError(
                f"{self.what}: {self.dist_info}/{filename} is not UTF-8 ({e})"
            ) from None

    def has_dist_info(self, filename: str) -> bool:
        return filename in self._source.dist_info_filenames

    def _members(self) -> list[Member]:
        record = {
            row[0]: row for row in parse_record_file(self.read_dist_info("RECORD").splitlines())
        }
        members = []
        record_path = f"{self.dist_info}/RECORD"
        for info in self.zip.infolist():
            if info.is_dir() or info.filename == record_path:
                continue
            parts = info.filename.split("/")
            if "__pycache__" in parts[:-1]:
                continue  # compiled for some other Python; installer skips them too
            scheme, path = self.root_scheme, info.filename
            if parts[0] == self.data_dir:
                if len(parts) < 3 or parts[1] not in SCHEME_NAMES:
                    raise SourceError(
                        f"{self.what}: {info.filename} is not in a known .data directory "
                        f"({', '.join(SCHEME_NAMES)})"
                    )
                scheme, path = parts[1], "/".join(parts[2:])
            hash_ = None
            if not (parts[0] == self.dist_info and parts[-1] in SIGNATURES):
                try:
                    entry = RecordEntry.from_elements(*record[info.filename])
                except InvalidRecordEntry as e:
                    raise SourceError(
                        f"{self.what}: RECORD entry of {info.filename} is invalid ({e.issues})"
                    ) from None
                if entry.size != info.file_size:
                    raise SourceError(
                        f"{self.what}: RECORD says {info.filename} has {entry.size} bytes, "
                        f"the zip holds {info.file_size}"
                    )
                hash_ = entry.hash_
            mode = info.external_attr >> 16
            members.append(
                Member(info.filename, scheme, path, info.file_size, bool(mode & 0o111), hash_)
            )
        return members

    def read(self, member: Member) -> bytes:
        with self.open(member) as f:
            return f.read()

    def open(self, member: Member) -> BinaryIO:
        """The member's content, checked against RECORD as it is read to its end."""
        try:
            raw = self.zip.open(member.name)
        except (zipfile.BadZipFile, OSError) as e:
            raise SourceError(f"{self.what}: cannot read {member.name} ({e})") from None
        if raw._compress_type == zipfile.ZIP_DEFLATED:  # type: ignore[attr-defined]
            # ISA-L inflates the same raw deflate stream two to three times as fast as zlib;
            # zipfile still checks the sizes and the CRC
            raw._decompressor = isal_zlib.decompressobj(-15)  # type: ignore[attr-defined]
        return cast(BinaryIO, _Checked(raw, member, self.what))


class _Checked:
    """A member's stream that raises at its end when it is not what RECORD says."""

    def __init__(self, raw: IO[bytes], member: Member, what: str) -> None:
        self.raw = raw
        self.member = member
        self.what = what
        self.hash = hashlib.new(member.hash.name) if member.hash else None
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        try:
            data = self.raw.read(n)
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise SourceError(f"{self.what}: {self.member.name}: {e}") from None
        self.size += len(data)
        if self.hash is not None:
            self.hash.update(data)
            if not data or self.size == self.member.size:
                self._check()
        return data

    def _check(self) -> None:
        assert self.hash is not None and self.member.hash is not None
        digest = base64.urlsafe_b64encode(self.hash.digest()).decode().rstrip("=")
        if self.size != self.member.size or digest != self.member.hash.value:
            raise SourceError(
                f"{self.what}: {self.member.name} does not match its RECORD entry "
                f"({self.member.hash.name} {digest}, {self.size} bytes; RECORD says "
                f"{self.member.hash.value}, {self.member.size} bytes)"
            )
        self.hash = None  # checked once

    def __enter__(self) -> _Checked:
        return self

    def __exit__(self, *_: object) -> None:
        self.raw.close()

    def close(self) -> None:
        self.raw.close()


def read_metadata_from_wheel(path: Path, filename: str) -> bytes:
    """The METADATA of a wheel file (for resolution, where the index serves none apart)."""
    with WheelArchive(path, filename) as archive:
        return archive.read_dist_info("METADATA").encode()
