"""Drop blobs that no reference in index.json reaches.

A reference reaches its index entry's manifest (for a Docker-format image: its OCI view and the
Docker manifest the view's annotation names), that manifest's config and layers, and the
artifacts indexed about it (SBOM, provenance: unnamed entries whose `subject` is the image).
An artifact whose image no reference reaches any more goes, with its index entry.

A reference whose manifest (or index, or a child manifest) cannot be read is *broken*: what it
reaches is unknown, so while any reference is broken gc removes no blob at all (only leftover
temporary files) and reports which references are broken and why.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from ocibuild.errors import OcibuildError, StoreError
from ocibuild.jsonread import JSONObject, read_json_object
from ocibuild.oci.digest import is_digest
from ocibuild.oci.mediatypes import INDEXES
from ocibuild.store.layout import IDENTITY_ANNOTATION, REF_ANNOTATION, Store
from ocibuild.store.lock import file_lock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokenRef:
    ref: str
    reason: str

    def __str__(self) -> str:
        return f"{self.ref}: {self.reason}"


@dataclass(frozen=True)
class GcResult:
    removed: int
    freed: int
    kept: int
    broken: tuple[BrokenRef, ...] = ()


class _Unreadable(Exception):
    pass


def _document(store: Store, digest: str) -> JSONObject:
    if not is_digest(digest):
        raise _Unreadable(f"{digest!r} is not a sha256 digest")
    try:
        data = store.read_blob(digest)
    except (OcibuildError, OSError) as e:
        raise _Unreadable(f"manifest {digest} cannot be read ({e})") from None
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise _Unreadable(f"manifest {digest} is corrupt (its sha256 differs)")
    try:
        return read_json_object(data, f"manifest {digest}")
    except ValueError as e:
        raise _Unreadable(str(e)) from None


def _digests(document: JSONObject, key: str, digest: str) -> list[str]:
    items = document.get(key, [])
    if key == "config":
        items = [items]
    found = []
    for item in items if isinstance(items, list) else [None]:
        value = item.get("digest") if isinstance(item, dict) else None
        if not isinstance(value, str) or not is_digest(value):
            raise _Unreadable(f"manifest {digest} has malformed {key!r}")
        found.append(value)
    return found


def _reach(store: Store, root: str, seen: set[str]) -> None:
    pending = [root]
    while pending:
        digest = pending.pop()
        if digest in seen:
            continue
        document = _document(store, digest)
        seen.add(digest)
        if document.get("mediaType") in INDEXES or "manifests" in document:
            pending.extend(_digests(document, "manifests", digest))
        if "config" in document or "layers" in document:
            seen.update(_digests(document, "config", digest))
            seen.update(_digests(document, "layers", digest))


def reachable(store: Store) -> tuple[set[str], list[BrokenRef], set[str]]:
    """Every blob the index reaches, the references whose tree could not be read, and the
    artifacts indexed about images that nothing else reaches (stale)."""
    seen: set[str] = set()
    broken: list[BrokenRef] = []
    artifacts = []
    for descriptor in store.index().manifests:
        if REF_ANNOTATION not in descriptor.annotations and descriptor.artifact_type:
            artifacts.append(descriptor)
            continue
        ref = descriptor.annotations.get(REF_ANNOTATION, descriptor.digest)
        roots = [descriptor.digest, descriptor.annotations.get(IDENTITY_ANNOTATION)]
        try:
            for root in filter(None, roots):
                _reach(store, root, seen)
        except _Unreadable as e:
            broken.append(BrokenRef(ref, str(e)))
    stale: set[str] = set()
    for descriptor in artifacts:
        try:
            subject = _document(store, descriptor.digest).get("subject")
            if isinstance(subject, dict) and subject.get("digest") not in seen:
                stale.add(descriptor.digest)
                continue
            _reach(store, descriptor.digest, seen)
        except _Unreadable as e:
            broken.append(BrokenRef(descriptor.digest, str(e)))
    return seen, broken, stale


def collect(store: Store, dry_run: bool = False) -> GcResult:
    """Remove what no reference reaches (with `dry_run`, only count it: that reads the store
    and writes nothing, so it works on a read-only store)."""
    if not dry_run:
        store.check_writable()
    with store.exclusive_lock():
        keep, broken, stale = reachable(store)
        if stale and not broken and not dry_run:
            try:
                store.unindex(stale)
            except StoreError as e:  # a full disk: gc frees what it can, the artifacts stay
                log.warning("%s; artifacts of removed images stay indexed", e)
                for digest in stale:
                    _reach(store, digest, keep)
        removed: set[str] = set()
        freed = kept = 0
        for path in sorted(store.blobs.iterdir()):
            digest = "sha256:" + path.name
            leftover = path.name.startswith(".tmp-")
            if leftover or (digest not in keep and not broken):
                freed += path.stat().st_size
                removed.add(digest)
                if not dry_run:
                    with store.writing():
                        Path(path).unlink(missing_ok=True)
            else:
                kept += 1
        if not dry_run:
            try:
                store.state.forget_layers(removed)
            except StoreError as e:
                # a cache entry whose blob is gone is never used (builds check the blob), so a
                # full disk does not stop gc from freeing it
                log.warning("%s; the layer cache keeps entries of removed blobs", e)
            _remove_stale_files(store)
    return GcResult(len(removed), freed, kept, tuple(broken))


def _remove_stale_files(store: Store) -> None:
    """Temporary files of index.json or oci-layout that a killed command left in the store's
    root (its pending blobs are `.tmp-*` in blobs/, removed above)."""
    with file_lock(store.meta / "index.lock"), store.writing():
        for path in store.root.glob(".*.tmp"):
            path.unlink(missing_ok=True)
