"""containers/storage's overlay store, as podman-hpc's squash store holds it (podman reads it as
an `additionalimagestore`; docs/podman-hpc-layout.md is the measured spec):

    SQUASH_DIR/overlay-images/images.json, images.lock, <image-id>/<big-data files>
    SQUASH_DIR/overlay-layers/layers.json, layers.lock, <layer-id>.tar-split.gz
    SQUASH_DIR/overlay/<layer-id>/{diff,work,merged,link}, overlay/l/<LINK> -> ../<layer-id>/diff
    SQUASH_DIR/overlay/l/<LINK of the top layer>.squash              the image's squashfs

The records are changed the way containers/storage changes them, so podman (which reads them
under shared POSIX locks) and another writer never see half of a change: POSIX (fcntl) write
locks on layers.lock then images.lock, both JSON files re-read under them, each replaced by a
temporary file renamed over it, layers before images, then a new last-writer id in each lock
file. podman-hpc's own `migrate` and `rmsqi` take no lock and write in place.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from ocibuild.atomicfile import atomic_write_bytes
from ocibuild.errors import ExportError
from ocibuild.jsonread import read_json

Record = dict[str, object]  # one JSON object of images.json or layers.json, kept whole

LINK_LENGTH = 26  # the overlay driver's generateID(26): base32 characters
LAST_WRITER_BYTES = 64
COMPRESSION = {"none": None, "bzip2": 1, "gzip": 2, "xz": 3, "zstd": 4}  # c/storage's enum


@dataclass(frozen=True)
class SquashDir:
    root: Path

    @property
    def images_dir(self) -> Path:
        return self.root / "overlay-images"

    @property
    def layers_dir(self) -> Path:
        return self.root / "overlay-layers"

    @property
    def overlay(self) -> Path:
        return self.root / "overlay"

    @property
    def links(self) -> Path:
        return self.overlay / "l"

    @property
    def images_json(self) -> Path:
        return self.images_dir / "images.json"

    @property
    def layers_json(self) -> Path:
        return self.layers_dir / "layers.json"

    def image_dir(self, image_id: str) -> Path:
        return self.images_dir / _checked(image_id, ID, "an image id")

    def layer_dir(self, layer_id: str) -> Path:
        return self.overlay / _checked(layer_id, ID, "a layer id")

    def tar_split(self, layer_id: str) -> Path:
        return self.layers_dir / f"{_checked(layer_id, ID, 'a layer id')}.tar-split.gz"

    def squash(self, link: str) -> Path:
        return self.links / f"{_checked(link, LINK, 'a link name')}.squash"

    def link_of(self, layer_id: str) -> str | None:
        """The layer's link name as its `link` file says, or None."""
        path = self.layer_dir(layer_id) / "link"
        try:
            return _checked(path.read_text().strip(), LINK, f"the link name in {path}")
        except (FileNotFoundError, NotADirectoryError):
            return None


ID = re.compile(r"[0-9a-f]{64}")
LINK = re.compile(r"[A-Z0-9]{1,64}")  # the overlay driver's: base32 of random bytes


def _checked(name: str, pattern: re.Pattern[str], what: str) -> str:
    """`name`, which becomes a path in the store: what another writer left there must not
    name a path outside it."""
    if not pattern.fullmatch(name):
        raise ExportError(f"{name[:80]!r} is not {what}: this squash store was tampered with")
    return name


def open_squash_dir(root: Path) -> SquashDir:
    """The squash store at `root`, made (as podman-hpc's `init_storage` makes it) when `root`
    is missing or an empty directory; anything else that is not one is refused."""
    squash = SquashDir(root)
    if not root.parent.is_dir():
        raise ExportError(f"cannot write {root}: directory {root.parent} does not exist")
    if root.exists() and not root.is_dir():
        raise ExportError(f"cannot write {root}: not a directory")
    if root.is_dir() and any(root.iterdir()) and not squash.images_dir.is_dir():
        raise ExportError(
            f"{root} is not a podman-hpc squash store (no overlay-images/): give its squash "
            "directory (podman-hpc's --squash-dir, $SQUASH_DIR, else $SCRATCH/storage) or a new one"
        )
    for directory in (root, squash.overlay, squash.links, squash.images_dir, squash.layers_dir):
        directory.mkdir(mode=0o755, exist_ok=True)
    for path in (squash.images_json, squash.layers_json):
        if not path.exists():
            _create_json(path)
    for path in (_lock_path(squash.images_json), _lock_path(squash.layers_json)):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644))
    return squash


def _create_json(path: Path) -> None:
    """`[]`, unless another writer made the file meanwhile (linked, never replaced)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b"[]")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)


def _lock_path(json_path: Path) -> Path:
    return json_path.with_suffix(".lock")


# -- ids and names --------------------------------------------------------------------------------


def layer_ids(diff_ids: list[str]) -> list[str]:
    """containers/image's layer ids: the first layer's diff id, then each next one
    sha256(parent id + "+" + diff id hex) (not the OCI chain id)."""
    ids: list[str] = []
    for diff_id in diff_ids:
        hex_id = diff_id.removeprefix("sha256:")
        ids.append(hashlib.sha256(f"{ids[-1]}+{hex_id}".encode()).hexdigest() if ids else hex_id)
    return ids


def derived_link(layer_id: str) -> str:
    """A link name of the overlay driver's form made from the layer id, so that every export of
    a layer (two at once too) names it alike."""
    digest = hashlib.sha256(f"ocibuild podman-hpc link {layer_id}".encode()).digest()
    return base64.b32encode(digest).decode()[:LINK_LENGTH]


def big_data_name(key: str) -> str:
    """containers/storage's file name for a big-data key (makeBigDataBaseName)."""
    if all(c == "." or c.isdigit() or "a" <= c <= "z" for c in key) and key.isascii():
        return key
    return "=" + base64.b64encode(key.encode()).decode()


