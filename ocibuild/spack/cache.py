"""A Spack build cache (layout version 2), read: its index, its spec files, where its tarballs are.

    <mirror>/build_cache/index.json                      a Spack database of every pushed spec
    <mirror>/build_cache/<arch>-<compiler>-<cver>-<name>-<ver>-<hash>.spec.json[.sig]
    <mirror>/build_cache/<arch>/<compiler>-<cver>/<name>-<ver>/<same name>.spack
    <mirror>/build_cache/_pgp/index.json, <FINGERPRINT>.pub   the keys it was signed with

(`spack/binary_distribution.py`: `tarball_name`, `tarball_directory_name`,
`_build_tarball_in_stage_dir`, `generate_package_index`.) A spec file holds the package's whole
DAG (`nodes[0]` the package itself, build dependencies included) and the sha256 of its tarball
as stored. Everything here is untrusted input: the index only says which hashes exist; what is
installed comes from spec files whose signature was checked (or a cache the recipe trusts).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ocibuild.errors import SourceError
from ocibuild.jsonread import read_json
from ocibuild.spack.layout import path_component

BUILD_CACHE = "build_cache"
LAYOUT_VERSION = 2  # the newest layout Spack 0.23 writes and reads
DEPTYPES = frozenset({"build", "link", "run", "test"})

JsonObject = Mapping[str, object]


@dataclass(frozen=True)
class Dependency:
    name: str
    hash: str
    deptypes: frozenset[str]


@dataclass(frozen=True)
class Node:
    """One concrete spec: what Spack's `node_dict_with_hashes` says of it. `record` is that
    dict as read (the database records it as it is)."""

    name: str
    version: str
    hash: str
    platform: str
    os: str
    target: str
    compiler_name: str
    compiler_version: str
    namespace: str
    external: str | None  # the external prefix (`/usr`), None when Spack installs it
    dependencies: tuple[Dependency, ...]
    record: JsonObject

    @property
    def arch(self) -> str:
        return f"{self.platform}-{self.os}-{self.target}"

    @property
    def compiler(self) -> str:
        return f"{self.compiler_name}-{self.compiler_version}"

    @property
    def short(self) -> str:
        """`name@version/hash7`, as Spack names a spec in messages."""
        return f"{self.name}@{self.version}/{self.hash[:7]}"

    def deps(self, *deptypes: str) -> list[Dependency]:
        """The dependencies of any of these types, in the spec's order."""
        wanted = set(deptypes)
        return [d for d in self.dependencies if d.deptypes & wanted]


@dataclass(frozen=True)
class IndexRecord:
    node: Node
    in_buildcache: bool


@dataclass(frozen=True)
class SpecFile:
    """A package's spec file: its DAG (the package first) and its tarball's sha256."""

    nodes: tuple[Node, ...]
    checksum: str

    @property
    def node(self) -> Node:
        return self.nodes[0]


def _object(value: object, what: str) -> JsonObject:
    if not isinstance(value, dict):
        raise SourceError(f"{what}: expected a JSON object, found {type(value).__name__}")
    return value


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise SourceError(f"{what}: expected a non-empty string, found {value!r}")
    return value


def parse_node(value: object, what: str) -> Node:
    """A node dict (spec file, index, spack.lock): every field ocibuild reads is checked."""
    d = _object(value, what)
    name = _text(d.get("name"), f"{what}: name")
    where = f"{what}: {name}"
    hash_ = _text(d.get("hash"), f"{where}: hash")
    if not hash_.isalnum():
        raise SourceError(f"{where}: hash {hash_!r} is not a Spack DAG hash")
    arch = _object(d.get("arch"), f"{where}: arch")
    compiler = _object(d.get("compiler"), f"{where}: compiler")
    external = d.get("external")
    path = None
    if external is not None:
        path = _text(_object(external, f"{where}: external").get("path"), f"{where}: external")
    deps = []
    raw_deps = d.get("dependencies", [])
    if not isinstance(raw_deps, list):
        raise SourceError(f"{where}: dependencies: expected a list")
    for raw in raw_deps:
        dep = _object(raw, f"{where}: dependency")
        params = _object(dep.get("parameters", {}), f"{where}: dependency parameters")
        types = params.get("deptypes", [])
        if not isinstance(types, list) or not set(types) <= DEPTYPES:
            raise SourceError(f"{where}: dependency deptypes {types!r}")
        deps.append(
            Dependency(
                _text(dep.get("name"), f"{where}: dependency name"),
                _text(dep.get("hash"), f"{where}: dependency hash"),
                frozenset(str(t) for t in types),
            )
        )
    node = Node(
        name=name,
        version=_text(str(d.get("version", "")), f"{where}: version"),
        hash=hash_,
        platform=_text(arch.get("platform"), f"{where}: arch platform"),
        os=_text(arch.get("platform_os"), f"{where}: arch platform_os"),
        target=_text(_target(arch.get("target")), f"{where}: arch target"),
        compiler_name=_text(compiler.get("name"), f"{where}: compiler name"),
        compiler_version=_text(str(compiler.get("version", "")), f"{where}: compiler version"),
        namespace=str(d.get("namespace", "")),
        external=path,
        dependencies=tuple(deps),
        record=d,
    )
    for part in (node.name, node.version, node.arch, node.compiler):
        path_component(part, where)
    return node


