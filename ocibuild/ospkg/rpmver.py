"""rpm's version comparison: `rpmvercmp`, [epoch:]version[-release] values and dependency ranges.

Follows rpm 4.18 (lib/rpmvercmp.c, lib/rpmver.c): segments of digits or ASCII letters compared
one by one, digits newer than letters, `~` sorting before anything (pre-releases) and `^` after
the base version but before any further segment (post-release snapshots).
"""

from __future__ import annotations

from dataclasses import dataclass

LESS = 2
GREATER = 4
EQUAL = 8
_FLAGS = {"LT": LESS, "GT": GREATER, "EQ": EQUAL, "LE": LESS | EQUAL, "GE": GREATER | EQUAL}
_SYMBOLS = {LESS: "<", GREATER: ">", EQUAL: "=", LESS | EQUAL: "<=", GREATER | EQUAL: ">="}


def _alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def rpmvercmp(a: str, b: str) -> int:
    """-1, 0 or 1 as version (or release) string `a` is older than, equal to or newer than `b`."""
    if a == b:
        return 0
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        while i < la and not _alnum(a[i]) and a[i] not in "~^":
            i += 1
        while j < lb and not _alnum(b[j]) and b[j] not in "~^":
            j += 1
        ca = a[i] if i < la else ""
        cb = b[j] if j < lb else ""
        if ca == "~" or cb == "~":
            if ca != "~":
                return 1
            if cb != "~":
                return -1
            i, j = i + 1, j + 1
            continue
        if ca == "^" or cb == "^":
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != "^":
                return 1
            if cb != "^":
                return -1
            i, j = i + 1, j + 1
            continue
        if not (ca and cb):
            break
        numeric = _digit(ca)
        same_kind = _digit if numeric else _alpha
        ei = i
        while ei < la and same_kind(a[ei]):
            ei += 1
        ej = j
        while ej < lb and same_kind(b[ej]):
            ej += 1
        if ej == j:  # segments of different kinds: a number is newer than letters
            return 1 if numeric else -1
        sa, sb = a[i:ei], b[j:ej]
        if numeric:
            sa, sb = sa.lstrip("0"), sb.lstrip("0")
            if len(sa) != len(sb):
                return 1 if len(sa) > len(sb) else -1
        if sa != sb:
            return 1 if sa > sb else -1
        i, j = ei, ej
    if i >= la and j >= lb:
        return 0
    return -1 if i >= la else 1


def _alpha(c: str) -> bool:
    return c.isascii() and c.isalpha()


def _digit(c: str) -> bool:
    return c.isascii() and c.isdigit()


@dataclass(frozen=True)
class EVR:
    """An rpm [epoch:]version[-release]; a missing epoch counts as 0, a missing release
    matches any release in dependency ranges."""

    epoch: str = ""
    version: str = ""
    release: str = ""

    @classmethod
    def parse(cls, text: str) -> EVR:
        epoch, colon, rest = text.partition(":")
        if not colon or not epoch.isdigit():
            epoch, rest = "", text
        version, _, release = rest.rpartition("-") if "-" in rest else (rest, "", "")
        return cls(epoch, version, release)

    def compare(self, other: EVR) -> int:
        """Total order of package versions (sorting candidates): epoch, version, release."""
        rc = rpmvercmp(self.epoch or "0", other.epoch or "0")
        if rc == 0:
            rc = rpmvercmp(self.version, other.version)
        if rc == 0:
            rc = _compare_present(self.release, other.release)
        return rc

    def __str__(self) -> str:
        text = f"{self.epoch}:{self.version}" if self.epoch and self.epoch != "0" else self.version
        return f"{text}-{self.release}" if self.release else text


def _compare_present(a: str, b: str) -> int:
    if a and b:
        return rpmvercmp(a, b)
    return (1 if a else 0) - (1 if b else 0)


def flags_of(name: str | None) -> int:
    """primary.xml `flags="GE"` -> the sense bits; absent -> 0 (any version)."""
    if not name:
        return 0
    try:
        return _FLAGS[name]
    except KeyError:
        raise ValueError(f"unknown dependency flags {name!r}") from None


def symbol(flags: int) -> str:
    return _SYMBOLS.get(flags & (LESS | GREATER | EQUAL), "")


def ranges_overlap(f1: int, e1: EVR, f2: int, e2: EVR) -> bool:
    """Whether the range `f1 e1` (a provide) meets the range `f2 e2` (a requirement), as rpm's
    rpmverOverlap decides it; a side without flags matches everything."""
    f1 &= LESS | GREATER | EQUAL
    f2 &= LESS | GREATER | EQUAL
    if not f1 or not f2:
        return True
    sense = 0
    if e1.epoch and e2.epoch:
        sense = rpmvercmp(e1.epoch, e2.epoch)
    elif e1.epoch and int(e1.epoch) > 0:
        sense = 1
    elif e2.epoch and int(e2.epoch) > 0:
        sense = -1
    if sense == 0:
        sense = rpmvercmp(e1.version, e2.version)
        if sense == 0:
            if e1.release and e2.release:
                sense = rpmvercmp(e1.release, e2.release)
            elif (e1.release and f2 & EQUAL) or (e2.release and f1 & EQUAL):
                return True
    if sense < 0:
        return bool(f1 & GREATER or f2 & LESS)
    if sense > 0:
        return bool(f1 & LESS or f2 & GREATER)
    return bool(f1 & f2 & (EQUAL | LESS | GREATER))
