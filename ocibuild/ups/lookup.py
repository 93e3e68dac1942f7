"""Which instance answers a request (upsmat.c `upsmat_instance`, `match_instance_core`,
`match_from_chain`, `match_from_version`, `match_from_table`, `get_instance`; upsget.c
`upsget_table_file`, `upsget_prod_dir`, `upsget_ups_dir`), reading only the files that takes:

- the databases in order (the request's `-z`, else PRODUCTS); in each, `<db>/<product>` must be
  a directory;
- a version named and no chain: `<db>/<product>/<version>.version`; else the chain file
  `<chain>.chain` first, whose matched instance names the version, then that `.version` file
  matched with the chain instance's flavor (or ANY) and qualifiers only;
- in a file, flavor by flavor of the request's list (flavors.py), qualifier set by set
  (qualifiers.py), instance by instance in file order: the first match is the one;
- then the matched instance's table file (TABLE_DIR/TABLE_FILE, else <db>/<product>/TABLE_FILE,
  UPS_DIR/TABLE_FILE when absolute, PROD_DIR/UPS_DIR/TABLE_FILE, TABLE_FILE), whose instance of
  the same flavor (or ANY) and the same qualifiers is the table instance; no such table
  instance: "No instance matches were made between the version file and the table file".

Every miss leaves the messages and the last error the real ups leaves (upserrors.py).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence

from ocibuild.ups.flavors import ANY, same_flavor
from ocibuild.ups.reader import Reader
from ocibuild.ups.request import Override, Request
from ocibuild.ups.scope import Match
from ocibuild.ups.upsfile import UpsInstance

_Pair = tuple[UpsInstance, "UpsInstance | None", str]  # version, table instance, table path


def relative(path: str | None) -> bool:
    """upstyp.h UPSRELATIVE."""
    return bool(path) and not (path or "").startswith("/")


class Lookup:
    def __init__(self, reader: Reader, override: Override, guess: Callable[[str], None]) -> None:
        self.reader = reader
        self.errors = reader.errors
        self.tree = reader.tree
        self.override = override
        self.guess = guess
        self._by_version = False

    def find(self, request: Request, databases: Sequence[str]) -> Match | None:
        """upsmat_instance for one unique instance."""
        self._by_version = bool(request.version)
        match = None
        for i, db in enumerate(databases):
            if not self.tree.exists(db):
                self.errors.add("NOT_A_DIR", "WARNING", f" '{db}' is not a directory")
                continue
            config = self.reader.config(db)
            if self.tree.is_dir(f"{db}/{request.product}"):
                match = self._in_database(request, db, config)
                if self.errors.failed:
                    if i + 1 == len(databases):
                        break
                    self.errors.backup()
                    self.errors.backup()
            if match is not None:
                break
        return match

    def _in_database(self, request: Request, db: str, config: Mapping[str, str]) -> Match | None:
        chains = request.chain_names()
        flavors = request.flavor_list()
        quals = request.qualifier_list(self.override)
        if not chains:
            pair = self._from_version(request.product, request.version, db, config, flavors, quals)
            return Match(db, config, None, *pair) if pair else None
        for chain in chains:
            match = self._from_chain(request, chain, db, config, flavors, quals)
            if match is not None:
                return match
        return None

    def _from_chain(
        self,
        request: Request,
        chain: str,
        db: str,
        config: Mapping[str, str],
        flavors: list[str],
        quals: list[str],
    ) -> Match | None:
        path = f"{db}/{request.product}/{chain}.chain"
        read = self.reader.read(path)
        if read is None or self.errors.failed:
            if self.errors.last == "NO_FILE":
                self.errors.backup()
                self.errors.backup()
            return None
        instance = self._first(read.instances, flavors, quals, path)
        if instance is None:
            return None
        version = instance.get("VERSION")
        if request.version and version != request.version:
            return None
        pair = self._from_version(
            request.product,
            version or "",
            db,
            config,
            [instance.flavor, ANY],
            [instance.qualifiers],
        )
        if pair is None:
            if self.errors.last != "NO_TABLE_MATCH":
                self.errors.add(
                    "NO_VERSION_MATCH",
                    "ERROR",
                    f"No instance matches were made between the chain file ({path}) and the "
                    f"version file ({version if version is not None else '(null)'}.version)",
                )
                self._corruption(db, request.product)
            return None
        return Match(db, config, instance, *pair)

    def _from_version(
        self,
        product: str,
        version: str,
        db: str,
        config: Mapping[str, str],
        flavors: list[str],
        quals: list[str],
    ) -> _Pair | None:
        path = f"{db}/{product}/{version}.version"
        read = self.reader.read(path)
        if read is None or self.errors.failed:
            if self.errors.last == "NO_FILE" and self._by_version:
                self.errors.backup()
                self.errors.backup()
            return None
        instance = self._first(read.instances, flavors, quals, path)
        if instance is None:
            return None
        table_file = instance.get("TABLE_FILE")
        if table_file is None:
            return instance, None, ""
        found = self._from_table(product, instance, db, config)
        if found is None:
            self.errors.add(
                "NO_TABLE_MATCH",
                "ERROR",
                f"No instance matches were made between the \nversion file ({path}) and the "
                f"\ntable file ({table_file}) for flavor ({instance.flavor}) and qualifiers "
                f"({instance.qualifiers})",
            )
            self._corruption(db, product)
            return None
        return instance, *found

    def _corruption(self, db: str, product: str) -> None:
        self.errors.add(
            "DB_CORRUPTION",
            "ERROR",
            f"Possible UPS database ({db}) corruption in product '{product}'.",
        )

    def _from_table(
        self, product: str, instance: UpsInstance, db: str, config: Mapping[str, str]
    ) -> tuple[UpsInstance, str] | None:
        path = self.table_path(product, instance, db, config)
        if path is None:
            return None
        read = self.reader.read(path)
        if read is None:
            return None
        found = self._first(read.instances, [instance.flavor, ANY], [instance.qualifiers], path)
        return (found, path) if found is not None else None

    def _first(
        self, instances: list[UpsInstance], flavors: list[str], quals: list[str], path: str
    ) -> UpsInstance | None:
        """get_instance: flavor by flavor, qualifier set by set, in file order."""
        for flavor in flavors:
            for q in quals:
                hits = [i for i in instances if same_flavor(i.flavor, flavor) and i.qualifiers == q]
                if hits:
                    entries = sorted({i.entry for i in hits})
                    if len(entries) > 1:
                        self.guess(
                            f"{path}: {', '.join(entries)} both answer flavor {flavor} "
                            f"qualifiers {q or '(none)'}: the real ups takes the entry the "
                            f"filesystem lists first, ocibuild {hits[0].entry}"
                        )
                    return hits[0]
        return None

    # -- paths -----------------------------------------------------------------------------

    def table_path(
        self, product: str, instance: UpsInstance, db: str, config: Mapping[str, str]
    ) -> str | None:
        """upsget_table_file: the first candidate that exists."""
        table_file = instance.get("TABLE_FILE") or ""
        prefix = config.get("PROD_DIR_PREFIX")
        prod_dir = self._translated(instance.get("PROD_DIR"))
        candidates: list[str] = []
        table_dir = instance.get("TABLE_DIR")
        if table_dir is not None:
            table_dir = self._translated(table_dir) or ""
            candidates.append(f"{table_dir}/{table_file}")
            if prod_dir is not None and relative(table_dir):
                base = f"{prefix}/{prod_dir}" if prefix and relative(prod_dir) else prod_dir
                candidates.append(f"{base}/{table_dir}/{table_file}")
        else:
            ups_dir = self._translated(instance.get("UPS_DIR"))
            candidates.append(f"{db}/{product}/{table_file}")
            if ups_dir is not None and not relative(ups_dir):
                candidates.append(f"{ups_dir}/{table_file}")
            if ups_dir is not None and prod_dir is not None and relative(ups_dir):
                base = f"{prefix}/{prod_dir}" if prefix and relative(prod_dir) else prod_dir
                candidates.append(f"{base}/{ups_dir}/{table_file}")
            candidates.append(table_file)
        for candidate in candidates:
            if self.exists(candidate):
                return candidate
        return None

    def exists(self, path: str) -> bool:
        """stat(path): a relative path is taken from the directory setup runs in, here /."""
        found = self.tree.exists(posixpath.join("/", path))
        if found and relative(path):
            self.guess(f"{path}: a relative path, taken from the directory setup runs in (here /)")
        return found

    def _translated(self, value: str | None) -> str | None:
        """TRANSLATE_ENV: the translation, or the value as is."""
        if value is None:
            return None
        return self.reader.translate(value) or value

    def prod_dir(self, match: Match) -> str:
        """upsget_prod_dir: ${UPS_PROD_DIR}."""
        value = self._translated(match.element("PROD_DIR"))
        prefix = match.config.get("PROD_DIR_PREFIX")
        if relative(value) and prefix:
            return f"{prefix}/{value}"
        return value or ""

    def ups_dir(self, match: Match) -> str:
        """upsget_ups_dir: ${UPS_UPS_DIR}; without UPS_DIR, <prod dir>/ups if a directory."""
        value = match.element("UPS_DIR")
        if value is None:
            candidate = f"{self.prod_dir(match)}/ups"
            return candidate if self.tree.is_dir(posixpath.join("/", candidate)) else ""
        value = self._translated(value) or ""
        return f"{self.prod_dir(match)}/{value}" if relative(value) else value
