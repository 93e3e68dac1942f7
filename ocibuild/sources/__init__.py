"""Layer sources, one module each, registered with their spec types in `registry.SOURCES`.

registry  every source: name, spec type, plan function (module loaded when planning)
specs     the spec types recipes are decoded to (light: no source is loaded)
session   what a source is given: the build session and the layer's context
base      what a source returns: `LayerPlan`, and the keys and downloader it builds it with
"""

from ocibuild.sources.registry import SOURCES, LayerSource, LayerSpec, Source

__all__ = ["SOURCES", "LayerSource", "LayerSpec", "Source"]
