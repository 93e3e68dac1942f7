"""Wheels -> the entries of one layer, installed as pip installs them, streamed.

Each wheel's files go where the binary distribution format puts them: the archive root into
purelib or platlib (`Root-Is-Purelib`), `.data/<scheme>/` into that scheme's directory, console
and GUI entry points as scripts (PyPA `installer`'s template) naming the image's interpreter,
`#!python` scripts of `.data/scripts` given that interpreter; `INSTALLER`, `REQUESTED` for
what the recipe named, and `RECORD` rewritten (`installer`'s writer) with every file the layer
installs for the wheel.

Members stream from the cached wheel into the tar, checked against RECORD as they go. Module
sources are read once, ahead of the tar by a bounded window, and sent to the compiler; each
`.py` is followed in the layer by its pyc, and each wheel's files end with its RECORD, so the
layer's order is fixed by the wheels' contents alone (wheels by name, files by path).
"""

from __future__ import annotations

import base64
import collections
import hashlib
import io
import posixpath
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from installer.records import Hash, RecordEntry
from installer.scripts import InvalidScript, Script
from installer.utils import Scheme as SchemeName
from installer.utils import construct_record_file, parse_entrypoints
from packaging.utils import canonicalize_name
from packaging.version import Version

from ocibuild.errors import SourceError
from ocibuild.layer.entry import Entry, Kind, clean_path
from ocibuild.layer.tarstream import path_key
from ocibuild.python.bytecode import Compiler, cache_tag
from ocibuild.python.wheel import Member, WheelArchive

INSTALLER = b"ocibuild\n"
SCRIPT_NAME = re.compile(r"[A-Za-z0-9_.+-][A-Za-z0-9_.+ -]*")
WINDOW = 64 << 20  # bytes of module sources read ahead of the tar, waiting for their pycs
LIB_SCHEMES = ("purelib", "platlib")


@dataclass(frozen=True)
class Scheme:
    """Image paths (relative, no leading slash) of an installation scheme; `headers` is the
    directory holding one directory per distribution."""

    purelib: str
    platlib: str
    headers: str
    scripts: str
    data: str

    def directory(self, scheme: str, dist_name: str) -> str:
        if scheme == "headers":
            return f"{self.headers}/{dist_name}"
        return str(getattr(self, scheme))


def system_scheme(version: str, debian: bool) -> Scheme:
    """`/usr/local` as the image's pip would install there: Debian's `dist-packages`, or
    `site-packages` elsewhere."""
    site = f"usr/local/lib/python{version}/{'dist' if debian else 'site'}-packages"
    return Scheme(site, site, f"usr/local/include/python{version}", "usr/local/bin", "usr/local")


def venv_scheme(venv: str, version: str) -> Scheme:
    root = clean_path(venv, "target")
    site = f"{root}/lib/python{version}/site-packages"
    return Scheme(site, site, f"{root}/include/site/python{version}", f"{root}/bin", root)


@dataclass(frozen=True)
class WheelToInstall:
    path: Path  # the cached file
    filename: str
    name: str  # as resolved (METADATA's spelling)
    version: str
    requested: bool


@dataclass(frozen=True)
class Target:
    """Where and for which Python: scheme, the shebang's interpreter, the pyc tag."""

    scheme: Scheme
    interpreter: str
    version: tuple[int, int]


@dataclass
class _File:
    """One file the layer installs for a wheel."""

    path: str  # image path
    scheme: str
    relative: str  # inside the scheme's directory, for RECORD
    mode: int
    member: Member | None = None  # streamed from the wheel
    data: bytes | None = None  # made here (scripts, metadata) or rewritten
    compile: bool = False
    hash: Hash | None = None
    size: int = 0


@dataclass
class _Planned:
    wheel: WheelToInstall
    archive: WheelArchive
    files: list[_File] = field(default_factory=list)
    record_path: str = ""
    record_scheme: str = ""
    pyc_version: tuple[int, int] = (3, 0)


