"""A Spack environment view: the packages' prefixes merged into one tree of symlinks, as
`spack env view` makes it (`spack/filesystem_view.py: SimpleFilesystemView.add_specs`,
`llnl/util/link_tree.py: SourceMergeVisitor`), from the tarballs' listings.

Packages in Spack's order (the roots' link and run closure, root first, externals left out).
Each prefix is walked in name order, `.spack` directories skipped: directories become real
directories of the view, files and symlinks become symlinks to their absolute path in the
prefix; a symlink at depth 0 or 1 to a directory deeper in its own parent is walked as that
directory. Where two packages give a file the first one wins (an environment view ignores such
conflicts; they are reported); a file where another package has a directory is an error naming
the path and both packages. Then `.spack/<name>/` mirrors each package's own `.spack/`.
Spack makes the view a symlink to `._<name>/<hash>` for atomic updates of a live system; an
image is never updated in place, so the view is the directory itself.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from ocibuild.errors import SourceError
from ocibuild.layer.entry import Entry, Kind

METADATA = ".spack"
MAX_HOPS = 40

Listing = Mapping[str, tuple[Kind, str]]  # path relative to the prefix -> kind, symlink target


@dataclass(frozen=True)
class ViewSource:
    name: str
    short: str  # for messages
    prefix: str  # absolute
    tree: Listing


@dataclass(frozen=True)
class Conflict:
    path: str  # in the view
    first: str  # the source that wins (absolute)
    second: str


@dataclass
class _Merge:
    """Spack's SourceMergeVisitor state: directories and files of the view, in order."""

    ignore: Callable[[str], bool]
    projection: str = ""
    directories: dict[str, str] = field(default_factory=dict)  # dst -> source (absolute)
    files: dict[str, str] = field(default_factory=dict)  # dst -> source (absolute)
    file_conflicts: list[Conflict] = field(default_factory=list)
    fatal: list[Conflict] = field(default_factory=list)

    def dst(self, rel: str) -> str:
        return posixpath.join(self.projection, rel) if self.projection else rel

    def set_projection(self, projection: str) -> None:
        self.projection = posixpath.normpath(projection) if projection else ""
        if self.projection in ("", "."):
            self.projection = ""
            return
        path = ""
        for part in self.projection.split("/"):
            path = posixpath.join(path, part)
            if path in self.files:
                self.fatal.append(Conflict(path, self.files[path], f"<projection>/{path}"))
            else:
                self.directories[path] = f"<projection>/{path}"

    def visit_dir(self, source: str, rel: str) -> bool:
        dst = self.dst(rel)
        if self.ignore(rel):
            return False
        if dst in self.files:
            self.fatal.append(Conflict(dst, self.files[dst], source))
            return False
        self.directories.setdefault(dst, source)
        return True

    def visit_file(
        self, source: str, rel: str, same: Callable[[str, str], bool], link: bool
    ) -> None:
        dst = self.dst(rel)
        if self.ignore(rel):
            return
        if dst in self.directories:
            self.fatal.append(Conflict(dst, self.directories[dst], source))
        elif dst in self.files:
            if not same(self.files[dst], source):
                self.file_conflicts.append(Conflict(dst, self.files[dst], source))
                return
            if not link:  # the real file wins over a symlink to it
                del self.files[dst]
                self.files[dst] = source
        else:
            self.files[dst] = source


class _Resolver:
    """Paths of the packages' prefixes followed through their symlinks, as the kernel would
    on the installed tree (for `os.path.samefile` and `realpath`)."""

    def __init__(self, sources: Sequence[ViewSource]) -> None:
        self.sources = sorted(sources, key=lambda s: -len(s.prefix))
        self.children: dict[str, dict[str, list[str]]] = {}

    def listing(self, real_dir: str) -> list[str]:
        """The names in the (real) directory `real_dir`, sorted, in whichever prefix it is."""
        for s in self.sources:
            if real_dir == s.prefix or real_dir.startswith(s.prefix + "/"):
                if s.prefix not in self.children:
                    index: dict[str, list[str]] = {}
                    for path in sorted(s.tree):
                        parent, _, name = path.rpartition("/")
                        index.setdefault(parent, []).append(name)
                    self.children[s.prefix] = index
                return self.children[s.prefix].get(real_dir[len(s.prefix) + 1 :], [])
        return []

    def lookup(self, path: str) -> tuple[Kind, str] | None:
        for s in self.sources:
            if path.startswith(s.prefix + "/"):
                return s.tree.get(path[len(s.prefix) + 1 :])
            if path == s.prefix:
                return (Kind.DIR, "")
        return None

    def realpath(self, path: str) -> str:
        parts = [p for p in path.split("/") if p][::-1]
        done: list[str] = []
        hops = 0
        while parts:
            part = parts.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if done:
                    done.pop()
                continue
            done.append(part)
            found = self.lookup("/" + "/".join(done))
            if found is not None and found[0] is Kind.SYMLINK and hops < MAX_HOPS:
                hops += 1
                done.pop()
                if found[1].startswith("/"):
                    done = []
                parts.extend([p for p in found[1].split("/") if p][::-1])
        return "/" + "/".join(done)

    def same(self, a: str, b: str) -> bool:
        return self.realpath(a) == self.realpath(b)

    def is_dir(self, path: str) -> bool:
        found = self.lookup(self.realpath(path))
        return found is not None and found[0] is Kind.DIR


