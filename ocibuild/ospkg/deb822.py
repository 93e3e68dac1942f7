"""Debian control-file syntax (deb822): paragraphs of `Field: value` with folded lines."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def paragraphs(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """Parse paragraphs; continuation lines are kept (joined with newlines), comments dropped.
    Field names keep their spelling; look them up as written in Debian Policy."""
    fields: dict[str, str] = {}
    last = ""
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line.strip():
            if fields:
                yield fields
                fields, last = {}, ""
            continue
        if line.startswith("#"):
            continue
        if line[0] in " \t":
            if last:
                fields[last] += "\n" + line
            continue
        name, colon, value = line.partition(":")
        if not colon:
            continue
        last = name.strip()
        fields[last] = value.strip()
    if fields:
        yield fields


def format_paragraph(fields: dict[str, str]) -> str:
    """A paragraph as dpkg writes it (continuation lines keep their leading space)."""
    out = []
    for name, value in fields.items():
        first, newline, rest = value.partition("\n")
        out.append(f"{name}: {first}".rstrip() + ("\n" + rest if newline else ""))
    return "\n".join(out) + "\n"


def folded(value: str) -> list[str]:
    """The lines of a multi-line field (`SHA256:` lists, `Conffiles:`), stripped."""
    return [line.strip() for line in value.splitlines() if line.strip()]
