"""Repository URLs a site can redirect to its mirror: `${VAR:-default}` in a recipe's URL.

`${CENTOS_VAULT:-https://vault.centos.org}/6.7/os/x86_64/` is the vault unless the environment
sets CENTOS_VAULT. What the image records about where a package came from is the canonical URL
(the defaults), so an image built from a site mirror is the same image, byte for byte.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

_VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def expand(text: str, environ: Mapping[str, str] | None = None) -> str:
    """`text` with each `${VAR}` / `${VAR:-default}` replaced; ValueError names an unset one."""
    env = os.environ if environ is None else environ

    def value(match: re.Match[str]) -> str:
        name, default = match[1], match[2]
        if env.get(name):
            return env[name]
        if default is None:
            raise ValueError(
                f"{text!r} uses ${{{name}}}, which is not set (write ${{{name}:-URL}})"
            )
        return default

    return _VARIABLE.sub(value, text)


def canonical(text: str) -> str:
    """`text` with every variable at its default (unset ones kept as written)."""
    return _VARIABLE.sub(lambda m: m[2] if m[2] is not None else m[0], text)


def mirror_hint(urls: Iterable[str]) -> str:
    """How to point the repository URLs `urls` (as the recipe writes them) at a mirror."""
    names = sorted({m[1] for url in urls for m in _VARIABLE.finditer(url)})
    if not names:
        return "the repository URLs are the recipe's repos:"
    return "to use a mirror, set " + " or ".join(f"${name}" for name in names)
