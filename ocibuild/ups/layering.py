"""Which products share a layer.

`bundle`: all in one layer (what the paper's `RUN ./pullProducts` made). `product`: one layer
each. `auto`: products whose tarball is big get a layer of their own, the rest share one; the
choice depends only on each product's own tarball, so two bundles holding the same big
product (art, ROOT, boost, geant4, gcc...) share that layer's blob.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

LAYERINGS = ("auto", "bundle", "product")
AUTO_OWN_LAYER_BYTES = 8 << 20  # compressed tarball size from which a product has its own layer
AUTO_MAX_OWN_LAYERS = 40  # per `ups` layer source: the image stays well under 100 layers


class Sized(Protocol):
    """A product's tarball, fetched or about to be: what grouping needs of it."""

    @property
    def product(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def size(self) -> int: ...


T = TypeVar("T", bound=Sized)


def check_layering(value: str) -> str:
    if value not in LAYERINGS:
        raise ValueError(f"layering must be one of {', '.join(LAYERINGS)}, not {value!r}")
    return value


def group_products(
    tarballs: Sequence[T],
    layering: str,
    own_layer_bytes: int = AUTO_OWN_LAYER_BYTES,
    max_own_layers: int = AUTO_MAX_OWN_LAYERS,
) -> list[list[T]]:
    """The products of each layer, in layer order; products sorted by name and version."""
    ordered = sorted(tarballs, key=lambda t: (t.product, t.version, t.url))
    if not ordered:
        return []
    if layering == "bundle":
        return [ordered]
    if layering == "product":
        return [[t] for t in ordered]
    check_layering(layering)
    big = sorted(
        (t for t in ordered if t.size >= own_layer_bytes),
        key=lambda t: (-t.size, t.product, t.version, t.url),
    )[:max_own_layers]
    own = {id(t) for t in big}
    rest = [t for t in ordered if id(t) not in own]
    groups = [[t] for t in ordered if id(t) in own]
    return [*groups, rest] if rest else groups