def _walk(source: ViewSource, top: str, merge: _Merge, resolver: _Resolver) -> None:
    """`visit_directory_tree` of `source.prefix/top` over its listing: depth first, with a
    stack of listings, not recursion, so that a tree of any depth is walked."""
    stack = [_listing(source, top, resolver, "", 0)]
    while stack:
        real_here, names, rel, depth = stack[-1]
        name = next(names, None)
        if name is None:
            stack.pop()
            continue
        child = posixpath.join(rel, name) if rel else name
        absolute = (
            posixpath.join(source.prefix, top, child)
            if top
            else posixpath.join(source.prefix, child)
        )
        kind = resolver.lookup(posixpath.join(real_here, name))
        if kind is None:
            continue
        if kind[0] is Kind.SYMLINK:
            if resolver.is_dir(absolute):
                real_parent = resolver.realpath(posixpath.dirname(absolute))
                as_dir = depth <= 1 and resolver.realpath(absolute).startswith(real_parent)
                if as_dir:
                    if merge.visit_dir(absolute, child):
                        stack.append(_listing(source, top, resolver, child, depth + 1))
                    continue
            merge.visit_file(absolute, child, resolver.same, link=True)
        elif kind[0] is Kind.DIR:
            if merge.visit_dir(absolute, child):
                stack.append(_listing(source, top, resolver, child, depth + 1))
        else:
            merge.visit_file(absolute, child, resolver.same, link=False)


def _listing(
    source: ViewSource, top: str, resolver: _Resolver, rel: str, depth: int
) -> tuple[str, Iterator[str], str, int]:
    """A directory of the walk: its real path, its names, where it is, how deep."""
    here = posixpath.join(top, rel) if rel else top
    real_here = resolver.realpath(posixpath.join(source.prefix, here) if here else source.prefix)
    return real_here, iter(resolver.listing(real_here)), rel, depth


def merged_view(
    sources: Sequence[ViewSource], view: str, report: Callable[[Conflict], None]
) -> list[Entry]:
    """The view's entries under `view` (image-relative); file conflicts go to `report`."""
    resolver = _Resolver(sources)
    merge = _Merge(ignore=lambda rel: posixpath.basename(rel) == METADATA)
    for source in sources:
        merge.set_projection("")
        _walk(source, "", merge, resolver)
    _fail_on(merge.fatal, sources)
    for conflict in merge.file_conflicts:
        report(conflict)
    metadata = _Merge(ignore=lambda rel: False)
    for source in sources:
        if (METADATA) not in source.tree:
            continue
        metadata.set_projection(posixpath.join(METADATA, source.name))
        _walk(source, METADATA, metadata, resolver)
    _fail_on(metadata.fatal + metadata.file_conflicts, sources)
    entries = [Entry(view, Kind.DIR, mode=0o755)]
    for merged in (merge, metadata):
        entries += [
            Entry(posixpath.join(view, d), Kind.DIR, mode=0o755) for d in merged.directories
        ]
        entries += [
            Entry(posixpath.join(view, dst), Kind.SYMLINK, mode=0o777, link=src)
            for dst, src in merged.files.items()
        ]
    return entries


def _fail_on(conflicts: Sequence[Conflict], sources: Sequence[ViewSource]) -> None:
    if not conflicts:
        return

    def owner(path: str) -> str:
        for s in sources:
            if path == s.prefix or path.startswith(s.prefix + "/"):
                return s.short
        return "the view"

    listed = "; ".join(
        f"{c.path}: {c.first} ({owner(c.first)}) and {c.second} ({owner(c.second)})"
        for c in conflicts[:10]
    )
    more = f" and {len(conflicts) - 10} more" if len(conflicts) > 10 else ""
    raise SourceError(f"view: a file and a directory at the same place: {listed}{more}")
