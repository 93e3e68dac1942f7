"""The relocations that run on streams give what Spack's whole-file code gives, whatever the
chunk boundaries: its text regex (spack/relocate_text.py: TextFilePrefixReplacer) and its
binary replacement (BinaryFilePrefixReplacer), written out here from Spack's code as the
reference, on random input with a tiny chunk size."""

from __future__ import annotations

import io
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocibuild.errors import SourceError
from ocibuild.spack import relocate
from ocibuild.spack.relocate import TextReplacer, relocate_binary

OLD_ROOT = b"/opt/build/__pad__/__p"
MAPPING = (
    (b"/opt/build/bin/sbang", b"/new/bin/sbang"),
    (OLD_ROOT + b"/pkg-1.0-abc", b"/n/pkg-1.0-abc"),
    (OLD_ROOT, b"/n"),
    (b"#!/bin/bash /sp/bin/sbang", b"#!/bin/sh /new/bin/sbang"),
)
PIECES = [
    *(k for k, _ in MAPPING),
    b"/",
    b"-",
    b"_",
    b"a",
    b"Z",
    b"0",
    b" ",
    b"\0",
    b"=",
    b"\n",
    b":",
    b"/x",
]


def spack_text(data: bytes) -> bytes:
    table = dict(MAPPING)
    keys = b"|".join(re.escape(k) for k, _ in MAPPING)
    regex = re.compile(b"(?<![\\w\\-_/])([\\w\\-_]*?)(%s)([\\w\\-_/]*)" % keys)
    return regex.sub(lambda m: m.group(1) + table[m.group(2)] + m.group(3), data)


def spack_binary(data: bytes) -> bytes:
    table = dict(MAPPING[1:3])
    regex = re.compile(b"(" + b"|".join(re.escape(k) for k in table) + b")([^\0]{0,7}\0)?")
    out = bytearray(data)
    for m in regex.finditer(data):
        old, new = m.group(1), table[m.group(1)]
        shorter = len(old) - len(new)
        suffix = m.end(0) - m.end(1) - 1
        if m.end(0) == m.end(1) or suffix >= 7 or old[-7 + suffix :] == new[-7 + suffix :]:
            rep = b"/" * shorter + new
        elif shorter > 7:
            rep = new + m.group(2)
        else:
            raise ValueError("CannotShrinkCString")
        out[m.start() : m.start() + len(rep)] = rep
    return bytes(out)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=60), st.integers(1, 9))
def test_text_relocation_equals_spacks_regex(parts: list[bytes], chunk: int) -> None:
    data = b"".join(parts)
    out = io.BytesIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(relocate, "CHUNK", chunk)
        TextReplacer(MAPPING).copy(io.BytesIO(data), out)
    assert out.getvalue() == spack_text(data)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=60), st.integers(1, 9))
def test_binary_relocation_equals_spacks(parts: list[bytes], chunk: int) -> None:
    data = b"".join(parts)
    try:
        expected = spack_binary(data)
    except ValueError:
        expected = None
    f = io.BytesIO(data)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(relocate, "CHUNK", chunk)
        if expected is None:
            with pytest.raises(SourceError, match="cannot shorten the C string"):
                relocate_binary(f, MAPPING[1:3], "f")
            return
        relocate_binary(f, MAPPING[1:3], "f")
    assert f.getvalue() == expected


def test_a_longer_binary_string_is_refused() -> None:
    with pytest.raises(SourceError, match="cannot replace the 4-character /old by the longer"):
        relocate_binary(io.BytesIO(b"x/old/lib\0"), ((b"/old", b"/longer"),), "f")
