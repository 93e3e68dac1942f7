"""Drop blobs that no reference in index.json reaches."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ocibuild.errors import StoreError
from ocibuild.oci.mediatypes import INDEXES
from ocibuild.store.layout import Store
from ocibuild.store.lock import file_lock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GcResult:
    removed: int
    freed: int
    kept: int


def reachable(store: Store) -> set[str]:
    seen: set[str] = set()
    pending = [d.digest for d in store.index().manifests]
    while pending:
        digest = pending.pop()
        if digest in seen or not store.has_blob(digest):
            continue
        seen.add(digest)
        try:
            data = json.loads(store.read_blob(digest))
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        if data.get("mediaType") in INDEXES or "manifests" in data:
            pending.extend(m["digest"] for m in data.get("manifests", []))
        if "config" in data and "layers" in data:
            seen.add(data["config"]["digest"])
            seen.update(layer["digest"] for layer in data["layers"])
    return seen


def collect(store: Store, dry_run: bool = False) -> GcResult:
    """Remove what no reference reaches (with `dry_run`, only count it: that reads the store
    and writes nothing, so it works on a read-only store)."""
    if not dry_run:
        store.check_writable()
    with store.exclusive_lock():
        keep = reachable(store)
        removed: set[str] = set()
        freed = 0
        for path in sorted(store.blobs.iterdir()):
            digest = "sha256:" + path.name
            if path.name.startswith(".tmp-") or digest not in keep:
                freed += path.stat().st_size
                removed.add(digest)
                if not dry_run:
                    with store.writing():
                        Path(path).unlink(missing_ok=True)
        if not dry_run:
            try:
                store.state.forget_layers(removed)
            except StoreError as e:
                # a cache entry whose blob is gone is never used (builds check the blob), so a
                # full disk does not stop gc from freeing it
                log.warning("%s; the layer cache keeps entries of removed blobs", e)
            _remove_stale_files(store)
    return GcResult(len(removed), freed, len(keep))


def _remove_stale_files(store: Store) -> None:
    """Temporary files of index.json or oci-layout that a killed command left in the store's
    root (its pending blobs are `.tmp-*` in blobs/, removed above)."""
    with file_lock(store.meta / "index.lock"), store.writing():
        for path in store.root.glob(".*.tmp"):
            path.unlink(missing_ok=True)
