"""`ups`: UPS products from a scisoft mirror, as `pullProducts` would install them.

    - ups: {bundle: art-v1_18_03, os: slf6, qualifiers: e9, build: prof}
    - ups: {products: [[art, v1_18_03, "e9:prof"], [cetpkgsupport, v1_08_07]], os: slf6}

Tarballs are fetched at plan time (parallel, cached, pinned in the recipe's lock file); each
layer streams its tarballs into entries under `into` when it has to be written. A layer's
cache key depends only on its tarballs' sha256 and `into`, never on the bundle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ocibuild.errors import FetchError, LockError, Origin, SourceError, UnsafePathError
from ocibuild.layer.codec import threads
from ocibuild.layer.entry import clean_path
from ocibuild.sources.base import LayerPlan, SourceContext, SourceKind, fetcher_for, input_key
from ocibuild.ups.layering import LAYERINGS, check_layering, group_products
from ocibuild.ups.names import (
    check_version,
    colon_qualifiers,
    flavor_for_os,
    parse_bundle_spec,
)
from ocibuild.ups.pull import fetch_manifest, fetch_tarballs, resolve_products
from ocibuild.ups.tarball import ProductTarball, tarball_entries

MIRROR_HINT = (
    "to use another scisoft mirror, give --mirror, $OCIBUILD_SCISOFT or mirror: in the recipe"
)

LAYER_FORMAT = 1  # bump when the entries made from a tarball change


def _check_bundle(value: str | None) -> str | None:
    if value is not None:
        parse_bundle_spec(value)
    return value


def _check_os(value: str) -> str:
    flavor_for_os(value)
    return value


def _check_products(value: list[list[str]]) -> list[list[str]]:
    for item in value:
        if not 2 <= len(item) <= 4:
            raise ValueError(
                f"{item!r}: each product is [name, version, qualifiers] (and optionally the "
                "tarball file name)"
            )
        check_version(item[1])
    return value


@dataclass(frozen=True)
class UpsSpec:
    os: str = field(metadata={"check": _check_os})
    bundle: str | None = field(default=None, metadata={"check": _check_bundle})
    qualifiers: str = ""
    build: str = ""
    products: list[list[str]] = field(default_factory=list, metadata={"check": _check_products})
    into: str = "/products"
    layering: str = field(default="auto", metadata={"check": check_layering})
    origin: Origin | None = None

    def __post_init__(self) -> None:
        if (self.bundle is None) == (not self.products):
            raise ValueError("give exactly one of 'bundle' or 'products'")
        if self.products and (self.qualifiers or self.build):
            raise ValueError("'qualifiers' and 'build' go with 'bundle'; give each product's own")
        try:
            clean_path(self.into, "into")
        except UnsafePathError as e:
            raise ValueError(str(e)) from None

    @property
    def what(self) -> str:
        if self.bundle:
            words = [self.bundle, self.os, self.qualifiers, self.build]
            return " ".join(w for w in words if w)
        return f"{len(self.products)} products ({self.os})"


def plan(spec: UpsSpec, ctx: SourceContext) -> list[LayerPlan]:
    into = clean_path(spec.into)
    try:
        tarballs = _fetch(spec, ctx)
    except (FetchError, LockError, SourceError) as e:
        raise e.located(ctx.origin) from None
    groups = group_products(tarballs, spec.layering)
    return [_layer(group, into, spec) for group in groups]


def _fetch(spec: UpsSpec, ctx: SourceContext) -> list[ProductTarball]:
    fetcher = fetcher_for(ctx, hint=MIRROR_HINT, mirror=ctx.mirror)
    flavor = flavor_for_os(spec.os)
    if spec.bundle is not None:
        bundle = parse_bundle_spec(spec.bundle)
        manifest, entries = fetch_manifest(
            fetcher, ctx.mirror, bundle, flavor, spec.qualifiers, spec.build
        )
        ctx.report("message", message=f"ups {spec.what}: {len(entries)} products in {manifest.url}")
    else:
        named = [
            (p[0], p[1], colon_qualifiers(p[2]) if len(p) > 2 else "", p[3] if len(p) > 3 else "")
            for p in spec.products
        ]
        entries = resolve_products(fetcher, ctx.mirror, named, flavor)
    return fetch_tarballs(fetcher, ctx.mirror, entries)


def _layer(group: list[ProductTarball], into: str, spec: UpsSpec) -> LayerPlan:
    size = sum(t.size for t in group)
    names = [f"{t.product} {t.version}" for t in group]
    if len(group) == 1:
        description = f"ups: {names[0]} ({_megabytes(size)} tarball)"
    else:
        description = f"ups: {len(group)} products of {spec.what} ({_megabytes(size)} of tarballs)"
    listed = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    return LayerPlan(
        key=input_key("ups", LAYER_FORMAT, into, [t.sha256 for t in group]),
        description=description,
        entries=lambda: tarball_entries(group, into, readers=threads()),
        created_by=f"ocibuild ups {spec.what} -> /{into}: {listed}",
    )


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


KIND = SourceKind(
    "ups",
    UpsSpec,
    plan,
    description=f"UPS products from a scisoft mirror (layering: {', '.join(LAYERINGS)})",
)
