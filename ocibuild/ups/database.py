"""The image's files as `setup` sees them: under the products databases (PRODUCTS, `-z`), the
UPS files (`.version`, `.chain`, `.table`, `.upsfiles/dbconfig`) and scripts are read in one pass
over the image's layers, every other file's path is known; a file elsewhere (a table under an
absolute PROD_DIR) is read on demand. Nothing is parsed here: the reader (reader.py) parses
only what a setup command needs.

    <db>/<product>/<version>.version[/<flavor>_<quals>]    <db>/<product>/<chain>.chain[/...]
    <db>/.upsfiles/dbconfig                               <prod_dir>/<ups_dir>/<table_file>
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Sequence

DBCONFIG = ".upsfiles/dbconfig"
_DECLARATION = re.compile(r"[^/]+/[^/]+\.(?:version|chain)(?:/[^/]+)?")
_SCRIPT = (".sh", ".csh", ".bash", ".ksh", ".zsh")  # sourced files: `[ -s FILE ]` needs a size


def clean(path: str) -> str:
    """An absolute, normalised path."""
    return posixpath.normpath("/" + path.lstrip("/")) if path else "/"


def wanted(roots: Sequence[str]) -> Callable[[str], bool]:
    """Which image files (image-relative paths) the one pass reads the content of."""
    prefixes = tuple(clean(r).lstrip("/") + "/" for r in roots)

    def match(path: str) -> bool:
        for prefix in prefixes:
            if path.startswith(prefix) or prefix == "/":
                rel = path[len(prefix) :] if prefix != "/" else path
                return (
                    rel == DBCONFIG
                    or rel.endswith((".table", *_SCRIPT))
                    or _DECLARATION.fullmatch(rel) is not None
                )
        return False

    return match


class ImageTree:
    def __init__(
        self,
        roots: Sequence[str],
        files: dict[str, bytes],
        paths: Iterable[str],
        read: Callable[[str], bytes | None],
    ) -> None:
        """`files`: image-relative path -> content, as the one pass read them; `paths`: every
        regular file under the roots; `read`: reads any other file of the image."""
        self.roots = tuple(clean(r) for r in roots)
        self._files = {clean(p): data for p, data in files.items()}
        self._paths = {clean(p) for p in paths}
        self._dirs: dict[str, set[str]] = {}
        for path in self._paths:
            child = path
            parent = posixpath.dirname(child)
            while child != "/":
                self._dirs.setdefault(parent, set()).add(posixpath.basename(child))
                child, parent = parent, posixpath.dirname(parent)
        self._read = read
        self._read_on_demand: dict[str, bytes | None] = {}

    def covers(self, path: str) -> bool:
        """Whether the path lies under a database root (its presence is known)."""
        path = clean(path)
        return any(path == r or path.startswith(r.rstrip("/") + "/") for r in self.roots)

    def is_dir(self, path: str) -> bool:
        return clean(path) in self._dirs

    def is_file(self, path: str) -> bool:
        path = clean(path)
        if self.covers(path):
            return path in self._paths
        return self.data(path) is not None

    def exists(self, path: str) -> bool:
        return self.is_dir(path) or self.is_file(path)

    def entries(self, path: str) -> list[str]:
        """A directory's entries, by name (readdir's order is the filesystem's)."""
        return sorted(self._dirs.get(clean(path), ()))

    def data(self, path: str) -> bytes | None:
        path = clean(path)
        if path in self._files:
            return self._files[path]
        if self.covers(path) and path not in self._paths:
            return None
        if path not in self._read_on_demand:
            self._read_on_demand[path] = self._read(path)
        return self._read_on_demand[path]

    def test(self, path: str, kind: str) -> bool | None:
        """`test -d/-f/-e/-s PATH` on a path of the image; None where this view cannot tell:
        outside the databases, a directory, or a file not found (it may be a symbolic link)."""
        if not path.startswith("/"):
            return None
        if not self.covers(path):
            data = None if kind == "d" else self.data(path)
            return None if data is None else bool(data) or kind != "s"
        if kind == "d":
            return self.is_dir(path)
        if kind == "s":
            return bool(self.data(path)) if self.is_file(path) else False
        if kind == "f":
            return self.is_file(path)
        return self.exists(path)
