"""The one safe-path resolver: a layer's own tree, checked member by member as it is built.

Every source of untrusted paths (product tarballs, deb and rpm payloads, host trees) feeds its
members through a `LayerTree`, and the layer writer feeds every entry of every layer through
one, so what a check lets through cannot depend on the source. A member is refused when

- its path leaves the tree's root (`..`, a NUL byte) or is a whiteout name (`.wh.*`) that
  only the layer format itself may write;
- it lies under a non-directory of the same layer: under a file (no unpacker can create it)
  or under a symlink (writing through a link is how archives escape; no real tree is archived
  that way);
- it is a symlink whose target, resolved against the layer's tree *following the layer's own
  symlinks* like the kernel would, climbs above the image root or ends outside the root, so
  chains like `sub/l -> ..`, `esc -> sub/l/../etc` are caught whatever the order of members;
  a `..` may only leave a directory of the same tree (what it leaves might otherwise be a
  symlink of another layer, which is how a chain would span layers);
- it is a hardlink whose target is not a regular file of the same tree, under its root;
- it is a device node or a FIFO: one rule for every archive source (product tarballs, debs,
  rpms, Spack tarballs); only the layer writer's own tree takes them (`specials`).

Symlinks are checked by `finish()`, against the complete tree, since a later member can turn an
earlier, harmless-looking target into an escape; an `eager` tree (a streamed tarball) also
checks each one as it comes, to stop early. Paths of lower layers are unknown here: a link
may descend into one, but never `..` out of it.
"""

from __future__ import annotations

import posixpath
import tarfile

from ocibuild.errors import UnsafePathError
from ocibuild.layer.entry import OPAQUE_WHITEOUT, WHITEOUT_PREFIX, Kind, clean_path
from ocibuild.limits import MEMBER_SIZE

MAX_HOPS = 40  # symlinks followed in one resolution, as Linux's MAXSYMLINKS
MAX_ID = 2**31 - 1  # the largest uid, gid or device number a member may carry
SPECIALS = {Kind.CHAR: "character device", Kind.BLOCK: "block device", Kind.FIFO: "FIFO"}


class _Escape(Exception):
    pass


