"""A UPS products database (`/products`) as read from an image: declared instances, chains
and table files, found among the image's files without unpacking it.

    <root>/<product>/<version>.version/<flavor>_<quals>   (or a single <version>.version file)
    <root>/<product>/<chain>.chain/<flavor>_<quals>       (current.chain, ...)
    <root>/<prod_dir>/<ups_dir>/<table_file>              (or <table_dir>/<table_file>)
    <root>/.upsfiles/dbconfig                             (PROD_DIR_PREFIX = ${UPS_THIS_DB})

As in UPS, a relative PROD_DIR is taken under the dbconfig's PROD_DIR_PREFIX (and stays
relative without one), a relative UPS_DIR under the product directory; without UPS_DIR it is
<prod_dir>/ups when that directory exists.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable

from ocibuild.errors import SourceError
from ocibuild.ups.declaration import Instance, parse_declaration
from ocibuild.ups.names import NULL_FLAVOR, same_qualifiers
from ocibuild.ups.table import Table, parse_table

DBCONFIG = ".upsfiles/dbconfig"
_DECLARATION = re.compile(r"(?P<product>[^/]+)/(?P<name>[^/]+)\.(?P<kind>version|chain)(?:/[^/]+)?")


def wanted(root: str) -> Callable[[str], bool]:
    """Which image files a database at `root` is read from (for `LowerFS.collect`)."""
    prefix = root + "/" if root else ""

    def match(path: str) -> bool:
        if not path.startswith(prefix):
            return False
        rel = path[len(prefix) :]
        return rel.endswith(".table") or rel == DBCONFIG or _DECLARATION.fullmatch(rel) is not None

    return match


class Database:
    def __init__(self, root: str, files: dict[str, bytes], paths: Iterable[str] = ()) -> None:
        """`root` is image-relative (`products`); `files` maps image paths to contents;
        `paths` lists every file of the image under the root (for directory tests)."""
        self.root = root
        self.files = files
        self.dirs = {posixpath.dirname(p) for p in paths}
        self.dirs |= {a for d in list(self.dirs) for a in _ancestors(d)}
        self.paths = set(paths)
        self.versions: dict[tuple[str, str], list[Instance]] = {}
        self.chains: dict[tuple[str, str], list[Instance]] = {}
        self._tables: dict[str, Table] = {}
        prefix = root + "/" if root else ""
        self.prod_dir_prefix = _prod_dir_prefix(files.get(prefix + DBCONFIG), self.path)
        for path in sorted(files):
            m = _DECLARATION.fullmatch(path[len(prefix) :]) if path.startswith(prefix) else None
            if m is None:
                continue
            text = _text(path, files[path])
            target = self.versions if m["kind"] == "version" else self.chains
            key = (m["product"], m["name"])
            for instance in parse_declaration(text, "/" + path):
                if instance.product != m["product"]:
                    raise SourceError(
                        f"/{path}: declares product {instance.product}, but lies under "
                        f"/{prefix}{m['product']}"
                    )
                target.setdefault(key, []).append(instance)

    @property
    def path(self) -> str:
        return "/" + self.root

    def products(self) -> list[str]:
        return sorted({p for p, _ in self.versions})

    def product_versions(self, product: str) -> list[str]:
        return sorted(v for p, v in self.versions if p == product)

    def flavors(self) -> set[str]:
        return {i.flavor for instances in self.versions.values() for i in instances}

    def find(
        self, product: str, version: str, qualifiers: str, flavors: list[str]
    ) -> Instance | None:
        """The declared instance of `product` `version` with these qualifiers, trying the
        flavors in order."""
        instances = self.versions.get((product, version), [])
        for flavor in flavors:
            for instance in instances:
                if instance.flavor == flavor and same_qualifiers(instance.qualifiers, qualifiers):
                    return instance
        return None

    def chained_version(
        self, product: str, chain: str, qualifiers: str, flavors: list[str]
    ) -> str | None:
        instances = self.chains.get((product, chain), [])
        for flavor in flavors:
            for instance in instances:
                if instance.flavor == flavor and same_qualifiers(instance.qualifiers, qualifiers):
                    return instance.version
        return None

    def prod_dir(self, instance: Instance) -> str:
        """The instance's product directory as UPS gives it: PROD_DIR, under the dbconfig's
        PROD_DIR_PREFIX when relative."""
        if instance.prod_dir.startswith("/") or self.prod_dir_prefix is None:
            return instance.prod_dir
        return f"{self.prod_dir_prefix}/{instance.prod_dir}"

    def ups_dir(self, instance: Instance) -> str:
        """UPS_DIR under the product directory; without one, <prod_dir>/ups if it exists."""
        prod_dir = self.prod_dir(instance)
        if not instance.ups_dir:
            return f"{prod_dir}/ups" if self.exists(f"{prod_dir}/ups", "d") else ""
        if instance.ups_dir.startswith("/"):
            return instance.ups_dir
        return f"{prod_dir}/{instance.ups_dir}"

    def _absolute(self, path: str) -> str:
        return posixpath.normpath(posixpath.join(self.path, path))

    def table(self, instance: Instance) -> Table | None:
        """The instance's table file, parsed; None when it declares none."""
        if not instance.table_file or instance.table_file.upper() == "NONE":
            return None
        prod_dir = self._absolute(self.prod_dir(instance))
        candidates = []
        if instance.table_dir:
            candidates.append(posixpath.join(prod_dir, instance.table_dir))
        candidates.append(posixpath.join(prod_dir, instance.ups_dir or "ups"))
        candidates.append(posixpath.join(self.path, instance.product))
        for directory in candidates:
            path = posixpath.normpath(posixpath.join(directory, instance.table_file)).lstrip("/")
            if path in self._tables:
                return self._tables[path]
            if path in self.files:
                table = parse_table(_text(path, self.files[path]), "/" + path)
                self._tables[path] = table
                return table
        raise SourceError(
            f"{instance.source}: table file {instance.table_file} of {instance.product} "
            f"{instance.version} is in none of {', '.join(candidates)}"
        )

    def exists(self, path: str, kind: str) -> bool | None:
        """Whether an image-absolute path is a directory ('d'), a file ('f') or either ('e');
        None when the path lies outside the database (this view cannot tell)."""
        rel = posixpath.normpath(path).lstrip("/")
        if not (rel == self.root or rel.startswith(self.root + "/")):
            return None
        is_dir = rel in self.dirs
        is_file = rel in self.paths
        return {"d": is_dir, "f": is_file}.get(kind, is_dir or is_file)


