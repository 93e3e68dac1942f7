"""`spack`: packages of a Spack build cache, verified, relocated into an install tree as
`spack install --cache-only` would, in few layers, with Spack's database, an optional view and
the environment Spack prints frozen into the image config.

    - spack: {mirror: URL, specs: [zlib@1.2.13, ...], keys: [signing.pub], into: {root: /opt/spack}}
    - spack: {mirror: URL, lock: spack.lock, trusted: true, view: /usr/local}

Planning reads the roots (the cache's index, or the recipe's `spack.lock`), then every needed
package's spec file (signed ones verified against `keys`): their DAGs say what is installed and
their checksums key the layers, so a layer in the cache downloads nothing. A layer's plan
downloads its tarballs when started, checks each against its spec file's sha256 before reading
it, and streams the relocated members. The last layer holds `bin/sbang`, `.spack-db` and the
view; its runtime-config hook freezes `spack load` (or, with a view, `spack env activate`).
See docs/spack.md.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

from ocibuild.errors import FetchError, LockError, MissingDownloadError, SourceError
from ocibuild.fetch import Fetched, Fetcher
from ocibuild.jsonread import read_json
from ocibuild.layer.codec import threads
from ocibuild.layer.entry import Entry, Kind, bytes_entry, clean_path
from ocibuild.oci import RuntimeConfig
from ocibuild.progress import Message, plural
from ocibuild.sbom import Component
from ocibuild.sources.base import LayerPlan, fetcher_for, input_key
from ocibuild.sources.session import ImageFiles, LayerContext
from ocibuild.sources.specs import SpackSpec
from ocibuild.spack import cache
from ocibuild.spack.cache import Node, SpecFile
from ocibuild.spack.dag import RUN_DEPTYPES, match_roots, parse_root, run_closure, topological
from ocibuild.spack.database import database_entries, database_index
from ocibuild.spack.environment import activate_changes, apply_changes, load_changes
from ocibuild.spack.layering import Sized, group_packages
from ocibuild.spack.layerjob import LayerJob, PackageJob, checked_scan, relocation
from ocibuild.spack.layout import InstallTree, padding_length
from ocibuild.spack.lockfile import read_lock
from ocibuild.spack.relocate import relocate_link
from ocibuild.spack.sbang import sbang_script
from ocibuild.spack.tarball import KeepBudget, PackageTarball, Relocation, Scan, layer_entries
from ocibuild.spack.view import Conflict, ViewSource, merged_view
from ocibuild.trust.openpgp import Keyring, Keys, keyring, verify_clearsigned
from ocibuild.variables import expand

LAYER_FORMAT = 1  # bump when the entries made from the same tarballs change
RUNTIMES = ("gcc-runtime", "glibc", "intel-oneapi-runtime")  # packages tagged `runtime`


def plan(spec: SpackSpec, ctx: LayerContext) -> list[LayerPlan]:
    try:
        return _plan(spec, ctx)
    except (FetchError, LockError, SourceError) as e:
        raise e.located(ctx.origin) from None


@dataclass
class _Install:
    """What one `spack` layer source installs, and its tarballs as they arrive."""

    spec: SpackSpec
    mirror: str
    tree: InstallTree
    fetcher: Fetcher
    roots: list[Node]
    nodes: dict[str, Node]
    specs: dict[str, SpecFile]  # by hash, every installed package's verified spec file
    installed: list[Node]  # the roots' run closure, no externals, Spack's topological order
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _tarballs: dict[str, Future[PackageTarball]] = field(default_factory=dict)
    _scans: dict[str, Future[Scan]] = field(default_factory=dict)

    def prefix(self, node: Node) -> str:
        return self.tree.prefix(node)

    def tarball_url(self, node: Node) -> str:
        return cache.tarball_url(self.mirror, node)

    def start(self, nodes: Sequence[Node]) -> None:
        """Begin downloading these packages' tarballs (once each), in this order."""
        with self._lock:
            wanted = [n for n in nodes if n.hash not in self._tarballs]
            started = self.fetcher.start_all([(self.tarball_url(n), n.short) for n in wanted])
            for node, fetching in zip(wanted, started, strict=True):
                self._tarballs[node.hash] = self._checked(node, fetching)

    def _checked(self, node: Node, fetching: Future[Fetched]) -> Future[PackageTarball]:
        out: Future[PackageTarball] = Future()
        expected = self.specs[node.hash].checksum

        def done(f: Future[Fetched]) -> None:
            error = f.exception()
            if error is not None:
                out.set_exception(error)
                return
            got = f.result()
            if got.sha256 != expected:
                out.set_exception(
                    SourceError(
                        f"{node.short}: tarball {got.url} has sha256 {got.sha256}, "
                        f"its spec file says {expected}; nothing of it was used"
                    )
                )
                return
            out.set_result(PackageTarball(node, got.url, got.path, got.size, got.sha256))

        fetching.add_done_callback(done)
        return out

    def scan(self, node: Node, keep: KeepBudget | None = None) -> Scan:
        """The first pass over a package's tarball (once, whoever asks first: with `keep`,
        the writer of its layer)."""
        self.start([node])
        with self._lock:
            mine = node.hash not in self._scans
            if mine:
                self._scans[node.hash] = Future()
            future = self._scans[node.hash]
        if mine:
            try:
                future.set_result(
                    checked_scan(self._tarballs[node.hash].result(), self.prefix(node), keep)
                )
            except BaseException as e:
                future.set_exception(e)
        return future.result()

    def claim(self, nodes: Sequence[Node]) -> dict[str, Future[Scan]]:
        """The scans of `nodes` that nobody has begun, now promised by the caller (who makes
        them elsewhere, and settles every future it got: others wait on them)."""
        with self._lock:
            claimed = {n.hash: Future[Scan]() for n in nodes if n.hash not in self._scans}
            self._scans.update(claimed)
        return claimed

    def scanned(self, node: Node) -> Scan | None:
        """The package's scan if this build already made it (its layer was written), else
        None: a layer found in the cache reads no tarball."""
        with self._lock:
            future = self._scans.get(node.hash)
        if future is None or not future.done() or future.exception() is not None:
            return None
        return future.result()

    def scans(self, nodes: Sequence[Node], keep: KeepBudget | None = None) -> list[Scan]:
        self.start(nodes)
        with ThreadPoolExecutor(max_workers=max(1, min(len(nodes), threads()))) as pool:
            return list(pool.map(lambda node: self.scan(node, keep), nodes))

    def prefixes(self, node: Node) -> dict[str, str]:
        """Spack's `hashes_to_prefixes`: the link closure and the direct run dependencies."""
        linked = topological([node], self.nodes, ("link",))
        run = [self.nodes[d.hash] for d in node.deps("run") if d.hash in self.nodes]
        return {n.hash: self.prefix(n) for n in [*linked, *run] if n.external is None}

    def relocation(self, node: Node, found: Scan) -> Relocation:
        tarball = self._tarballs[node.hash].result()
        return relocation(tarball, found, self.prefix(node), self.tree, self.prefixes(node))

    def job(self, nodes: Sequence[Node], readers: int) -> tuple[LayerJob, Callable[[object], None]]:
        """The layer of `nodes` as a job for another process, once their tarballs are in and
        checked, and what keeps the scans it makes: they are claimed (`claim`) for it."""
        claimed = self.claim(nodes)

        def settle(outcome: object) -> None:
            """The job's scans (a list, in `nodes`' order), or the error that ended it."""
            if isinstance(outcome, BaseException):
                for future in claimed.values():
                    future.set_exception(outcome)
                return
            for node, found in zip(nodes, cast(list[Scan], outcome), strict=True):
                if node.hash in claimed:
                    claimed[node.hash].set_result(found)

        try:
            packages = tuple(
                PackageJob(self._tarballs[n.hash].result(), self.prefix(n), self.prefixes(n))
                for n in nodes
            )
        except BaseException as e:
            settle(e)
            raise
        return LayerJob(packages, self.tree, readers), settle

    def component(self, node: Node) -> Component:
        qualifiers = f"arch={node.arch}&compiler={node.compiler}&hash={node.hash}"
        return Component(
            kind="spack",
            name=node.name,
            version=node.version,
            purl=f"pkg:spack/{urllib.parse.quote(node.name)}@{urllib.parse.quote(node.version)}?{qualifiers}",
            sha256=self.specs[node.hash].checksum,
            url=self.tarball_url(node),
            path=self.prefix(node),
            properties=(("spack:hash", node.hash), ("spack:namespace", node.namespace)),
        )


