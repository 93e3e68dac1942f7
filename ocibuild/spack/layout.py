"""Spack's install tree: its padded root and the prefix of each spec in it.

`install_tree: {root: R, padded_length: N}` (`spack/store.py: parse_install_tree`): the padded
root is R followed by `__spack_path_placeholder__` directories, the last one cut, so that it is
exactly N characters long (`spack/util/path.py: add_padding`); `padded_length: true` is
`PATH_MAX` (4096 on Linux) less 300. Prefixes follow the default projection
`{architecture}/{compiler.name}-{compiler.version}/{name}-{version}-{hash}`; `sbang` lives at
`R/bin/sbang`, the database in `<padded root>/.spack-db`.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Protocol

from ocibuild.errors import UnsafePathError
from ocibuild.layer.entry import clean_path

PADDING_CHARS = "__spack_path_placeholder__"
PATH_MAX = 4096  # `getconf PATH_MAX /` on Linux
MAX_INSTALL_PATH_LENGTH = 300  # what `padded_length: true` leaves for the projection


class SpecNode(Protocol):
    """What a prefix is made of."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def hash(self) -> str: ...
    @property
    def arch(self) -> str: ...
    @property
    def compiler(self) -> str: ...


def padding_length(value: int | bool | None) -> int | None:
    """`padded_length` as Spack reads it: `true` is PATH_MAX less 300, `false` none."""
    if value is True:
        return PATH_MAX - MAX_INSTALL_PATH_LENGTH
    if value is None or value is False:
        return None
    return int(value)


def add_padding(root: str, length: int | None) -> str:
    """`root` padded to `length` characters (unchanged when it is that long already, or one
    character short: a path cannot grow by a lone `/`)."""
    missing = (length or 0) - len(root)
    if missing <= 1:
        return root
    width = missing - 1  # the `/` joining root and padding
    reps, extra = divmod(width, len(PADDING_CHARS) + 1)
    return posixpath.join(root, "/".join([PADDING_CHARS] * reps + [PADDING_CHARS[:extra]]))


def path_component(value: str, what: str) -> str:
    """One part of a prefix (a name, a version), as Spack's `format_path` makes it: `/` and
    NUL become `_`; a part that would climb out of its directory is refused."""
    part = value.replace("/", "_").replace("\0", "_")
    if part in ("", ".", ".."):
        raise UnsafePathError(f"{what} {value!r} cannot be a path component")
    return part


def relative_prefix(node: SpecNode) -> str:
    """The default projection of a spec."""
    parts = [node.arch, node.compiler, f"{node.name}-{node.version}-{node.hash}"]
    return "/".join(path_component(p, f"{node.name} {node.hash[:7]}:") for p in parts)


@dataclass(frozen=True)
class InstallTree:
    """An install tree: `root` the configured (unpadded) root, absolute."""

    root: str
    padded_length: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", "/" + clean_path(self.root, "install tree root"))

    @property
    def padded_root(self) -> str:
        return add_padding(self.root, self.padded_length)

    @property
    def sbang(self) -> str:
        return posixpath.join(self.root, "bin", "sbang")

    @property
    def database(self) -> str:
        return posixpath.join(self.padded_root, ".spack-db")

    def prefix(self, node: SpecNode) -> str:
        return posixpath.join(self.padded_root, relative_prefix(node))
