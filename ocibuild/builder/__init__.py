"""Recipe -> image graph -> layers (cached, compressed in parallel) -> images in the store.

graph      the images in `from:` order, bases built, found or pulled, one per platform and an
           index over several (`BuiltIndex`); `build_recipe`
image      one image: plan the sources, schedule the layers, config, commit
scheduler  a layer: a cache hit or written into the store transaction, as a future
config     the image config and history from the base, the layers and the recipe
inputs     SOURCE_DATE_EPOCH, the mirror, digests of local files

The settings (`BuildSettings`, what the user chose) and the session made of them for a build
are in `ocibuild.sources.session`, where the sources read them.
"""

from ocibuild.builder.graph import Built, BuiltIndex, build_order, build_recipe
from ocibuild.builder.image import BuiltImage
from ocibuild.builder.scheduler import BuiltLayer
from ocibuild.sources.session import PULL_POLICIES, BuildSettings

__all__ = [
    "PULL_POLICIES",
    "BuildSettings",
    "Built",
    "BuiltImage",
    "BuiltIndex",
    "BuiltLayer",
    "build_order",
    "build_recipe",
]
