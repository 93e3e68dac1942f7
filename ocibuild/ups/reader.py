"""What one `ups` process reads (upsfil.c `upsfil_read_file`, `upsfil_read_dir`; upsget.c
`upsget_translation_env`, `upsget_translation_tilde`; upsutl.c `upsutl_get_config`): a file
parsed when first asked for and kept (a file that gave nothing is read again when asked again,
as ups does), a `.version`/`.chain` directory read entry by entry, every read clearing ups's last
error (upserrors.py). Only the files a setup command needs are read: a broken file nobody asks
for is nothing.

A directory entry named `.*`, `#*`, `*~` or `CVS` is skipped; every other entry must read, or
the whole directory gives nothing ("one unreadable entry, even a README, makes the version
vanish"). Values of PROD_DIR, UPS_DIR, TABLE_DIR... have `${VAR}` replaced from the environment
`setup` runs in (only `${NAME}`; `${UPS_THIS_DB}` is known in a dbconfig only; an unset variable
is reported and gives "", but a value whose text before its last `}` comes out empty stays
untranslated, `${...}` and all) and `~` from the home directory of the user running setup.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping

from ocibuild.ups.database import DBCONFIG, ImageTree
from ocibuild.ups.upserrors import UpsErrors
from ocibuild.ups.upsfile import FileParser, UpsFile

_DBCONFIG_TAIL = "/" + DBCONFIG


class Reader:
    def __init__(
        self,
        tree: ImageTree,
        env: Mapping[str, str],
        home: str,
        errors: UpsErrors,
        guess: Callable[[str], None],
    ) -> None:
        """`env`: the environment of the `setup` command; `home`: the home directory `~` is;
        `guess`: warns where the image cannot tell what the real ups would see."""
        self.tree = tree
        self.env = env
        self.home = home
        self.errors = errors
        self.guess = guess
        self.last_file = ""
        self._cache: dict[str, UpsFile] = {}
        self._configs: dict[str, dict[str, str]] = {}

    def read(self, path: str) -> UpsFile | None:
        """upsfil_read_file: the file (or directory) parsed, None when it gives nothing."""
        self.errors.file_read()
        self.last_file = path
        if path in self._cache:
            return self._cache[path]
        parser = FileParser(path, self.translate, self.errors)
        if self.tree.is_dir(path):
            ok = self._read_dir(path, parser)
        else:
            data = self.tree.data(path)
            if data is None:
                self.errors.add(
                    "SYSTEM_ERROR", "ERROR", "Error in call to fopen: No such file or directory"
                )
                self.errors.add("NO_FILE", "ERROR", f"File not found - {path}")
                return None
            ok = parser.read(data)
            if not ok:
                self.errors.add("READ_FILE", "WARNING", f"Unable to read file {path}.")
        if not ok:
            return None
        self._cache[path] = parser.result
        return parser.result

    def _read_dir(self, path: str, parser: FileParser) -> bool:
        names = [n for n in self.tree.entries(path) if _read_entry(n)]
        ok = True
        for name in names:
            data = self.tree.data(posixpath.join(path, name))
            ok &= parser.read(data or b"", name)
        return ok and bool(names)

    def config(self, db: str) -> dict[str, str]:
        """The database's dbconfig (upsutl_get_config), {} without one."""
        if db in self._configs:
            self.errors.file_read()  # a read, from ups's cache or not
        else:
            read = self.read(f"{db}{_DBCONFIG_TAIL}")
            if self.errors.last == "NO_FILE":
                self.errors.backup()
                self.errors.backup()
            self._configs[db] = read.config if read else {}
        return self._configs[db]

    def translate(self, value: str) -> str | None:
        """upsget_translation_env: `${VAR}` and `~` replaced; None: no translation."""
        out = ""
        rest: str | None = value
        while rest and "${" in rest:
            start = rest.index("${")
            out += rest[:start]
            end = rest.find("}", start)
            if end < 0:
                self.errors.add(
                    "NO_TRANSLATION", "ERROR", f"Unable to translate or evaluate '{rest[start:]}'"
                )
                return None
            name = rest[start + 2 : end]
            if name in self.env:
                out += self.env[name]
            elif name == "UPS_THIS_DB" and _DBCONFIG_TAIL in self.last_file:
                out += self.last_file[: self.last_file.index(_DBCONFIG_TAIL)]
            else:
                self.errors.add(
                    "NO_TRANSLATION",
                    "INFORMATIONAL",
                    f"Unable to translate or evaluate '${{{name}}}'",
                )
            rest = rest[end + 1 :]
        if out:
            out += rest or ""
            return self.tilde(out) or out
        return self.tilde(value)

    def tilde(self, value: str) -> str | None:
        """upsget_translation_tilde: `~` and `~user` up to the next `/` (or blank)."""
        out = ""
        rest: str | None = value
        while rest and "~" in rest:
            start = rest.index("~")
            out += rest[:start]
            end = rest.find("/", start)
            if end < 0:
                end = rest.find(" ", start)
            name = rest[start:end] if end >= 0 else rest[start:]
            out += self.home_of(name)
            rest = rest[end:] if end >= 0 else None
        if out:
            return out + (rest or "")
        return None

    def home_of(self, name: str) -> str:
        """`~` (the user running setup) or `~user`: what the image's passwd would say."""
        if name in ("~", "~root"):
            home = self.home if name == "~" else "/root"
            self.guess(f"~ is the home directory of the user who runs setup: taken as {home}")
            return home
        self.guess(f"{name}: a user's home directory, unknown here: taken as empty")
        return ""


def _read_entry(name: str) -> bool:
    return not (name.startswith((".", "#")) or name.endswith("~") or name == "CVS")