class LayerTree:
    """Paths of one layer seen so far; `root` is the image-relative directory the source must
    stay inside ("" for the image root); `what` prefixes every error (tarball, package, line)."""

    def __init__(
        self,
        root: str = "",
        what: str = "",
        whiteouts: bool = False,
        eager: bool = False,
        specials: bool = False,
    ) -> None:
        self.root = clean_path(root)
        self.what = what
        self.whiteouts = whiteouts
        self.specials = specials  # device nodes and FIFOs taken (the layer writer's own tree)
        self.eager = eager  # check each symlink as it comes too, not only in `finish`
        self.kinds: dict[str, Kind] = {"": Kind.DIR}
        self.links: dict[str, str] = {}
        self.link_what: dict[str, str] = {}  # who wrote each symlink, for `finish`
        self.nonempty: set[str] = set()  # directories something was recorded under

    def _fail(self, message: str, what: str = "") -> UnsafePathError:
        prefix = what or self.what
        return UnsafePathError(f"{prefix}: {message}" if prefix else message)

    def inside(self, path: str) -> bool:
        return not self.root or path == self.root or path.startswith(self.root + "/")

    def kind(self, path: str) -> Kind | None:
        return self.kinds.get(path)

    def add(self, path: str, kind: Kind, link: str = "", what: str = "") -> None:
        """Record one member (path image-relative and normalized), or raise naming it."""
        if not path:
            if kind is not Kind.DIR:
                raise self._fail(f"a {kind.value} cannot replace the image root", what)
            return
        if not self.inside(path):
            raise self._fail(f"/{path} is outside /{self.root}", what)
        if kind in SPECIALS and not self.specials:
            raise self._fail(special_refused(f"/{path}", kind), what)
        parent, _, name = path.rpartition("/")
        if WHITEOUT_PREFIX in path:
            if any(p.startswith(WHITEOUT_PREFIX) for p in parent.split("/")):
                raise self._fail(
                    f"/{path}: a directory with a whiteout name ({WHITEOUT_PREFIX}*)", what
                )
            if name.startswith(WHITEOUT_PREFIX) and not self.whiteouts:
                which = "an opaque whiteout" if name == OPAQUE_WHITEOUT else "a whiteout name"
                raise self._fail(f"/{path}: {which} ({WHITEOUT_PREFIX}*) is not allowed here", what)
        # every recorded path has only directories above it: check up to the first known one
        known = self.kinds.get(parent)
        if known is None:
            missing = []
            ancestor = parent
            while (known := self.kinds.get(ancestor)) is None:
                missing.append(ancestor)
                ancestor = ancestor.rpartition("/")[0]
            self._check_parent(path, ancestor, known, what)
            for directory in missing:
                self.kinds[directory] = Kind.DIR
                self.nonempty.add(directory)
            self.nonempty.add(ancestor)
        elif known is not Kind.DIR:
            self._check_parent(path, parent, known, what)
        self.nonempty.add(parent)
        previous = self.kinds.get(path)
        if previous is not None and previous is not Kind.DIR and kind is Kind.DIR:
            raise self._fail(f"/{path} is both a {previous.value} and a directory", what)
        if previous is Kind.DIR and kind is not Kind.DIR and path in self.nonempty:
            raise self._fail(f"/{path} is a {kind.value} but has members under it", what)
        self.kinds[path] = kind
        if previous is Kind.SYMLINK:
            del self.links[path], self.link_what[path]
        if kind is Kind.SYMLINK:
            self.links[path] = link
            self.link_what[path] = what
            if self.eager:
                self.check_symlink(path, what)
        elif kind is Kind.HARDLINK:
            target = clean_path(link, "hardlink target")
            if not self.inside(target) or self.kinds.get(target) is not Kind.FILE:
                raise self._fail(
                    f"hardlink /{path} -> /{target}: the target is not a file of the same "
                    + ("archive" if not self.root else f"tree under /{self.root}"),
                    what,
                )

    def _check_parent(self, path: str, parent: str, kind: Kind, what: str) -> None:
        if kind is Kind.SYMLINK:
            raise self._fail(
                f"/{path} is under /{parent}, a symlink of the same layer "
                f"(-> {self.links.get(parent, '')})",
                what,
            )
        if kind is not Kind.DIR:
            raise self._fail(f"/{path} is under /{parent}, which is a {kind.value}", what)

    def check_symlink(self, path: str, what: str = "") -> None:
        target = self.links[path]
        if not target or "\x00" in target:
            raise self._fail(f"symlink /{path} has an invalid target {target!r}", what)
        try:
            resolved = self.resolve(posixpath.dirname(path), target)
        except _Escape as e:
            raise self._fail(f"symlink /{path} -> {target} {e}", what) from None
        if not self.inside(resolved):
            raise self._fail(
                f"symlink /{path} -> {target} resolves to /{resolved}, outside /{self.root}", what
            )

    def resolve(self, base: str, target: str) -> str:
        """`target` (a link text) resolved from directory `base`, following this layer's
        symlinks; raises `_Escape` on climbing above the image root or a symlink loop."""
        pending = (target.split("/") if not target.startswith("/") else ["", *target.split("/")])[
            ::-1
        ]
        resolved = [] if target.startswith("/") else [p for p in base.split("/") if p]
        hops = 0
        while pending:
            part = pending.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if not resolved:
                    raise _Escape("climbs above the image root")
                here = "/".join(resolved)
                if self.kinds.get(here) is not Kind.DIR:
                    # what `..` leaves might be a symlink of another layer: only a directory
                    # this tree creates is known to have the parent it seems to have
                    raise _Escape(
                        f"goes back out of /{here}, which is not a directory of the same archive"
                    )
                resolved.pop()
                continue
            resolved.append(part)
            here = "/".join(resolved)
            if self.kinds.get(here) is Kind.SYMLINK:
                hops += 1
                if hops > MAX_HOPS:
                    raise _Escape("has too many levels of symlinks")
                link = self.links[here]
                resolved.pop()
                if link.startswith("/"):
                    resolved = []
                pending.extend(link.split("/")[::-1])
        return "/".join(resolved)

    def finish(self) -> None:
        """Re-check every symlink against the complete tree."""
        for path in self.links:
            self.check_symlink(path, self.link_what[path])


def check_member_numbers(info: tarfile.TarInfo, what: str) -> None:
    """The numbers a tar member declares, believed only within range, whatever tar it is in (a
    source's archive, a layer of the store read back): its size up to the limit, a sparse
    member not at all (its map turns a few bytes into terabytes of holes), owners and device
    numbers as a file system can hold them."""
    if info.issparse() or any(key.startswith("GNU.sparse.") for key in info.pax_headers):
        raise UnsafePathError(f"{what}: member {info.name!r} is a sparse file (not supported)")
    MEMBER_SIZE.check(info.size, f"{what}: member {info.name!r}")
    for field in ("uid", "gid", "devmajor", "devminor"):
        value = getattr(info, field)
        if not 0 <= value <= MAX_ID:
            raise UnsafePathError(f"{what}: member {info.name!r}: {field} {value} is out of range")


def special_refused(name: str, kind: Kind) -> str:
    """The one message refusing a device node or FIFO, whatever archive holds it."""
    return f"{name} is a {SPECIALS[kind]}: no archive source takes device nodes or FIFOs"


TAR_SPECIALS = {
    tarfile.CHRTYPE: Kind.CHAR,
    tarfile.BLKTYPE: Kind.BLOCK,
    tarfile.FIFOTYPE: Kind.FIFO,
}


def check_tar_member(info: tarfile.TarInfo, what: str) -> None:
    """Refuse a tar member no layer source takes: a device node or FIFO, sparse (old GNU or
    PAX: a few bytes that claim terabytes of holes), of a negative size or past the member size
    limit, or whose name is not UTF-8 (it could not be written back as it was read)."""
    if info.type in TAR_SPECIALS:
        raise UnsafePathError(
            f"{what}: {special_refused(f'member {info.name!r}', TAR_SPECIALS[info.type])}"
        )
    check_member_numbers(info, what)
    for text in (info.name, info.linkname):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise UnsafePathError(f"{what}: member {text!r}: a name that is not UTF-8") from None
