"""`files`: local files and directories (COPY/ADD), and inline content."""

from __future__ import annotations

import fnmatch
import os
import posixpath
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ocibuild.errors import Origin, SourceError, UnsafePathError
from ocibuild.layer.entry import Entry, Kind, bytes_entry, clean_path
from ocibuild.layer.safepath import LayerTree
from ocibuild.layer.tarstream import sorted_entries
from ocibuild.progress import human_size, plural
from ocibuild.sbom import file_component
from ocibuild.sources.base import LayerPlan, input_key
from ocibuild.sources.session import LayerContext
from ocibuild.sources.specs import FileItem


def git_mode(st_mode: int) -> int:
    """The mode git gives a checkout under umask 022, whatever the host's umask was: 0755 for
    directories and files the owner may execute, 0644 for other files."""
    if stat.S_ISDIR(st_mode) or st_mode & stat.S_IXUSR:
        return 0o755
    return 0o644


def _excluded(rel: str, patterns: list[str]) -> bool:
    name = posixpath.basename(rel)
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in patterns)


def _xattrs(path: str) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for name in sorted(names):
        if name.startswith("security.selinux"):
            continue
        try:
            out[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return out


def _item_entries(item: FileItem, ctx: LayerContext, identities: dict[str, object]) -> list[Entry]:
    origin = item.origin or ctx.origin
    try:
        dest = clean_path(item.dest, "dest")
    except UnsafePathError as e:
        raise SourceError(str(e), origin) from None
    uid, gid = item.owner if isinstance(item.owner, tuple) else (0, 0)
    mode = item.mode if isinstance(item.mode, int) else None
    if item.content is not None:
        if item.dest.endswith("/") or not dest:
            raise SourceError(f"dest {item.dest!r} of inline content must be a file path", origin)
        data = item.content.encode()
        return [bytes_entry(dest, data, mode=0o644 if mode is None else mode, uid=uid, gid=gid)]
    src = Path(item.src or "").expanduser()
    if not src.is_absolute():
        src = ctx.session.recipe_dir / src
    try:
        st = src.lstat()
    except FileNotFoundError:
        hint = f": {item.hint}" if item.hint else ""
        raise SourceError(f"src {item.src!r} does not exist ({src}){hint}", origin) from None
    except OSError as e:
        raise SourceError(f"src {item.src!r}: {e.strerror}", origin) from None
    copy = _Copy(item.exclude, uid, gid, mode, item.preserve_modes, origin, identities)
    if stat.S_ISDIR(st.st_mode):
        if dest:
            copy.add(str(src), st, dest)
        copy.walk(str(src), dest, "")
    else:
        if item.dest.endswith("/"):
            dest = posixpath.join(dest, src.name)
        if not dest:
            raise SourceError(
                f"dest {item.dest!r} is the image root: a file needs a path "
                f"(like {'/' + src.name!r}, or a directory ending in '/')",
                origin,
            )
        copy.add(str(src), st, dest)
    return copy.entries


@dataclass
class _Copy:
    """Entries for a host tree: symlinks kept, hardlinks kept as links, excluded names left out."""

    exclude: list[str]
    uid: int
    gid: int
    mode: int | None
    preserve_modes: bool
    origin: Origin
    identities: dict[str, object]
    entries: list[Entry] = field(default_factory=list)
    links: dict[tuple[int, int], str] = field(default_factory=dict)

    def walk(self, directory: str, dest: str, rel_dir: str) -> None:
        """Every entry under `directory`, parents before children, siblings by name: with a
        stack of listings, not recursion, so that a tree of any depth is walked."""
        stack = [(self._listing(directory), rel_dir)]
        while stack:
            children, parent = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                continue
            rel = f"{parent}/{child.name}" if parent else child.name
            if _excluded(rel, self.exclude):
                continue
            st = child.stat(follow_symlinks=False)
            self.add(child.path, st, f"{dest}/{rel}" if dest else rel)
            if stat.S_ISDIR(st.st_mode):
                stack.append((self._listing(child.path), rel))

    def _listing(self, directory: str) -> Iterator[os.DirEntry[str]]:
        try:
            with os.scandir(directory) as it:
                return iter(sorted(it, key=lambda d: d.name))
        except OSError as e:
            raise SourceError(f"cannot read {directory}: {e.strerror}", self.origin) from None

    def add(self, path: str, st: os.stat_result, dest: str) -> None:
        perm = stat.S_IMODE(st.st_mode) if self.preserve_modes else git_mode(st.st_mode)
        if self.mode is not None and not stat.S_ISDIR(st.st_mode):
            perm = self.mode
        uid, gid = self.uid, self.gid
        if stat.S_ISDIR(st.st_mode):
            self.entries.append(
                Entry(dest, Kind.DIR, mode=perm, uid=uid, gid=gid, xattrs=_xattrs(path))
            )
        elif stat.S_ISLNK(st.st_mode):
            self.entries.append(
                Entry(dest, Kind.SYMLINK, mode=0o777, uid=uid, gid=gid, link=os.readlink(path))
            )
        elif stat.S_ISREG(st.st_mode):
            if st.st_nlink > 1:
                first = self.links.setdefault((st.st_dev, st.st_ino), dest)
                if first != dest:
                    self.entries.append(
                        Entry(dest, Kind.HARDLINK, mode=perm, uid=uid, gid=gid, link=first)
                    )
                    return
            self.identities[dest] = [
                st.st_dev,
                st.st_ino,
                st.st_size,
                st.st_mtime_ns,
                st.st_ctime_ns,
            ]
            self.entries.append(
                Entry(
                    dest,
                    Kind.FILE,
                    mode=perm,
                    uid=uid,
                    gid=gid,
                    size=st.st_size,
                    open=lambda p=path: open(p, "rb"),  # type: ignore[misc]
                    xattrs=_xattrs(path),
                    source=path,
                )
            )
        else:
            raise SourceError(f"{path} is not a regular file, directory or symlink", self.origin)


def entries_key(
    entries: list[Entry], ctx: LayerContext, identities: dict[str, object]
) -> list[object]:
    """What the layer depends on: metadata of every entry, and for content either its sha256
    (inline content) or, for host files, their identity (path, device, inode, size, mtime,
    ctime), which changes whenever the content does, as make and git's index rely on."""
    out: list[object] = []
    for e in entries:
        content: object = ""
        if e.kind is Kind.FILE and e.source:
            content = [e.source, identities.get(e.path)]
        elif e.kind is Kind.FILE and e.open is not None:
            content = ctx.session.content_digest(e)
        out.append(
            [
                e.path,
                e.kind.value,
                e.mode,
                e.uid,
                e.gid,
                e.uname,
                e.gname,
                e.size,
                e.link,
                sorted((k, v.hex()) for k, v in e.xattrs.items()),
                content,
            ]
        )
    return out


def plan(spec: list[FileItem], ctx: LayerContext) -> list[LayerPlan]:
    identities: dict[str, object] = {}
    origins: dict[str, str] = {}  # path -> the recipe line of the item that wins it
    listed = []
    for item in spec:
        for e in _item_entries(item, ctx, identities):
            origins[e.path] = str(item.origin or ctx.origin)
            listed.append(e)
    entries = sorted_entries(listed)
    tree = LayerTree()
    for e in entries:
        tree.add(e.path, e.kind, e.link, what=origins[e.path])
    tree.finish()
    key = input_key("files", entries_key(entries, ctx, identities))
    count = sum(1 for e in entries if e.kind is Kind.FILE)
    size = sum(e.size for e in entries)
    dests = ", ".join(item.dest for item in spec[:3]) + (", ..." if len(spec) > 3 else "")
    return [
        LayerPlan(
            key=key,
            description=f"files: {plural(count, 'file')}, {human_size(size)} -> {dests}",
            entries=lambda: entries,
            created_by=f"ocibuild files {dests}",
            size_hint=size + 512 * (len(entries) + 2),
            components=lambda: [
                file_component(e.path, ctx.session.content_digest(e))
                for e in entries
                if e.kind is Kind.FILE
            ],
        )
    ]
