"""Layer sources, one module each. A recipe's layer `{name: spec}` is planned by SOURCES[name]."""

from ocibuild.sources import files, profile, remove, ups
from ocibuild.sources.base import LayerPlan, LowerFS, Reporter, SourceContext, SourceKind, input_key

SOURCES: dict[str, SourceKind] = {
    kind.name: kind for kind in (files.KIND, profile.KIND, remove.KIND, ups.KIND)
}

__all__ = [
    "SOURCES",
    "LayerPlan",
    "LowerFS",
    "Reporter",
    "SourceContext",
    "SourceKind",
    "input_key",
]
