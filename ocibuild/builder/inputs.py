"""What a build takes from outside the recipe: the timestamp of its files and history
(SOURCE_DATE_EPOCH), the scisoft mirror, and the digests of local files, remembered."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ocibuild.errors import RecipeError
from ocibuild.layer.entry import Entry, content_sha256
from ocibuild.recipe import Recipe
from ocibuild.recipe.model import check_source_date_epoch

DEFAULT_MIRROR = "https://scisoft.fnal.gov/scisoft"


def source_date_epoch(recipe: Recipe) -> int:
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        try:
            return check_source_date_epoch(int(env))
        except ValueError as e:
            raise RecipeError(f"SOURCE_DATE_EPOCH={env!r}: {e}") from None
    return recipe.source_date_epoch or 0


def resolve_mirror(recipe: Recipe, override: str | None) -> str:
    mirror = override or os.environ.get("OCIBUILD_SCISOFT") or recipe.mirror or DEFAULT_MIRROR
    if "://" not in mirror:
        path = Path(mirror).expanduser()
        if not path.is_absolute():
            base = (
                Path.cwd()
                if override or os.environ.get("OCIBUILD_SCISOFT") == mirror
                else recipe.path.parent
            )
            path = base / path
        return path.resolve().as_uri()
    return mirror.rstrip("/")


class ContentDigests:
    """sha256 of local files, remembered by (path, size, mtime, inode) for this process."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, int, int, int, int], str] = {}
        self._mutex = threading.Lock()

    def __call__(self, entry: Entry) -> str:
        if not entry.source:
            return content_sha256(entry)
        st = os.stat(entry.source)
        key = (entry.source, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
        with self._mutex:
            if key in self._known:
                return self._known[key]
        digest = content_sha256(entry)
        with self._mutex:
            self._known[key] = digest
        return digest