def _target(value: object) -> object:
    """A target is a name, or (for a microarchitecture) an object with one."""
    return value.get("name") if isinstance(value, dict) else value


def parse_index(data: bytes, url: str) -> dict[str, IndexRecord]:
    """`index.json`: every record by DAG hash."""
    try:
        doc: Any = read_json(data, url)
    except ValueError as e:
        raise SourceError(f"{url}: not a JSON build cache index ({e})") from None
    db = _object(_object(doc, url).get("database"), f"{url}: database")
    installs = _object(db.get("installs"), f"{url}: installs")
    out = {}
    for key, raw in installs.items():
        record = _object(raw, f"{url}: {key}")
        node = parse_node(record.get("spec"), url)
        if node.hash != key:
            raise SourceError(f"{url}: record {key} holds the spec of {node.short}")
        out[key] = IndexRecord(node, record.get("in_buildcache") is True)
    return out


def parse_spec_file(data: bytes, what: str) -> SpecFile:
    """A spec file's JSON (the signed text of a `.spec.json.sig`)."""
    if data[:2] == b"\x1f\x8b":
        raise SourceError(f"{what}: a compressed spec file (Spack refuses these too)")
    try:
        doc = _object(read_json(data, what), what)
    except ValueError as e:
        raise SourceError(f"{what}: not a JSON spec file ({e})") from None
    version = doc.get("buildcache_layout_version", 0)
    if not isinstance(version, int) or version > LAYOUT_VERSION:
        raise SourceError(
            f"{what}: build cache layout version {version!r}; ocibuild reads up to "
            f"{LAYOUT_VERSION} (Spack 0.23)"
        )
    spec = _object(doc.get("spec"), f"{what}: spec")
    raw_nodes = spec.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise SourceError(f"{what}: no spec nodes")
    checksum = _object(doc.get("binary_cache_checksum"), f"{what}: binary_cache_checksum")
    if checksum.get("hash_algorithm") != "sha256":
        raise SourceError(f"{what}: tarball checksum is not sha256")
    digest = _text(checksum.get("hash"), f"{what}: binary_cache_checksum hash")
    if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        raise SourceError(f"{what}: tarball checksum {digest!r} is not a sha256")
    return SpecFile(tuple(parse_node(n, what) for n in raw_nodes), digest)


# -- where things are ----------------------------------------------------------------------


def _url(mirror: str, *parts: str) -> str:
    return "/".join([mirror.rstrip("/"), *(urllib.parse.quote(p) for p in parts)])


def index_url(mirror: str) -> str:
    return _url(mirror, BUILD_CACHE, "index.json")


def keys_url(mirror: str, name: str = "index.json") -> str:
    return _url(mirror, BUILD_CACHE, "_pgp", name)


def file_name(node: Node) -> str:
    return f"{node.arch}-{node.compiler}-{node.name}-{node.version}-{node.hash}"


def spec_url(mirror: str, node: Node, signed: bool) -> str:
    return _url(
        mirror, BUILD_CACHE, file_name(node) + (".spec.json.sig" if signed else ".spec.json")
    )


def tarball_url(mirror: str, node: Node) -> str:
    directory = [node.arch, node.compiler, f"{node.name}-{node.version}"]
    return _url(mirror, BUILD_CACHE, *directory, file_name(node) + ".spack")
