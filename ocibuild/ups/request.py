"""A `setup` request, from a recipe, a SETUP_<PRODUCT> value or a table's setupRequired():

    prod [version] [-q quals] [-f flavor] [-j] [-e] [-g chain|-c|-d|-n|-o|-t] [-z db]

an option's value attached (`-q+e9:+prof`) or not.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from ocibuild.errors import SourceError

_WITH_VALUE = {"-f", "-g", "-H", "-m", "-M", "-O", "-q", "-r", "-U", "-z"}
_CHAINS = {"-c": "current", "-d": "development", "-n": "new", "-o": "old", "-t": "test"}


@dataclass(frozen=True)
class Request:
    """One `setup` request: product, version (or chain), qualifiers, options."""

    product: str
    version: str = ""
    qualifiers: str = ""
    chain: str = "current"
    flavor: str = ""
    just_this: bool = False
    extended: bool = False
    optional: bool = False
    via: str = ""  # who asked: "recipe.yaml:12" or "/products/art/v1/ups/art.table:30"

    def __str__(self) -> str:
        quals = f" -q {self.qualifiers}" if self.qualifiers else ""
        return f"{self.product} {self.version or '(' + self.chain + ')'}{quals}"


def parse_request(text: str, optional: bool, where: str) -> Request:
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    positional: list[str] = []
    options: dict[str, str] = {}
    flags: set[str] = set()
    i = 0
    while i < len(words):
        word = words[i]
        if word in _WITH_VALUE:
            if i + 1 >= len(words):
                raise SourceError(f"option {word} without a value in {text!r}", where)
            options[word] = words[i + 1]
            i += 2
            continue
        if len(word) > 2 and word[:2] in _WITH_VALUE:
            options[word[:2]] = word[2:]
        elif word.startswith("-") and len(word) > 1:
            flags.update("-" + ch for ch in word[1:])
        else:
            positional.append(word)
        i += 1
    if not positional:
        raise SourceError(f"setup without a product name: {text!r}", where)
    chain = next((name for flag, name in _CHAINS.items() if flag in flags), "current")
    return Request(
        product=positional[0],
        version=positional[1] if len(positional) > 1 else "",
        qualifiers=options.get("-q", ""),
        chain=options.get("-g", chain),
        flavor=options.get("-f", ""),
        just_this="-j" in flags,
        extended="-e" in flags,
        optional=optional,
        via=where,
    )