def _plan(spec: SpackSpec, ctx: LayerContext) -> list[LayerPlan]:
    mirror = _mirror(spec, ctx)
    fetcher = fetcher_for(ctx, mirror=mirror)
    tree = InstallTree(spec.into.root, padding_length(spec.into.padded_length))
    keys = _keys(spec, ctx, fetcher, mirror)
    roots, nodes = _roots(spec, ctx, fetcher, mirror)
    specs = _spec_files(fetcher, mirror, roots, nodes, keys)
    installed = [n for n in topological(roots, nodes) if n.external is None]
    install = _Install(spec, mirror, tree, fetcher, roots, nodes, specs, installed)
    ctx.report(
        Message(f"spack {spec.what}: {plural(len(installed), 'package')} into {tree.padded_root}")
    )
    sizes = _sizes(install, spec.layering)
    groups = group_packages(
        [Sized(n, sizes.get(n.hash, 0)) for n in installed],
        roots,
        nodes,
        spec.layering,
        spec.max_layers - 1,
    )
    plans = [_package_layer([s.node for s in g], install, sizes) for g in groups]
    return [*plans, _metadata_layer(install, ctx)]


def _mirror(spec: SpackSpec, ctx: LayerContext) -> str:
    url = expand(spec.mirror, ctx.session.settings.variables).rstrip("/")
    if not urllib.parse.urlsplit(url).scheme:
        return (ctx.session.recipe_dir / url).resolve().as_uri()
    return url


