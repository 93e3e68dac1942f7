"""`remove`: OCI whiteouts that hide paths of the layers below."""

from __future__ import annotations

from ocibuild.errors import SourceError, UnsafePathError
from ocibuild.layer.entry import WHITEOUT_PREFIX, clean_path, whiteout_entry
from ocibuild.sbom import Component
from ocibuild.sources.base import LayerPlan, input_key
from ocibuild.sources.session import LayerContext


def plan(spec: list[str], ctx: LayerContext) -> list[LayerPlan]:
    paths = []
    for raw in spec:
        try:
            path = clean_path(raw, "remove path")
        except UnsafePathError as e:
            raise SourceError(str(e), ctx.origin) from None
        if not path:
            raise SourceError("cannot remove the image root", ctx.origin)
        if any(part.startswith(WHITEOUT_PREFIX) for part in path.split("/")):
            raise SourceError(
                f"remove path {raw!r}: a name starting with {WHITEOUT_PREFIX} is a whiteout, "
                "which no image holds as a file to remove",
                ctx.origin,
            )
        paths.append(path)
    paths = sorted(set(paths))
    return [
        LayerPlan(
            key=input_key("remove", paths),
            description=f"remove: {', '.join('/' + p for p in paths)}",
            entries=lambda: [whiteout_entry(p) for p in paths],
            components=lambda: [
                Component(kind="removed", name="/" + p, path="/" + p) for p in paths
            ],
            created_by=f"ocibuild remove {' '.join('/' + p for p in paths)}",
        )
    ]
