"""Recipe variables: `${NAME}` and `${NAME:-default}` in recipe text, `$$` for a plain `$`.

A variable's value is what `--var NAME=VALUE` gives, else the environment's NAME (when not
empty), else the default. The recipe decoder expands every string of a recipe this way (see
docs/recipe.md for the fields it leaves alone); the package sources expand their repository
URLs with the same rules at build time, and record them `canonical`: there `${NAME:-URL}` is a
mirror a site may point elsewhere, and the image records the default URL, so that an image
built from a mirror is the same image, byte for byte.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

_REFERENCE = re.compile(r"\$(?:(\$)|\{(\w+)(?::-([^}]*))?\})")


class UndefinedVariable(ValueError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"${{{name}}} is not set: give --var {name}=VALUE, set it in the environment, "
            f"or write ${{{name}:-DEFAULT}}"
        )


def parse_assignment(text: str) -> tuple[str, str]:
    """`NAME=VALUE` (as `--var` takes it) -> (NAME, VALUE)."""
    name, equals, value = text.partition("=")
    if not equals or not re.fullmatch(r"[A-Za-z_]\w*", name):
        raise ValueError(f"{text!r} is not NAME=VALUE (NAME: letters, digits and _)")
    return name, value


def expand(
    text: str, given: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """`text` with every variable replaced; UndefinedVariable names one without a value."""
    return _substitute(text, given or {}, os.environ if environ is None else environ, False)


def canonical(
    text: str, given: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """`text` with each `${NAME:-default}` at its default, other variables as `expand` does."""
    return _substitute(text, given or {}, os.environ if environ is None else environ, True)


def _substitute(
    text: str, given: Mapping[str, str], environ: Mapping[str, str], defaults_win: bool
) -> str:
    def value(match: re.Match[str]) -> str:
        dollar, name, default = match.groups()
        if dollar:
            return "$"
        if default is not None and defaults_win:
            return default
        found = given[name] if name in given else environ.get(name)
        if found:
            return found
        if default is not None:
            return default
        if found is None:
            raise UndefinedVariable(name)
        return found  # set, and empty

    return _REFERENCE.sub(value, text)


def mirror_hint(urls: Iterable[str]) -> str:
    """How to point the repository URLs `urls` (as the recipe writes them) at a mirror."""
    names = sorted({m[2] for url in urls for m in _REFERENCE.finditer(url) if m[2]})
    if not names:
        return "the repository URLs are the recipe's repos:"
    return "to use a mirror, set " + " or ".join(f"${name}" for name in names)