def _keys(spec: SpackSpec, ctx: LayerContext, fetcher: Fetcher, mirror: str) -> Keyring | None:
    """The keys spec files must be signed by; None for a cache the recipe trusts unsigned."""
    if spec.trusted:
        return None
    files = tuple(ctx.session.recipe_dir / k for k in spec.keys)
    armored = []
    if spec.mirror_keys:
        listed = fetcher.fetch_fresh(cache.keys_url(mirror), "the mirror's keys")
        for fingerprint in sorted(_key_names(listed.path.read_bytes(), listed.url)):
            got = fetcher.fetch(cache.keys_url(mirror, f"{fingerprint}.pub"), f"key {fingerprint}")
            armored.append(got.path.read_text(errors="replace"))
    what = "the recipe's keys" + (f" and those of {mirror}" if spec.mirror_keys else "")
    return keyring(Keys(what, files, tuple(armored)))


def _key_names(data: bytes, url: str) -> list[str]:
    try:
        doc: Any = read_json(data, url)
        listed = doc["keys"]
    except (ValueError, KeyError, TypeError):
        raise SourceError(f"{url}: not a Spack key index") from None
    names = [str(k) for k in listed]
    if not all(k.isalnum() for k in names):
        raise SourceError(f"{url}: key names must be fingerprints")
    return names


def _roots(
    spec: SpackSpec, ctx: LayerContext, fetcher: Fetcher, mirror: str
) -> tuple[list[Node], dict[str, Node]]:
    if spec.lock is not None:
        lock = read_lock(ctx.session.recipe_dir / spec.lock)
        return list(lock.roots), dict(lock.nodes)
    got = fetcher.fetch_fresh(cache.index_url(mirror), "build cache index")
    index = cache.parse_index(got.path.read_bytes(), got.url)
    pool = [r.node for r in index.values() if r.in_buildcache]
    roots = match_roots([parse_root(s) for s in spec.specs], pool, mirror)
    return roots, {h: r.node for h, r in index.items()}


