"""The host flavor an image's `setup` runs as: what `-H` (or UPS_OVERRIDE) gives the real ups,
and what `uname` would give it in a container of the image. An image being built has no
running kernel, so ocibuild takes, first found:

1. the recipe's `setup: {host_flavor: ...}` (the `-H` of the setup command);
2. `-H` in UPS_OVERRIDE of the image's environment (the real ups takes it the same way);
3. the flavor of the `ups` product that `source <db>/setup` sets up: its current chain's
   instance (the ups binary the image holds runs there);
4. without a ups product, the flavor of the product asked for (its `.version` file, or its
   current chain), warned about.

A ups product (or product) declared for several flavors tells nothing: that is an error asking
for `host_flavor:`. Only NULL/ANY instances give no host flavor (flavors NULL, ANY).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ocibuild.errors import SourceError
from ocibuild.ups.database import ImageTree
from ocibuild.ups.flavors import ANY, NULL
from ocibuild.ups.request import Request, parse_override
from ocibuild.ups.upserrors import UpsErrors
from ocibuild.ups.upsfile import FileParser


def host_flavors(
    given: str,
    env: Mapping[str, str],
    tree: ImageTree,
    root: str,
    request: Request,
    warn: Callable[[str], None],
) -> tuple[str, ...]:
    """The host flavors (`-H A:B` gives two) of the image's setup."""
    if given:
        return tuple(h for h in given.split(":") if h)
    override = parse_override(env.get("UPS_OVERRIDE", ""))
    if override.hosts:
        return override.hosts
    if tree.is_dir(f"{root}/ups"):
        return _declared(tree, f"{root}/ups/current.chain", "the ups product")
    asked = f"{request.version}.version" if request.version else "current.chain"
    path = f"{root}/{request.product}/{asked}"
    hosts = _declared(tree, path, request.product)
    if hosts:
        warn(
            f"{root} has no ups product: the host flavor is taken from {path} ({hosts[0]}); "
            "give setup: {host_flavor: ...} to say it"
        )
    return hosts


def _declared(tree: ImageTree, path: str, what: str) -> tuple[str, ...]:
    """The one flavor (other than NULL and ANY) that a file declares."""
    parser = FileParser(path, lambda value: None, UpsErrors())
    if tree.is_dir(path):
        for name in tree.entries(path):
            parser.read(tree.data(f"{path}/{name}") or b"")
    else:
        parser.read(tree.data(path) or b"")
    flavors = sorted({i.flavor for i in parser.result.instances} - {NULL, ANY, ""})
    if len(flavors) > 1:
        raise SourceError(
            f"{path}: {what} is declared for several flavors ({', '.join(flavors)}): say which "
            'one the image runs with setup: {host_flavor: ...} or UPS_OVERRIDE="-H ..." in its env'
        )
    return tuple(flavors)
