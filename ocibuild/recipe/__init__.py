"""Recipe files: YAML -> typed, validated recipe objects; errors with file and line."""

from ocibuild.recipe.load import image_refs, load_recipe
from ocibuild.recipe.model import SCRATCH, ImageSpec, Recipe
from ocibuild.sources.registry import LayerSpec

__all__ = ["SCRATCH", "ImageSpec", "LayerSpec", "Recipe", "image_refs", "load_recipe"]
