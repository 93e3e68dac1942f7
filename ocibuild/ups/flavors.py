"""Which declared flavors a `setup` takes, in which order (upsugo.c `upsugo_bldfvr`,
`flavor_sub`, `expand_flavorlist`, `upsugo_ifornota`; upsmat.c `linux_flavor_cmp`).

For host flavors `-H H1:H2` the list is H, then H cut at its last `-` (up to five times), then
cut at its last `.` (as often as it has one), then at its last `+`, then NULL, each step done
for H1 then H2; every entry ending in digits is followed by the same entry counted down to 0
(not with -B); `ANY` comes last. For `Linux64bit+3.10-2.17`:

    Linux64bit+3.10-2.17 Linux64bit+3.10-2.16 ... Linux64bit+3.10-2.0 Linux64bit+3.10
    Linux64bit+3.9 ... Linux64bit+3.0 Linux64bit+3 Linux64bit+2 ... Linux64bit+0 Linux64bit
    NULL ANY

`-f F` replaces the list with `F ANY`. A declared flavor matches an entry when the strings are
equal, except that when the declared one starts with `Linux`, the text from the `+` to the next
`-` (the kernel version) is skipped on both sides: `Linux64bit+2.6-2.17` matches
`Linux64bit+3.10-2.17`, `Linux64bit+3.10` matches `Linux64bit+2.6`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

NULL = "NULL"
ANY = "ANY"
_DIGITS = re.compile(r"(\d+)$")


def host_flavors(hosts: Sequence[str], exact: bool = False) -> list[str]:
    """The flavors tried for host flavors `hosts` (`-H A:B` gives two), ANY included;
    `exact` (-B): no counting down."""
    copies = list(hosts)
    out = list(hosts)
    for _ in range(5):
        for i, flavor in enumerate(copies):
            if "-" in flavor:
                copies[i] = flavor[: flavor.rindex("-")]
                out.append(copies[i])
    cut = True
    while cut:
        cut = False
        for i, flavor in enumerate(copies):
            if "." in flavor:
                copies[i] = flavor[: flavor.rindex(".")]
                out.append(copies[i])
                cut = True
    for i, flavor in enumerate(copies):
        if "+" in flavor:
            copies[i] = flavor[: flavor.rindex("+")]
            out.append(copies[i])
    out.append(NULL)
    if not exact:
        out = [counted for flavor in out for counted in _counted_down(flavor)]
    return [*out, ANY]


def _counted_down(flavor: str) -> list[str]:
    m = _DIGITS.search(flavor)
    if m is None:
        return [flavor]
    stem, release = flavor[: m.start()], int(m.group())
    return [flavor, *(f"{stem}{n}" for n in range(release - 1, -1, -1))]


def same_flavor(declared: str, wanted: str) -> bool:
    """upsmat.c linux_flavor_cmp(declared, wanted) == 0."""
    linux = declared.startswith("Linux")
    i = j = 0
    while i < len(declared) and j < len(wanted):
        if linux and i >= 5 and declared[i] == "+" and wanted[j] == "+":
            while i < len(declared) and declared[i] != "-":
                i += 1
            while j < len(wanted) and wanted[j] != "-":
                j += 1
            if i == len(declared) or j == len(wanted):
                return i == len(declared) and j == len(wanted)
        if declared[i] != wanted[j]:
            return False
        i += 1
        j += 1
    return i == len(declared) and j == len(wanted)
