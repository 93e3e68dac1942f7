"""Spack's `sbang`: the script installed at `<root>/bin/sbang`, and the shebang hook that makes
scripts with an overlong first line run through it (`spack/hooks/sbang.py`).

A file whose owner, group or other may execute it, whose first line starts with `#!` and is
longer than 127 bytes (with its newline; a line not ended within 4096 bytes is left alone), gets
`#!/bin/sh <root>/bin/sbang` as a new first line; the old one becomes the second (`--!` for lua,
`//!` for node, `<?php ... ?>` for php). A file already starting with that line is left alone.
`sbang.sh` is `bin/sbang` of the Spack the fixtures were made with (Apache-2.0 OR MIT).
"""

from __future__ import annotations

import re
from importlib import resources

SHEBANG_LIMIT = 127  # Linux's, which Spack uses
LINE_LIMIT = 4096  # Spack reads no further for the first line
EXEC_BITS = 0o111
INTERPRETER = re.compile(rb"#![ \t]*?([^ \t\0\n]+)")


def sbang_script() -> bytes:
    return resources.files("ocibuild.spack").joinpath("sbang.sh").read_bytes()


def sbang_line(sbang: str) -> bytes:
    return f"#!/bin/sh {sbang}\n".encode()


def shebang_prefix(head: bytes, mode: int, sbang: str) -> tuple[bytes, bytes] | None:
    """For a file of `mode` whose first bytes (at least `LINE_LIMIT` of them, or all) are
    `head`: None when the hook leaves it, else (the bytes to write instead of its first line,
    that first line)."""
    if not mode & EXEC_BITS or not head.startswith(b"#!"):
        return None
    end = head.find(b"\n", 0, LINE_LIMIT)
    line = head[: end + 1] if end >= 0 else head[:LINE_LIMIT]
    if len(line) <= SHEBANG_LIMIT:
        return None
    if len(line) == LINE_LIMIT:  # Spack's check compares a byte with b"\n": never equal
        return None
    new = sbang_line(sbang)
    if line == new:
        return None
    m = INTERPRETER.match(line)
    if m is None or not m.group(1):
        return None
    interpreter = m.group(1)
    if interpreter.endswith((b"/lua", b"/luajit")):
        second = b"--!" + line[2:]
    elif interpreter.endswith(b"/node"):
        second = b"//!" + line[2:]
    elif interpreter.endswith(b"/php"):
        second = b"<?php " + line + b" ?>"
    else:
        second = line
    return new + second, line
