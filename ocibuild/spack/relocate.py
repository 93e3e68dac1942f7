"""Prefixes replaced in text files, binaries and symlinks, as `spack install --cache-only`
replaces them (`spack/binary_distribution.py: relocate_package`, `spack/relocate.py`,
`spack/relocate_text.py`), on streams of bounded memory.

The maps, in order (where several keys match at one place the earlier one wins):
  1. the old `sbang` path -> the new one (text only)
  2. each old prefix of the package's link closure and direct run dependencies -> its new prefix
  3. the old prefix -> the new prefix;  4. the old root -> the new root
  5. `#!/bin/bash <old spack>/bin/sbang` -> `#!/bin/sh <new sbang>` (text only; vestigial)
Mappings that change nothing are dropped.

Text: a key is replaced where the run of `[A-Za-z0-9_-]` just before it is not itself preceded by
one of those characters or a `/` (Spack's regex `(?<![\\w\\-_/])([\\w\\-_]*?)(KEYS)([\\w\\-_/]*)`);
the file may grow or shrink. Binaries: every occurrence of a key; its replacement, never longer,
keeps the C string's length by padding with `/` in front, or shortens a NUL-terminated string in
place when the 7 bytes before its NUL differ (`BinaryFilePrefixReplacer`). Symlinks listed in the
buildinfo whose target starts with a key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import BinaryIO

from ocibuild.errors import SourceError
from ocibuild.spack.buildinfo import BuildInfo

CHUNK = 1 << 20
SUFFIX_SAFETY = 7  # bytes of a C string's tail kept when a prefix in it is shortened
WORD = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
SLASH = ord("/")
PATH = WORD | {SLASH}

PrefixMap = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True)
class PrefixMaps:
    """What to replace in a package's files; `binaries` only when the prefix moved."""

    text: PrefixMap
    binary: PrefixMap
    moved: bool


def prefix_maps(
    info: BuildInfo,
    new_prefix: str,
    new_root: str,
    new_sbang: str,
    new_prefixes: Mapping[str, str],
) -> PrefixMaps:
    """The maps of a package whose buildinfo is `info`, installed at `new_prefix` under the
    padded root `new_root`; `new_prefixes`: the new prefix of each hash of its link closure and
    direct run dependencies (Spack's `hashes_to_prefixes`), in Spack's order."""
    text: dict[str, str] = {}
    binary: dict[str, str] = {}
    if info.sbang_install_path:
        text[info.sbang_install_path] = new_sbang
    for hash_, prefix in new_prefixes.items():
        old = info.hash_to_prefix.get(hash_)
        if old is not None:
            text.setdefault(old, prefix)
            binary.setdefault(old, prefix)
    for maps in (text, binary):
        maps.setdefault(info.old_prefix, new_prefix)
        maps.setdefault(info.buildpath, new_root)
    text.setdefault(f"#!/bin/bash {info.spackprefix}/bin/sbang", f"#!/bin/sh {new_sbang}")
    return PrefixMaps(_changing(text), _changing(binary), info.old_prefix != new_prefix)


def _changing(mapping: dict[str, str]) -> PrefixMap:
    return tuple((k.encode(), v.encode()) for k, v in mapping.items() if k != v)


def relocate_link(target: str, mapping: PrefixMap) -> str:
    """A symlink's target with the key it starts with replaced (unchanged when none does)."""
    for old, new in mapping:
        if target.encode().startswith(old):
            return (new + target.encode()[len(old) :]).decode()
    return target


# -- text ------------------------------------------------------------------------------------