def _spec_files(
    fetcher: Fetcher,
    mirror: str,
    roots: Sequence[Node],
    nodes: dict[str, Node],
    keys: Keyring | None,
) -> dict[str, SpecFile]:
    """Every installed package's spec file, verified; `nodes` becomes the verified DAGs'."""
    verified: dict[str, SpecFile] = {}
    wanted = list(roots)
    needed_by: dict[str, tuple[Node, str]] = {}

    def verified_spec(node: Node, future: Future[Fetched]) -> SpecFile:
        try:
            got = future.result()
        except MissingDownloadError:
            if node.hash in needed_by:
                parent, types = needed_by[node.hash]
                raise SourceError(
                    f"{parent.short} needs {node.short} ({types}), which is not in the "
                    f"build cache {mirror}"
                ) from None
            raise
        if keys is not None:
            data, _ = verify_clearsigned(got.path, keys, got.url)
        else:
            data = got.path.read_bytes()
        found = cache.parse_spec_file(data, got.url)
        if found.node.hash != node.hash:
            raise SourceError(f"{got.url}: holds the spec of {found.node.short}, not {node.short}")
        return found

    while wanted:
        urls = [(cache.spec_url(mirror, n, keys is not None), f"spec of {n.short}") for n in wanted]
        futures = fetcher.start_all(urls)
        # each signature is checked by a gpgv of its own, so several at once; the first
        # failure in the list's order is the one raised, as one at a time
        with ThreadPoolExecutor(max_workers=max(1, min(len(wanted), threads()))) as pool:
            found_specs = list(pool.map(verified_spec, wanted, futures))
        for node, found in zip(wanted, found_specs, strict=True):
            verified[node.hash] = found
            for n in found.nodes:
                nodes[n.hash] = n  # the signed DAG over the unsigned index
        wanted = []
        closure = run_closure(list(roots), nodes)
        for node in closure:
            for dep in node.deps(*RUN_DEPTYPES):
                needed_by.setdefault(dep.hash, (node, ", ".join(sorted(dep.deptypes))))
        wanted = [n for n in closure if n.external is None and n.hash not in verified]
    return verified


def _sizes(install: _Install, layering: str) -> dict[str, int]:
    """Tarball sizes (pinned, cached or asked: nothing downloaded), which `auto` groups by and
    the heaviest layers are written first by."""
    if layering == "single":
        return {}
    nodes = install.installed
    with ThreadPoolExecutor(max_workers=max(1, install.fetcher.parallel)) as pool:
        sizes = list(pool.map(install.fetcher.size, [install.tarball_url(n) for n in nodes]))
    return {n.hash: s or 0 for n, s in zip(nodes, sizes, strict=True)}


def _tree_key(install: _Install) -> list[object]:
    return [install.tree.root, install.tree.padded_length]


def _package_layer(group: list[Node], install: _Install, sizes: dict[str, int]) -> LayerPlan:
    key = input_key(
        "spack",
        LAYER_FORMAT,
        _tree_key(install),
        [(n.hash, install.specs[n.hash].checksum) for n in group],
    )
    readers = max(1, min(len(group), threads()))

    def entries() -> Iterator[Entry]:
        found = install.scans(group, KeepBudget())
        relocations = [install.relocation(n, s) for n, s in zip(group, found, strict=True)]
        return layer_entries(relocations, clean_path(install.tree.root), readers)

    names = [n.short for n in group]
    listed = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    what = names[0] if len(group) == 1 else plural(len(group), "package")
    return LayerPlan(
        key=key,
        description=f"spack: {what}",
        entries=entries,
        created_by=f"ocibuild spack {install.spec.what} -> {install.tree.padded_root}: {listed}",
        every_core=readers > 1,
        weight=sum(sizes.get(n.hash, 0) for n in group),
        start=lambda: install.start(group),
        components=lambda: [install.component(n) for n in group],
        apart=lambda: install.job(group, readers),
    )