def plan_wheel(wheel: WheelToInstall, target: Target, compile: bool) -> _Planned:
    """Open a wheel and list what installing it writes (no member content read but the
    scripts of `.data/scripts`)."""
    archive = WheelArchive(wheel.path, wheel.filename)
    try:
        if archive.name != canonicalize_name(wheel.name) or Version(archive.version) != Version(
            wheel.version
        ):
            raise SourceError(f"{wheel.filename}: not {wheel.name} {wheel.version}")
        planned = _Planned(wheel, archive, pyc_version=target.version)
        scheme_of = target.scheme
        for member in archive.members:
            directory = scheme_of.directory(member.scheme, wheel.name)
            path = clean_path(f"{directory}/{member.path}")
            mode = 0o755 if member.executable else 0o644
            item = _File(
                path,
                member.scheme,
                member.path,
                mode,
                member=member,
                hash=member.hash,
                size=member.size,
            )
            if member.scheme == "scripts":
                content = archive.read(member)
                if content.startswith(b"#!python"):
                    rest = content.split(b"\n", 1)[1] if b"\n" in content else b""
                    item.data = f"#!{target.interpreter}\n".encode() + rest
                    item.member, item.hash, item.size = None, _hash(item.data), len(item.data)
            elif member.scheme in LIB_SCHEMES and compile and member.path.endswith(".py"):
                item.compile = True
            planned.files.append(item)
        root = archive.root_scheme
        site = scheme_of.directory(root, wheel.name)
        for name, data in _entry_point_scripts(archive, target.interpreter):
            planned.files.append(
                _File(
                    f"{scheme_of.scripts}/{name}",
                    "scripts",
                    name,
                    0o755,
                    data=data,
                    hash=_hash(data),
                    size=len(data),
                )
            )
        extra = {"INSTALLER": INSTALLER}
        if wheel.requested:
            extra["REQUESTED"] = b""
        for name, data in extra.items():
            relative = f"{archive.dist_info}/{name}"
            planned.files.append(
                _File(
                    f"{site}/{relative}",
                    root,
                    relative,
                    0o644,
                    data=data,
                    hash=_hash(data),
                    size=len(data),
                )
            )
        planned.record_path = f"{site}/{archive.dist_info}/RECORD"
        planned.record_scheme = root
        planned.files.sort(key=lambda f: path_key(f.path))
        return planned
    except BaseException:
        archive.close()
        raise


def _hash(data: bytes) -> Hash:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")
    return Hash("sha256", digest)


def _entry_point_scripts(archive: WheelArchive, interpreter: str) -> list[tuple[str, bytes]]:
    if not archive.has_dist_info("entry_points.txt"):
        return []
    text = archive.read_dist_info("entry_points.txt")
    out = []
    try:
        for name, module, attr, section in parse_entrypoints(text):
            if not SCRIPT_NAME.fullmatch(name) or name in (".", ".."):
                raise SourceError(
                    f"{archive.what}: entry point script name {name!r} is not a file name"
                )
            out.append(Script(name, module, attr, section).generate(interpreter, "posix"))
    except (AssertionError, ValueError, InvalidScript) as e:
        raise SourceError(f"{archive.what}: entry_points.txt is malformed ({e})") from None
    return out


def find_overlaps(planned: Sequence[_Planned]) -> dict[str, list[tuple[_Planned, _File]]]:
    """Paths more than one wheel installs."""
    by_path: dict[str, list[tuple[_Planned, _File]]] = collections.defaultdict(list)
    for p in planned:
        for f in p.files:
            by_path[f.path].append((p, f))
        by_path[p.record_path].append((p, _File(p.record_path, "", "", 0)))
    return {path: found for path, found in by_path.items() if len(found) > 1}


def installed_paths(planned: Sequence[_Planned]) -> Iterator[tuple[str, str]]:
    """(image path, wheel file name) of every file the planned wheels install."""
    for p in planned:
        for f in p.files:
            yield f.path, p.wheel.filename
            if f.compile:
                yield _pyc_path(f.path, p.pyc_version), p.wheel.filename
        yield p.record_path, p.wheel.filename


def check_wheel_overlaps(planned: Sequence[_Planned]) -> set[tuple[str, str]]:
    """Files two wheels install: the same content is installed once (the first wheel's, by
    name); different content is an error naming both wheels. Returns (wheel file, path) of
    the copies left out."""
    skipped = set()
    for path, found in find_overlaps(planned).items():
        (first, first_file), *others = found
        for other, other_file in others:
            same = (
                first_file.hash is not None
                and first_file.hash == other_file.hash
                and first_file.size == other_file.size
                and first_file.mode == other_file.mode
            )
            if not same:
                raise SourceError(
                    f"file conflict: /{path} is in both {first.wheel.filename} and "
                    f"{other.wheel.filename} with different content"
                )
            skipped.add((other.wheel.filename, path))
    return skipped


def install_entries(
    planned: Sequence[_Planned],
    target: Target,
    compiler: Compiler | None,
    skipped: set[tuple[str, str]],
) -> Iterator[Entry]:
    """The layer's entries for the planned wheels, in their fixed order; every archive is
    closed at the end (or on error)."""
    reader = _SourceReader(planned, target, compiler, skipped)
    try:
        for p in planned:
            records: list[tuple[SchemeName, RecordEntry]] = []
            for f in p.files:
                if (p.wheel.filename, f.path) in skipped:
                    continue
                if f.compile:
                    source, pyc = reader.next(f.path)
                    yield _bytes_entry(f.path, source, f.mode)
                    records.append(_record(f))
                    data = pyc.result()
                    if data:
                        pyc_path = _pyc_path(f.path, target.version)
                        yield _bytes_entry(pyc_path, data, 0o644)
                        relative = _pyc_path(f.relative, target.version)
                        records.append(
                            (SchemeName(f.scheme), RecordEntry(relative, _hash(data), len(data)))
                        )
                    continue
                if f.member is not None:
                    yield _member_entry(p.archive, f)
                else:
                    assert f.data is not None
                    yield _bytes_entry(f.path, f.data, f.mode)
                records.append(_record(f))
            yield _bytes_entry(p.record_path, _record_file(p, target, records), 0o644)
            p.archive.close()
    finally:
        reader.stop()
        for p in planned:
            p.archive.close()


