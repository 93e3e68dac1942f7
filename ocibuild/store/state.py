"""What the store remembers beside the OCI layout: the layer cache, where blobs were seen in
registries (for cross-repository mounts), what the last build made (for `push`), and what each
layer it built holds (its SBOM components, for the images built on it and `ocibuild sbom`)."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from ocibuild.errors import StoreError
from ocibuild.jsonread import read_json
from ocibuild.layer.blob import Layer
from ocibuild.oci.digest import Digest
from ocibuild.sbom.component import Component, from_json, to_json

_SCHEMA = """
CREATE TABLE IF NOT EXISTS layers (
    key TEXT PRIMARY KEY, digest TEXT NOT NULL, size INTEGER NOT NULL, diff_id TEXT NOT NULL,
    media_type TEXT NOT NULL, tar_size INTEGER NOT NULL, entries INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS blob_repos (
    digest TEXT NOT NULL, registry TEXT NOT NULL, repository TEXT NOT NULL, seen REAL NOT NULL,
    PRIMARY KEY (digest, registry, repository));
CREATE TABLE IF NOT EXISTS last_build (ref TEXT PRIMARY KEY, recipe TEXT NOT NULL, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS layer_components (digest TEXT PRIMARY KEY, components TEXT NOT NULL);
"""


class State:
    """The sqlite database beside the layout (STORE/.ocibuild/state.db). Reading it writes
    nothing (a read-only store answers from it, or from nothing if it does not exist); a write
    that fails (disk full, read-only) is a StoreError."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A connection for writing, the schema made."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(self.path, timeout=60)) as db:
                db.executescript(_SCHEMA)
                with db:
                    yield db
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot update the store's state {self.path}: {e}") from None

    def _read(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """The rows of a query, opened read-only; none if the database or table is missing."""
        if not self.path.exists():
            return []
        # read-write where the store is writable: it rolls back what a killed writer left
        mode = "rw" if os.access(self.path.parent, os.W_OK) else "ro"
        try:
            uri = f"{self.path.resolve().as_uri()}?mode={mode}"
            with closing(sqlite3.connect(uri, uri=True, timeout=60)) as db:
                return db.execute(sql, args).fetchall()
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                return []
            raise StoreError(f"cannot read the store's state {self.path}: {e}") from None
        except sqlite3.Error as e:
            raise StoreError(f"cannot read the store's state {self.path}: {e}") from None

    def cached_layer(self, key: str) -> Layer | None:
        rows = self._read(
            "SELECT digest, size, diff_id, media_type, tar_size, entries FROM layers WHERE key=?",
            (key,),
        )
        if not rows:
            return None
        digest, size, diff_id, media_type, tar_size, entries = rows[0]
        return Layer(Digest(digest), size, Digest(diff_id), tar_size, media_type, entries)

    def diff_id(self, digest: str) -> str | None:
        """The digest of the tar inside the layer blob `digest`, as the build that wrote the
        blob hashed it; None for a blob no build of this store wrote (pulled, loaded)."""
        rows = self._read("SELECT diff_id FROM layers WHERE digest=? LIMIT 1", (digest,))
        return str(rows[0][0]) if rows else None

    def remember_layers(self, layers: Iterable[tuple[str, Layer]]) -> None:
        """Cache layers by key, in one transaction."""
        rows = [
            (key, c.digest, c.size, c.diff_id, c.media_type, c.tar_size, c.entries)
            for key, c in layers
        ]
        if not rows:
            return
        with self._db() as db:
            db.executemany("INSERT OR REPLACE INTO layers VALUES (?,?,?,?,?,?,?)", rows)

    def forget_layers(self, digests: set[str]) -> None:
        with self._db() as db:
            db.executemany("DELETE FROM layers WHERE digest=?", [(d,) for d in digests])
            db.executemany("DELETE FROM blob_repos WHERE digest=?", [(d,) for d in digests])
            db.executemany("DELETE FROM layer_components WHERE digest=?", [(d,) for d in digests])

    def remember_components(self, layers: Iterable[tuple[str, Sequence[Component]]]) -> None:
        """What each layer (by blob digest) holds, in one transaction."""
        rows = [
            (digest, json.dumps([to_json(c) for c in components], sort_keys=True))
            for digest, components in layers
        ]
        if rows:
            with self._db() as db:
                db.executemany("INSERT OR REPLACE INTO layer_components VALUES (?,?)", rows)

    def layer_components(self, digest: str) -> tuple[Component, ...] | None:
        """What a layer holds, as remembered; None if nothing is (or the record is damaged)."""
        rows = self._read("SELECT components FROM layer_components WHERE digest=?", (digest,))
        if not rows:
            return None
        try:
            components: Any = read_json(rows[0][0], f"the components of {digest}")
            return tuple(from_json(c) for c in components)
        except (ValueError, TypeError):
            return None

    def record_blob_repo(self, digest: str, registry: str, repository: str) -> None:
        """Remember where a blob was seen: a hint for cross-repository mounts, skipped when the
        store is read-only (push and pull of a read-only store lose only the hint)."""
        if not os.access(self.path.parent, os.W_OK):
            return
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO blob_repos VALUES (?,?,?,?)",
                (digest, registry, repository, time.time()),
            )

    def blob_repos(self, digest: str, registry: str) -> list[str]:
        rows = self._read(
            "SELECT repository FROM blob_repos WHERE digest=? AND registry=? ORDER BY seen DESC",
            (digest, registry),
        )
        return [r[0] for r in rows]

    def set_last_build(self, refs: list[str], recipe: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM last_build")
            db.executemany(
                "INSERT INTO last_build VALUES (?,?,?)",
                [(r, recipe, i) for i, r in enumerate(refs)],
            )

    def last_build(self) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self._read("SELECT ref, recipe FROM last_build ORDER BY seq")]