def _metadata_layer(install: _Install, ctx: LayerContext) -> LayerPlan:
    spec, tree = install.spec, install.tree
    epoch = ctx.session.source_date_epoch
    key = input_key(
        "spack-metadata",
        LAYER_FORMAT,
        _tree_key(install),
        spec.view,
        [n.hash for n in install.roots],
        [(n.hash, install.specs[n.hash].checksum) for n in install.installed],
        epoch,
    )

    def entries() -> list[Entry]:
        root = clean_path(tree.root)
        out = [
            Entry(root, Kind.DIR, mode=0o755),
            Entry(f"{root}/bin", Kind.DIR, mode=0o755),
            bytes_entry(f"{root}/bin/sbang", sbang_script(), mode=0o2755),
        ]
        index = database_index(
            install.installed, [r.hash for r in install.roots], install.nodes, tree, epoch
        )
        out += database_entries(index, tree)
        if spec.view is not None:
            out += _view(install, ctx)
        return out

    def runtime_config(runtime: RuntimeConfig, files: ImageFiles) -> RuntimeConfig:
        is_dir = _directories(install, files, spec.view)
        if spec.view is not None:
            view = "/" + clean_path(spec.view)
            changes = activate_changes(install.roots, install.nodes, install.prefix, is_dir, view)
        else:
            changes = load_changes(install.roots, install.nodes, install.prefix, is_dir)
        return runtime.with_env(apply_changes(changes, runtime.env_dict()))

    where = f" and the view {spec.view}" if spec.view else ""
    return LayerPlan(
        key=key,
        description=f"spack: sbang, database{where}",
        entries=entries,
        created_by=f"ocibuild spack {spec.what} -> {tree.padded_root}: sbang, .spack-db{where}",
        start=(lambda: install.start(install.installed)) if spec.view else None,
        runtime_config=runtime_config,
    )


def _view(install: _Install, ctx: LayerContext) -> list[Entry]:
    """The view of the roots' link and run closure (the highest version of each runtime)."""
    order = [n for n in topological(install.roots, install.nodes) if n.external is None]
    newest: dict[str, Node] = {}
    for n in order:
        if n.name in RUNTIMES and (n.name not in newest or _version(n) > _version(newest[n.name])):
            newest[n.name] = n
    order = [n for n in order if n.name not in RUNTIMES or newest[n.name] is n]
    sources = []
    for node, found in zip(order, install.scans(order), strict=True):
        maps = install.relocation(node, found).maps
        listing = {
            rel: (
                kind,
                relocate_link(link, maps.binary)
                if maps.moved and rel in found.info.relocate_links
                else link,
            )
            for rel, (kind, link) in found.tree.items()
        }
        sources.append(ViewSource(node.name, node.short, install.prefix(node), listing))

    def report(conflict: Conflict) -> None:
        ctx.report(
            Message(
                f"view {install.spec.view}: {conflict.path} is in two packages; "
                f"{conflict.first} is used, {conflict.second} is not",
                level="warning",
            )
        )

    return merged_view(sources, clean_path(install.spec.view or ""), report)


def _version(node: Node) -> tuple[tuple[int, str], ...]:
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in node.version.split("."))


def _directories(install: _Install, files: ImageFiles, view: str | None) -> Callable[[str], bool]:
    """Whether a path is a directory of the image that holds a file, for the paths the frozen
    environment asks about (under the packages' prefixes and the externals'). When this build
    wrote every package's layer, the prefixes are known from the tarballs' scans, and only the
    image below the source is read for the externals (the source writes nothing there); else
    the whole image is read, in one pass."""
    dirs: set[str] = set()

    def add_parents(path: str) -> None:
        parent = path.rpartition("/")[0]
        while parent and parent not in dirs:
            dirs.add(parent)
            parent = parent.rpartition("/")[0]

    externals = [clean_path(n.external) for n in install.nodes.values() if n.external]
    scans = [(clean_path(install.prefix(n)), install.scanned(n)) for n in install.installed]
    ours = [clean_path(install.tree.root), *([clean_path(view)] if view is not None else [])]
    if all(found is not None for _, found in scans) and not any(
        _under(mine, external) for mine in ours for external in externals
    ):
        for prefix, found in scans:
            assert found is not None
            for rel, (kind, _) in found.tree.items():
                if kind is Kind.FILE:
                    add_parents(f"{prefix}/{rel}")
        image, tops = files.below, externals
    else:
        image, tops = files.whole, [prefix for prefix, _ in scans] + externals
    if tops:
        wanted = tuple(top + "/" if top else "" for top in tops)

        def record(path: str) -> bool:
            if path.startswith(wanted):
                add_parents(path)
            return False

        image.collect(record)
    return lambda path: clean_path(path) in dirs


def _under(path: str, top: str) -> bool:
    return not top or path == top or path.startswith(top + "/")