def _record(f: _File) -> tuple[SchemeName, RecordEntry]:
    return SchemeName(f.scheme), RecordEntry(f.relative, f.hash, f.size)


def _record_file(
    p: _Planned, target: Target, records: list[tuple[SchemeName, RecordEntry]]
) -> bytes:
    site = target.scheme.directory(p.record_scheme, p.wheel.name)
    relative_record = posixpath.relpath(p.record_path, site)
    rows = [*records, (SchemeName(p.record_scheme), RecordEntry(relative_record, None, None))]

    def prefix(scheme: SchemeName) -> str | None:
        directory = target.scheme.directory(scheme, p.wheel.name)
        if directory == site:
            return None
        return posixpath.relpath(directory, site) + "/"

    with construct_record_file(rows, prefix) as stream:
        return stream.read()


def _pyc_path(source: str, version: tuple[int, int]) -> str:
    directory, name = posixpath.split(source)
    pyc = f"__pycache__/{name[:-3]}.{cache_tag(version)}.pyc"
    return f"{directory}/{pyc}" if directory else pyc


def _bytes_entry(path: str, data: bytes, mode: int) -> Entry:
    return Entry(path, Kind.FILE, mode=mode, size=len(data), open=lambda: io.BytesIO(data))


def _member_entry(archive: WheelArchive, f: _File) -> Entry:
    member = f.member
    assert member is not None
    return Entry(
        f.path, Kind.FILE, mode=f.mode, size=member.size, open=lambda: archive.open(member)
    )


class _SourceReader:
    """Reads the module sources to compile, in the layer's order, ahead of the tar (at most
    WINDOW bytes waiting), and hands each with its pyc's future."""

    def __init__(
        self,
        planned: Sequence[_Planned],
        target: Target,
        compiler: Compiler | None,
        skipped: set[tuple[str, str]],
    ) -> None:
        self._ready: collections.deque[tuple[str, bytes, Future[bytes]] | BaseException] = (
            collections.deque()
        )
        self._waiting = 0
        self._cond = threading.Condition()
        self._stopped = False
        jobs = [
            (p.archive, f)
            for p in planned
            for f in p.files
            if f.compile and (p.wheel.filename, f.path) not in skipped
        ]
        if not jobs:
            return
        if compiler is None:
            raise ValueError("sources to compile but no compiler")
        self._thread = threading.Thread(
            target=self._read, args=(jobs, target, compiler), name="pyc-sources", daemon=True
        )
        self._thread.start()

    def _read(
        self, jobs: list[tuple[WheelArchive, _File]], target: Target, compiler: Compiler
    ) -> None:
        for archive, f in jobs:
            with self._cond:
                while self._waiting > WINDOW and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
            try:
                assert f.member is not None
                source = archive.read(f.member)
            except BaseException as e:  # handed to the tar, which raises it
                with self._cond:
                    self._ready.append(e)
                    self._cond.notify_all()
                return
            future = compiler.submit("/" + f.path, source)
            with self._cond:
                self._ready.append((f.path, source, future))
                self._waiting += len(source)
                self._cond.notify_all()

    def next(self, path: str) -> tuple[bytes, Future[bytes]]:
        with self._cond:
            while not self._ready:
                self._cond.wait()
            item = self._ready.popleft()
            if isinstance(item, BaseException):
                raise item
            got, source, future = item
            self._waiting -= len(source)
            self._cond.notify_all()
        assert got == path, (got, path)
        return source, future

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()


def layer_entries(
    wheels: Sequence[WheelToInstall],
    target: Target,
    compiler_for: Callable[[], Compiler] | None,
    check: Callable[[Sequence[_Planned]], None] = lambda _: None,
) -> Iterator[Entry]:
    """Plan every wheel, check the plan (`check`: overlaps with lower layers), then stream
    the entries; `compiler_for` starts the bytecode compiler (None: no pycs)."""
    planned: list[_Planned] = []
    try:
        for wheel in sorted(wheels, key=lambda w: (w.name.lower(), w.filename)):
            planned.append(plan_wheel(wheel, target, compiler_for is not None))
        skipped = check_wheel_overlaps(planned)
        check(planned)
    except BaseException:
        for p in planned:
            p.archive.close()
        raise
    if compiler_for is None:
        yield from install_entries(planned, target, None, skipped)
        return
    with compiler_for() as compiler:
        yield from install_entries(planned, target, compiler, skipped)