class TextReplacer:
    """Spack's text relocation over a stream: the output equals what its whole-file regex
    gives, with memory bounded by the chunk size and the longest key."""

    def __init__(self, mapping: PrefixMap) -> None:
        self.mapping = dict(mapping)
        self.keys = re.compile(b"|".join(re.escape(k) for k, _ in mapping))
        self.longest = max(len(k) for k, _ in mapping)

    def copy(self, src: BinaryIO, dst: BinaryIO) -> None:
        buffer = b""
        carry = True  # whether a key could be replaced where the buffer starts (file start: yes)
        # the buffer starts inside the path that follows a replaced key (the regex's third
        # group, `[\w\-_/]*`, which it consumes: no key in it is replaced)
        skipping = False
        eof = False
        while not eof:
            chunk = src.read(CHUNK)
            eof = not chunk
            buffer += chunk
            # a key starting at or after `limit` may continue in the next chunk
            limit = len(buffer) if eof else max(0, len(buffer) - self.longest + 1)
            done = pos = 0
            # where the regex resumed after its last replacement, and what its look-behind
            # says there: the `[\w-]` run before a key never reaches back past it
            floor, floor_ok = 0, carry
            if skipping:
                pos = _path_end(buffer, 0)
                skipping = pos == len(buffer) and not eof
                floor, floor_ok = pos, carry if pos == 0 else False
            while not skipping and (m := self.keys.search(buffer, pos)) and m.start() < limit:
                if not _may_replace(buffer, m.start(), floor, floor_ok):
                    pos = m.start() + 1  # the regex moves on by one byte, not past the key
                    continue
                dst.write(buffer[done : m.start()])
                dst.write(self.mapping[m.group()])
                done = m.end()
                pos = _path_end(buffer, done)
                floor, floor_ok = pos, buffer[pos - 1] not in PATH
                skipping = pos == len(buffer) and not eof
            cut = max(done, pos, limit)
            dst.write(buffer[done:cut])
            carry = _may_replace(buffer, cut, floor, floor_ok)
            buffer = buffer[cut:]
        dst.write(buffer)


def _may_replace(buffer: bytes, start: int, floor: int, floor_ok: bool) -> bool:
    r"""Spack's look-behind for a key at `start`: the run of `[\w-]` before it may not follow
    a word character, `-` or `/`."""
    i = start
    while i > floor and buffer[i - 1] in WORD:
        i -= 1
    return floor_ok if i == floor else buffer[i - 1] not in PATH


def _path_end(buffer: bytes, start: int) -> int:
    r"""Where the run of path characters (`[\w\-_/]`) starting at `start` ends."""
    end = start
    while end < len(buffer) and buffer[end] in PATH:
        end += 1
    return end


# -- binaries --------------------------------------------------------------------------------


def relocate_binary(f: BinaryIO, mapping: PrefixMap, what: str) -> None:
    """Spack's binary string relocation of the file `f` (opened r+b), in place: every
    occurrence of a key, matched against the original bytes."""
    if not mapping:
        return
    new = dict(mapping)
    pattern = re.compile(
        b"(" + b"|".join(re.escape(k) for k, _ in mapping) + b")([^\0]{0,%d}\0)?" % SUFFIX_SAFETY
    )
    window = max(len(k) for k, _ in mapping) + SUFFIX_SAFETY + 1  # the longest match
    base = 0  # file offset of buffer[0]
    buffer = b""
    eof = False
    writes: list[tuple[int, bytes]] = []
    while not eof:
        f.seek(base + len(buffer))
        chunk = f.read(CHUNK)
        eof = not chunk
        buffer += chunk
        limit = len(buffer) if eof else max(0, len(buffer) - window + 1)
        pos = 0
        for m in pattern.finditer(buffer):
            if m.start() >= limit:
                break
            writes.append((base + m.start(), _replacement(m, new, what)))
            pos = m.end()
        cut = max(pos, limit)
        base += cut
        buffer = buffer[cut:]
        for offset, data in writes:
            f.seek(offset)
            f.write(data)
        writes.clear()


def _replacement(m: re.Match[bytes], new: dict[bytes, bytes], what: str) -> bytes:
    old = m.group(1)
    value = new[old]
    shorter = len(old) - len(value)
    if shorter < 0:
        raise SourceError(
            f"{what}: cannot replace the {len(old)}-character {old.decode(errors='replace')} "
            f"by the longer {value.decode(errors='replace')} ({len(value)} characters)"
        )
    terminated = m.end(0) > m.end(1)
    suffix = m.end(0) - m.end(1) - 1
    if (
        not terminated
        or suffix >= SUFFIX_SAFETY
        or old[-SUFFIX_SAFETY + suffix :] == value[-SUFFIX_SAFETY + suffix :]
    ):
        return b"/" * shorter + value
    if shorter > SUFFIX_SAFETY:
        return value + (m.group(2) or b"")
    raise SourceError(
        f"{what}: cannot shorten the C string {m.group()[:-1].decode(errors='replace')!r} "
        f"to hold {value.decode(errors='replace')}"
    )


def check_lengths(old_prefix: str, new_prefix: str, what: str) -> None:
    """Relocation in place only shortens: refuse a longer new prefix, naming both lengths."""
    if len(new_prefix) > len(old_prefix):
        raise SourceError(
            f"{what}: cannot relocate from its {len(old_prefix)}-character build prefix "
            f"{old_prefix} into the {len(new_prefix)}-character {new_prefix}: binaries are "
            "relocated in place, so the new prefix must not be longer (install into a shorter "
            "root, or use a cache built with more padding)"
        )
