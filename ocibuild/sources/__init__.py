"""Layer sources, one module each. A recipe's layer `{name: spec}` is planned by SOURCES[name]."""

from ocibuild.sources import deb, files, profile, remove, rpm, ups, user
from ocibuild.sources.base import LayerPlan, LowerFS, Reporter, SourceContext, SourceKind, input_key

SOURCES: dict[str, SourceKind] = {
    kind.name: kind
    for kind in (files.KIND, profile.KIND, remove.KIND, ups.KIND, rpm.KIND, deb.KIND, user.KIND)
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