_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", re.I)


def go_time(text: str) -> str | None:
    """An RFC 3339 time as Go's time.Time marshals it (fraction without trailing zeros, at most
    nanoseconds; `Z` for a zero offset), or None when `text` is not one."""
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        return None
    moment, fraction, zone = match.groups()
    fraction = (fraction or "")[:9].rstrip("0")
    zone = "Z" if zone.upper() in ("Z", "+00:00", "-00:00") else zone
    return moment.upper() + (f".{fraction}" if fraction else "") + zone


def now() -> str:
    """The current time as containers/storage records a layer's `created` (UTC, nanoseconds)."""
    stamp = datetime.now(UTC)
    fraction = f"{stamp.microsecond:06d}".rstrip("0")
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


# -- records ----------------------------------------------------------------------------------------


@dataclass
class Records:
    """Both JSON files as read (under the locks, from `locked_records`); `commit` writes back
    what changed."""

    images: list[Record]
    layers: list[Record]
    images_changed: bool = False
    layers_changed: bool = False
    squash: SquashDir | None = field(default=None, repr=False)
    locks: tuple[int, ...] = field(default=(), repr=False)

    def layer(self, layer_id: str) -> Record | None:
        return next((r for r in self.layers if r.get("id") == layer_id), None)

    def image(self, image_id: str) -> Record | None:
        return next((r for r in self.images if r.get("id") == image_id), None)

    def commit(self) -> bool:
        """Write what changed, layers first (an image record never points at a layer that is
        not recorded yet); whether anything was."""
        assert self.squash is not None and self.locks, "commit needs the locks"
        if self.layers_changed:
            write_json(self.squash.layers_json, self.layers)
            checkpoint("layers-json")
        if self.images_changed:
            write_json(self.squash.images_json, self.images)
            checkpoint("images-json")
        if not (self.layers_changed or self.images_changed):
            return False
        for fd in self.locks:  # containers/storage's Touch(): long-lived readers reload
            os.pwrite(fd, os.urandom(LAST_WRITER_BYTES), 0)
        self.layers_changed = self.images_changed = False
        return True


def names_of(record: Record, key: str) -> list[str]:
    """A record's `names` or `names-history`, whatever another writer left there."""
    value = record.get(key)
    return [n for n in value if isinstance(n, str)] if isinstance(value, list) else []


def read_records(squash: SquashDir) -> Records:
    """Both JSON files, read without a lock (for planning: what is read under the locks
    decides)."""
    return Records(_read_json(squash.images_json), _read_json(squash.layers_json))


def _read_json(path: Path) -> list[Record]:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return []
    if not text.strip():
        return []  # what podman reads as no records
    try:
        data = read_json(text, str(path))
    except ValueError as e:
        raise ExportError(
            f"{path}: not valid JSON ({e}); a half-written file? (podman-hpc's migrate and rmsqi "
            "write it in place, without locks) nothing was changed"
        ) from None
    if not isinstance(data, list) or not all(isinstance(r, dict) and "id" in r for r in data):
        raise ExportError(f"{path}: not a list of records with ids; nothing was changed")
    return cast(list[Record], data)


@contextmanager
def locked_records(squash: SquashDir) -> Iterator[Records]:
    """Both JSON files read under POSIX write locks (layers.lock, then images.lock: one order
    for every writer), held until the block ends; the block commits what it changes."""
    with ExitStack() as stack:
        locks = []
        for json_path in (squash.layers_json, squash.images_json):
            path = _lock_path(json_path)
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as e:
                raise ExportError(f"cannot lock {path}: {e.strerror}") from None
            stack.callback(os.close, fd)
            fcntl.lockf(fd, fcntl.LOCK_EX)  # POSIX, as podman's shared locks: not flock
            locks.append(fd)
        records = read_records(squash)
        yield replace(records, squash=squash, locks=tuple(locks))


def write_json(path: Path, records: list[Record]) -> None:
    try:
        atomic_write_bytes(path, json.dumps(records, separators=(",", ":")).encode())
    except OSError as e:
        raise ExportError(f"cannot write {path}: {e.strerror}") from None


# -- kill tests ---------------------------------------------------------------------------------------

STOP_AT = "OCIBUILD_PODMAN_HPC_STOP_AT"


def checkpoint(name: str) -> None:
    """Where the kill -9 tests stop a write: with OCIBUILD_PODMAN_HPC_STOP_AT=NAME the process
    stops itself (SIGSTOP) here, for the test to kill it in exactly that state."""
    if os.environ.get(STOP_AT) == name:
        import signal

        os.kill(os.getpid(), signal.SIGSTOP)
