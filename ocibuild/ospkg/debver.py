"""Debian version comparison (Debian Policy 5.6.12, dpkg's verrevcmp) and dependency relations."""

from __future__ import annotations

from dataclasses import dataclass


def _order(c: str) -> int:
    if not c or ("0" <= c <= "9"):
        return 0
    if c.isascii() and c.isalpha():
        return ord(c)
    if c == "~":
        return -1
    return ord(c) + 256


def _verrevcmp(a: str, b: str) -> int:
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        first_diff = 0
        while (i < la and not a[i].isdigit()) or (j < lb and not b[j].isdigit()):
            ac = _order(a[i] if i < la else "")
            bc = _order(b[j] if j < lb else "")
            if ac != bc:
                return ac - bc
            i, j = i + 1, j + 1
        while i < la and a[i] == "0":
            i += 1
        while j < lb and b[j] == "0":
            j += 1
        while i < la and j < lb and a[i].isdigit() and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i, j = i + 1, j + 1
        if i < la and a[i].isdigit():
            return 1
        if j < lb and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


@dataclass(frozen=True)
class DebVersion:
    epoch: int
    upstream: str
    revision: str

    @classmethod
    def parse(cls, text: str) -> DebVersion:
        text = text.strip()
        epoch_text, colon, rest = text.partition(":")
        if not colon:
            epoch_text, rest = "0", text
        if not epoch_text.isdigit():
            raise ValueError(f"version {text!r}: epoch {epoch_text!r} is not a number")
        upstream, dash, revision = rest.rpartition("-")
        if not dash:
            upstream, revision = rest, ""
        if not upstream or not upstream[0].isdigit():
            raise ValueError(f"version {text!r}: upstream version must start with a digit")
        return cls(int(epoch_text), upstream, revision)

    def compare(self, other: DebVersion) -> int:
        if self.epoch != other.epoch:
            return 1 if self.epoch > other.epoch else -1
        rc = _verrevcmp(self.upstream, other.upstream)
        if rc == 0:
            rc = _verrevcmp(self.revision, other.revision)
        return (rc > 0) - (rc < 0)

    def __str__(self) -> str:
        text = f"{self.epoch}:{self.upstream}" if self.epoch else self.upstream
        return f"{text}-{self.revision}" if self.revision else text


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1, like `dpkg --compare-versions a lt|eq|gt b`."""
    return DebVersion.parse(a).compare(DebVersion.parse(b))


_OPERATORS = {
    "<<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    "=": lambda c: c == 0,
    ">=": lambda c: c >= 0,
    ">>": lambda c: c > 0,
    "<": lambda c: c <= 0,  # obsolete spellings of <= and >=
    ">": lambda c: c >= 0,
}


@dataclass(frozen=True)
class Relation:
    """One alternative of a Depends field: `name[:arch] [(op version)]`."""

    name: str
    op: str = ""
    version: str = ""

    def allows(self, version: str) -> bool:
        if not self.op:
            return True
        return _OPERATORS[self.op](compare_versions(version, self.version))

    def __str__(self) -> str:
        return f"{self.name} ({self.op} {self.version})" if self.op else self.name


def parse_relations(field: str) -> list[list[Relation]]:
    """`a (>= 1) | b, c:any` -> [[a >= 1, b], [c]]: a conjunction of alternatives."""
    groups: list[list[Relation]] = []
    for group_text in field.split(","):
        group_text = group_text.strip()
        if not group_text:
            continue
        group = []
        for alternative in group_text.split("|"):
            group.append(_relation(alternative.strip(), field))
        groups.append(group)
    return groups


def _relation(text: str, field: str) -> Relation:
    name, paren, rest = text.partition("(")
    name = name.strip().split(":", 1)[0]
    if not name:
        raise ValueError(f"malformed relation {text!r} in {field!r}")
    if not paren:
        return Relation(name)
    inside = rest.split(")", 1)[0].strip()
    for op in ("<<", "<=", ">=", ">>", "=", "<", ">"):
        if inside.startswith(op):
            version = inside[len(op) :].strip()
            if not version:
                break
            return Relation(name, op, version)
    raise ValueError(f"malformed version restriction {text!r} in {field!r}")
