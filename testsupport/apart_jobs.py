"""Jobs for `ocibuild.layer.apart`'s tests: picklable, importable in the writer's process."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from ocibuild.errors import SourceError
from ocibuild.layer.entry import Entry, bytes_entry


def file_entries(files: int) -> list[Entry]:
    return [bytes_entry(f"f{i}", bytes(range(256)) * (i + 1)) for i in range(files)]


@dataclass
class Files:
    """`files` files; its outcome is the process it ran in and a limit as that process saw it."""

    files: int

    def entries(self) -> list[Entry]:
        return file_entries(self.files)

    def outcome(self) -> tuple[int, str | None]:
        return os.getpid(), os.environ.get("OCIBUILD_MAX_MEMBER_SIZE")


@dataclass
class Refused:
    """Raises the one-line error a source raises for a bad tarball, after a first entry."""

    def entries(self) -> Iterator[Entry]:
        yield bytes_entry("first", b"1")
        raise SourceError("zlib@1.2.13/vptum3y: member etc/evil is outside the package prefix")

    def outcome(self) -> None:
        return None


class _Unpicklable(Exception):
    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"{detail} ({code})")


@dataclass
class RaisesUnpicklable:
    def entries(self) -> list[Entry]:
        raise _Unpicklable(3, "a reader's own error")

    def outcome(self) -> None:
        return None


@dataclass
class Dies:
    def entries(self) -> list[Entry]:
        os._exit(7)

    def outcome(self) -> None:
        return None


@dataclass
class Sleeps:
    """Writes its pid to `pid_file`, then sleeps: the build must end it."""

    pid_file: str

    def entries(self) -> Iterator[Entry]:
        with open(self.pid_file, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)
        yield bytes_entry("never", b"")

    def outcome(self) -> None:
        return None
