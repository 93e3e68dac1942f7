"""Layer sources, one module each. A recipe's layer `{name: spec}` is decoded against
`SOURCES[name].spec` (from `specs`, light) and planned by `SOURCES[name].plan`, which loads the
source's module (and the domain packages it needs) only when a layer is planned."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from ocibuild.sources import specs
from ocibuild.sources.base import (
    DeferredPlan,
    LayerPlan,
    LowerFS,
    Planned,
    SourceContext,
    input_key,
)
from ocibuild.ups.layering import LAYERINGS

Planner = Callable[[Any, SourceContext], list[Planned]]


@dataclass(frozen=True)
class SourceKind:
    name: str
    spec: Any  # the type a recipe's spec is decoded to
    description: str
    needs_lower: bool = False  # plans read the image below (`ctx.lower`)
    planner: Planner | None = None  # else `plan` of the module ocibuild.sources.<name>
    verbatim: bool = False  # its spec is text for the image: recipe variables stay as written

    def plan(self, spec: Any, ctx: SourceContext) -> list[Planned]:
        planner = self.planner or import_module(f"ocibuild.sources.{self.name}").plan
        plans: list[Planned] = planner(spec, ctx)
        return plans


SOURCES: dict[str, SourceKind] = {
    kind.name: kind
    for kind in (
        SourceKind("files", list[specs.FileItem], "local files and directories, inline content"),
        SourceKind(
            "profile",
            str | specs.ProfileSpec,
            "login-shell lines in /etc/profile.d",
            verbatim=True,
        ),
        SourceKind("remove", list[str], "whiteouts over lower layers"),
        SourceKind(
            "ups",
            specs.UpsSpec,
            f"UPS products from a scisoft mirror (layering: {', '.join(LAYERINGS)})",
        ),
        SourceKind(
            "rpm",
            specs.RpmSpec,
            "rpm packages from yum repositories, unpacked without running scriptlets",
            needs_lower=True,
        ),
        SourceKind(
            "deb",
            specs.DebSpec,
            "deb packages from apt repositories, unpacked without running maintainer scripts",
            needs_lower=True,
        ),
        SourceKind(
            "user",
            specs.UserSpec,
            "a non-root account (passwd, group, shadow, home) and the image's user",
            needs_lower=True,
        ),
        SourceKind(
            "setup",
            specs.SetupSpec,
            "UPS `setup` of a product: its environment frozen into the image, and a login script",
        ),
    )
}

__all__ = [
    "SOURCES",
    "DeferredPlan",
    "LayerPlan",
    "LowerFS",
    "Planned",
    "SourceContext",
    "SourceKind",
    "input_key",
]
