"""The qualifier sets a request tries, best first (upsugo.c `ugo_old2newquals`,
`upsugo_bldqual`).

Every qualifier is optional unless written `+q` (required); `?q` is optional too. The sets are
the required ones with every subset of the optional ones, in the order of `i` from 2^n-1 down
to 0 where bit n-1-j of `i` takes the j-th optional (optionals sorted): for `a:b:c`
`a:b:c, a:b, a:c, a, b:c, b, c, ""` (so `a` before `b:c`); for `e19:prof` `e19:prof, e19, prof,
""`; for `+e19:prof` `e19:prof, e19`; each set sorted and colon-joined. A set matches an
instance whose (sorted) qualifiers are equal.
"""

from __future__ import annotations


def qualifier_sets(requested: str) -> list[str]:
    """The sets `-q requested` tries."""
    if not requested or requested == '""':
        return [""]
    required: list[str] = []
    optional: list[str] = []
    for part in _new_style(requested).split(":"):
        if part.startswith("?"):
            optional.append(part[1:])
        elif part:
            required.append(part)
    if not optional:
        return [_sorted(required)]
    optional = sorted(q for q in optional if q)
    n = len(optional)
    sets = []
    for i in range(2**n - 1, -1, -1):
        chosen = [optional[j] for j in range(n) if i & (1 << (n - j - 1))]
        sets.append(_sorted(required + chosen))
    return sets


def _new_style(requested: str) -> str:
    """ugo_old2newquals: `+q` -> `q` (required), `q` and `?q` -> `?q` (optional)."""
    out = []
    for part in requested.split(":"):
        if part.startswith("+"):
            out.append(part[1:])
        else:
            out.append("?" + part.removeprefix("?"))
    return ":".join(out)


def _sorted(parts: list[str]) -> str:
    return ":".join(sorted(p for p in parts if p))
