"""The ELF dynamic section's RPATH/RUNPATH and the PT_INTERP interpreter, rewritten in place as
Spack does (`spack/util/elf.py: substitute_rpath_and_pt_interp_in_place_or_raise`).

A file that is not an ELF executable or shared library, or whose dynamic section Spack could not
parse either (two RPATHs, no unique string table, a string table no section header sizes), is
left alone, as Spack leaves it. Each RPATH entry (empty ones dropped) and the interpreter that
start with a key of the map get that key replaced; the new string is written over the old one,
the rest of the old one filled with NUL bytes. A string that would grow is refused: Spack would
call `patchelf`, which rewrites the file's layout.
"""

from __future__ import annotations

import bisect
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from ocibuild.errors import SourceError

MAGIC = b"\x7fELF"
ET_EXEC, ET_DYN = 2, 3
PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_STRTAB, DT_RPATH, DT_RUNPATH = 0, 5, 15, 29
SHT_STRTAB = 3


class NotElf(Exception):
    """What Spack's parser calls an `ElfParsingError`: the file is skipped."""


@dataclass(frozen=True)
class CString:
    offset: int
    value: bytes


@dataclass(frozen=True)
class ElfStrings:
    rpath: CString | None
    interpreter: CString | None


def _read(f: BinaryIO, offset: int, size: int) -> bytes:
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise NotElf("truncated")
    return data


def _c_string(data: bytes, start: int) -> bytes:
    end = data.find(b"\0", start)
    if end < 0 or start < 0:
        raise NotElf("unterminated string")
    return data[start:end]


def read_strings(f: BinaryIO) -> ElfStrings:
    """The RPATH (or RUNPATH) and interpreter of the ELF file `f`; NotElf when Spack's parser
    would give up."""
    try:
        return _read_strings(f)
    except struct.error:
        raise NotElf("malformed") from None


def _read_strings(f: BinaryIO) -> ElfStrings:
    ident = _read(f, 0, 16)
    if ident[:4] != MAGIC or ident[4] not in (1, 2) or ident[5] not in (1, 2):
        raise NotElf("not ELF")
    wide, order = ident[4] == 2, "<" if ident[5] == 1 else ">"
    header_fmt = order + ("HHLQQQLHHHHHH" if wide else "HHLLLLLHHHHHH")
    (e_type, _, _, _, e_phoff, e_shoff, _, _, _, e_phnum, _, e_shnum, _) = struct.unpack(
        header_fmt, _read(f, 16, struct.calcsize(header_fmt))
    )
    if e_type not in (ET_EXEC, ET_DYN):
        raise NotElf("not an executable or shared library")
    ph_fmt = order + ("LLQQQQQQ" if wide else "LLLLLLLL")
    ph_size = struct.calcsize(ph_fmt)
    table = _read(f, e_phoff, e_phnum * ph_size)
    loads: list[tuple[int, int]] = []
    interp = dynamic = None
    for i in range(e_phnum):
        fields = struct.unpack_from(ph_fmt, table, i * ph_size)
        if wide:
            p_type, _, p_offset, p_vaddr, _, p_filesz, _, _ = fields
        else:
            p_type, p_offset, p_vaddr, _, p_filesz, _, _, _ = fields
        if p_filesz == 0:
            continue
        if p_type == PT_LOAD:
            loads.append((p_vaddr, p_offset))
        elif p_type == PT_INTERP:
            interp = (p_offset, p_filesz)
        elif p_type == PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
    loads.sort()
    interpreter = None
    if interp is not None:
        interpreter = CString(interp[0], _c_string(_read(f, *interp), 0))
    rpath = None
    if dynamic is not None and loads:
        rpath = _rpath(f, dynamic, loads, wide, order, e_shoff, e_shnum)
    return ElfStrings(rpath, interpreter)


def _rpath(
    f: BinaryIO,
    dynamic: tuple[int, int],
    loads: list[tuple[int, int]],
    wide: bool,
    order: str,
    e_shoff: int,
    e_shnum: int,
) -> CString | None:
    entry_fmt = order + ("qQ" if wide else "lL")
    entry_size = struct.calcsize(entry_fmt)
    data = _read(f, dynamic[0], dynamic[1] // entry_size * entry_size)
    rpaths, strtabs = [], []
    for i in range(dynamic[1] // entry_size):
        tag, value = struct.unpack_from(entry_fmt, data, i * entry_size)
        if tag == DT_NULL:
            break
        if tag in (DT_RPATH, DT_RUNPATH):
            rpaths.append(value)
        elif tag == DT_STRTAB:
            strtabs.append(value)
    if len(rpaths) > 1:
        raise NotElf("more than one RPATH/RUNPATH")
    if len(strtabs) != 1:
        raise NotElf("no unique string table")
    if not rpaths:
        return None
    vaddrs = [v for v, _ in loads]
    index = bisect.bisect_right(vaddrs, strtabs[0]) - 1
    vaddr, offset = loads[max(index, 0)]
    strtab = offset - vaddr + strtabs[0]
    size = _strtab_size(f, strtab, wide, order, e_shoff, e_shnum)
    value = _c_string(_read(f, strtab, size), rpaths[0])
    return CString(strtab + rpaths[0], value)


def _strtab_size(f: BinaryIO, offset: int, wide: bool, order: str, shoff: int, shnum: int) -> int:
    sh_fmt = order + ("LLQQQQLLQQ" if wide else "LLLLLLLLLL")
    sh_size = struct.calcsize(sh_fmt)
    table = _read(f, shoff, shnum * sh_size)
    for i in range(shnum):
        fields = struct.unpack_from(sh_fmt, table, i * sh_size)
        if fields[1] == SHT_STRTAB and fields[4] == offset:
            return int(fields[5])
    raise NotElf("string table size unknown")


def substitute(f: BinaryIO, mapping: Sequence[tuple[bytes, bytes]], what: str) -> bool:
    """Relocate the RPATH and interpreter of the ELF file `f` (opened r+b) in place; False when
    there was nothing to do (not ELF, nothing matched)."""
    if not mapping:
        return False
    try:
        strings = read_strings(f)
    except NotElf:
        return False
    keys = re.compile(b"|".join(re.escape(old) for old, _ in mapping))
    new = dict(mapping)
    updates = []
    if strings.rpath is not None:
        entries = [e for e in strings.rpath.value.split(b":") if e]
        if any(keys.match(e) for e in entries):
            moved = b":".join(_replace_start(e, keys, new) for e in entries)
            updates.append(("RPATH", strings.rpath, moved))
    if strings.interpreter is not None and keys.match(strings.interpreter.value):
        moved = _replace_start(strings.interpreter.value, keys, new)
        updates.append(("interpreter", strings.interpreter, moved))
    for name, old, value in updates:
        if len(value) > len(old.value):
            raise SourceError(
                f"{what}: its {name} would grow from {len(old.value)} to {len(value)} "
                "characters; relocation only shortens (install into a shorter root, or build "
                "with more padding)"
            )
    for _, old, value in updates:
        f.seek(old.offset)
        f.write(value + b"\0" * (len(old.value) - len(value)))
    return bool(updates)


def _replace_start(value: bytes, keys: re.Pattern[bytes], new: dict[bytes, bytes]) -> bytes:
    """`value` with the key it starts with replaced."""
    m = keys.match(value)
    return value if m is None else new[m.group()] + value[m.end() :]