def host_flavor(db: Database) -> str:
    """The flavor `setup` runs as: the most specific flavor declared in the database (all
    others must be its fallbacks), or NULL when everything is flavorless."""
    declared = sorted(f for f in db.flavors() if f not in (NULL_FLAVOR, "ANY"))
    for candidate in declared:
        if all(f in flavor_fallbacks(candidate) for f in declared):
            return candidate
    if declared:
        raise SourceError(
            f"{db.path} holds products of flavors that cannot run together: {', '.join(declared)}"
        )
    return NULL_FLAVOR


def flavor_fallbacks(flavor: str) -> list[str]:
    """The flavors UPS tries for a host flavor, most specific first:
    Linux64bit+2.6-2.12, Linux64bit+2.6, Linux64bit, NULL, ANY."""
    out = [flavor]
    base, plus, release = flavor.partition("+")
    if plus:
        parts = release.split("-")
        while len(parts) > 1:
            parts.pop()
            out.append(f"{base}+{'-'.join(parts)}")
        out.append(base)
    return list(dict.fromkeys([*out, NULL_FLAVOR, "ANY"]))


def _prod_dir_prefix(dbconfig: bytes | None, db_path: str) -> str | None:
    """PROD_DIR_PREFIX of a dbconfig, `${UPS_THIS_DB}` replaced; None without one."""
    if dbconfig is None:
        return None
    for line in _text(DBCONFIG, dbconfig).splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip().upper() == "PROD_DIR_PREFIX":
            value = value.strip().strip('"').replace("${UPS_THIS_DB}", db_path)
            return value.rstrip("/") or "/"
    return None


def _ancestors(directory: str) -> list[str]:
    out = []
    while directory:
        out.append(directory)
        directory = posixpath.dirname(directory)
    return out


def _text(path: str, data: bytes) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        return data.decode("latin-1")
