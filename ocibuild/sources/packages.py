"""What the package sources (rpm, deb) share: the base image's files they read, downloads
checked against the index, the lock's record of what a layer resolved, the layer plan, and
reporting."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from ocibuild.errors import DigestMismatchError, LockError, Origin, SourceError
from ocibuild.fetch import Fetched, LockFile, Pin
from ocibuild.layer.entry import Entry, bytes_entry
from ocibuild.ospkg.record import RECORD_PATH, PackageRecord, load_record, record_bytes
from ocibuild.progress import Message, plural
from ocibuild.sbom import Component
from ocibuild.sources.base import LayerPlan, content_key, fetcher_for, input_key
from ocibuild.sources.session import LayerContext
from ocibuild.trust.openpgp import Keys

P = TypeVar("P")


def lower_files(ctx: LayerContext, paths: Iterable[str]) -> dict[str, bytes]:
    """The base image's files at `paths` (one pass over its layers), with the package record."""
    if ctx.lower is None:
        return {}
    wanted = {*paths, RECORD_PATH}
    return ctx.lower.collect(lambda p: p in wanted)


def base_record(lower: dict[str, bytes]) -> list[PackageRecord]:
    return load_record(lower.get(RECORD_PATH))


def record_entry(base: list[PackageRecord], added: list[PackageRecord]) -> Entry:
    return bytes_entry(RECORD_PATH, record_bytes(base, added))


def locked_resolution(
    ctx: LayerContext, key: str, kind: type[P], resolve: Callable[[], list[P]]
) -> list[P]:
    """The packages a layer installs: the lock's record for `key` (as `kind` dataclasses), or
    else `resolve()`'s answer, recorded in the lock. `--update-lock` always resolves."""
    lock = ctx.session.lock
    pinned = None if ctx.session.settings.update_lock else lock.resolution(key)
    if pinned is not None:
        return [kind(**p) for p in _lock_entries(lock, pinned, kind)]
    packages = resolve()
    lock.set_resolution(key, [p.__dict__ for p in packages])
    return packages


def _lock_entries(lock: LockFile, pinned: Any, kind: type) -> list[dict[str, Any]]:
    """The recorded resolution as a list of field mappings of `kind`, or a LockError."""
    names = {f.name for f in fields(kind)}
    if not isinstance(pinned, list) or not all(
        isinstance(p, dict) and set(p) == names for p in pinned
    ):
        raise LockError(
            "malformed package resolution; rebuild with --update-lock",
            str(lock.path or "the lock file"),
        )
    return pinned


def resolve_requested(
    ctx: LayerContext,
    kind: str,
    resolve: Callable[[list[str]], list[P]],
    requested: list[str],
    origin: Origin,
) -> list[P]:
    """The packages `requested` and what they need, reported; errors name the recipe position."""
    try:
        chosen = resolve(requested)
    except SourceError as e:
        raise SourceError(f"{kind}: {e}", origin) from None
    ctx.report(
        Message(f"{kind}: {plural(len(chosen), 'package')} to install for {', '.join(requested)}")
    )
    return chosen


def package_layer(
    kind: str,
    requested: list[str],
    packages: Sequence[Any],
    lower: dict[str, bytes],
    entries: Callable[[], Iterator[Entry]],
    components: Callable[[], Sequence[Component]],
) -> LayerPlan:
    """The one layer a package source plans: keyed by the resolved packages (dataclasses) and the
    base image's files they are installed over."""
    shown = ", ".join(requested[:4]) + (", ..." if len(requested) > 4 else "")
    return LayerPlan(
        key=input_key(f"{kind}-layer", [p.__dict__ for p in packages], content_key(lower)),
        description=f"{kind}: {plural(len(packages), 'package')} for {shown}",
        entries=entries,
        created_by=f"ocibuild {kind} install {' '.join(requested)}",
        components=components,
    )


# -- which keys verify a repository ----------------------------------------------------------

TRUSTED = "trusted"  # the lock's `verified_by` of a repository the recipe does not verify


@dataclass(frozen=True)
class RepoKeys:
    """The keys that verify one repository's indexes, or None: the recipe's `trusted: true`.
    `spec` is what the lock's resolution key records of them: the recipe's words (a path, the
    digest of an inline key, a default keyring's name), never the key bytes of this host, so
    the lock holds on another machine; a change of keys resolves (and verifies) anew."""

    keys: Keys | None
    spec: str


def recipe_keys(value: str, ctx: LayerContext, what: str) -> RepoKeys:
    """Keys a recipe gives: an armored key block inline, or a keyring file (binary or armored)
    relative to the recipe file."""
    if Keys.is_armored(value):
        digest = hashlib.sha256(value.strip().encode()).hexdigest()
        return RepoKeys(Keys(f"the {what} key given in the recipe", armored=(value,)), digest)
    path = ctx.session.recipe_dir / value
    return RepoKeys(Keys(str(path), files=(path,)), value)


NOT_VERIFIED = RepoKeys(None, TRUSTED)


def trust_properties(verified_by: str) -> tuple[tuple[str, str], ...]:
    """What an SBOM component says of how its repository was checked."""
    if verified_by == TRUSTED:
        return (("trusted", "opt-out"),)
    return (("verified-by", verified_by),) if verified_by else ()


@dataclass(frozen=True)
class Download:
    url: str
    what: str  # "rpm bash-4.1.2-33.el6.x86_64", for messages
    checksum_type: str
    checksum: str


def download_packages(
    ctx: LayerContext, downloads: Sequence[Download], hint: str = ""
) -> list[Fetched]:
    """Fetch package files in parallel, each checked against its index's checksum, and pin them
    in the lock. Files are cached by content, so a fixed mirror is never shadowed by a bad
    download of the same URL. `hint` says how to use another mirror."""
    fetcher = fetcher_for(ctx, hint=hint)

    def one(d: Download) -> Fetched:
        if d.checksum_type == "sha256":
            fetched = fetcher.fetch_fresh(d.url, d.what, sha256=d.checksum)
        else:
            hit = fetcher.cached(d.url)
            if hit is not None and file_digest(hit, d.checksum_type) == d.checksum:
                fetched = hit
            else:
                fetched = fetcher.fetch_fresh(d.url, d.what)
                actual = file_digest(fetched, d.checksum_type)
                if actual != d.checksum:
                    raise DigestMismatchError(
                        f"{d.what}: {d.url}: {d.checksum_type} {actual}, "
                        f"the repository index says {d.checksum}",
                        ctx.origin,
                    )
        ctx.session.lock.set(Pin(d.url, fetched.size, fetched.sha256))
        return fetched

    with ThreadPoolExecutor(max_workers=max(1, fetcher.parallel)) as pool:
        return list(pool.map(one, downloads))


def file_digest(fetched: Fetched, algorithm: str) -> str:
    name = {"sha": "sha1"}.get(algorithm, algorithm)
    h = hashlib.new(name)
    with open(fetched.path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def report_skipped(ctx: LayerContext, kind: str, records: Sequence[PackageRecord]) -> None:
    skipped = [f"{r.name} ({', '.join(r.skipped_scripts)})" for r in records if r.skipped_scripts]
    if skipped:
        ctx.report(
            Message(
                f"{kind}: install scripts not run (recorded in /{RECORD_PATH}): "
                + ", ".join(skipped)
            )
        )
