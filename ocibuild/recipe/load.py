"""Read a recipe file: YAML -> validated `Recipe`, or a `RecipeError` naming file and line."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import yaml

from ocibuild.compression import COMPRESSIONS, check_level
from ocibuild.errors import Origin, RecipeError
from ocibuild.limits import RECIPE_SIZE
from ocibuild.oci.formats import ManifestFormat
from ocibuild.oci.reference import ReferenceError, parse_reference
from ocibuild.recipe.model import (
    SCRATCH,
    ImageSpec,
    Recipe,
    check_platforms,
    check_source_date_epoch,
)
from ocibuild.sources.registry import LayerSpec
from ocibuild.yamldecode import (
    compose,
    decode_dataclass,
    did_you_mean,
    origin_of,
    scalar_value,
)


def load_recipe(path: Path | str, variables: Mapping[str, str] | None = None) -> Recipe:
    """The recipe of `path`, its `${NAME}` expanded from `variables` (`--var`) or the
    environment."""
    path = Path(path)
    variables = dict(variables or {})
    file = str(path)
    try:
        text = _read_bounded(path)
    except FileNotFoundError:
        raise RecipeError(f"recipe file {file} does not exist") from None
    except OSError as e:
        raise RecipeError(f"cannot read recipe file {file}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise RecipeError(f"cannot read recipe file {file}: {e}") from None
    root = compose(text, file)
    if root is None:
        raise RecipeError("the recipe is empty: it needs an 'images:' list", Origin(file, 1))
    if not isinstance(root, yaml.MappingNode):
        raise RecipeError("a recipe is a mapping with an 'images:' list", origin_of(root, file))
    images_node = _images_node(root, file)
    recipe = decode_dataclass(_without(root, "images"), _RecipeHead, file, "recipe", variables)
    _check_level(root, recipe.compression, recipe.compression_level, file)
    images = [_image(node, file, recipe.compression, variables) for node in images_node.value]
    if not images:
        raise RecipeError("'images:' is empty", origin_of(images_node, file))
    result = Recipe(
        images=images,
        mirror=recipe.mirror,
        source_date_epoch=recipe.source_date_epoch,
        compression=recipe.compression,
        compression_level=recipe.compression_level,
        format=recipe.format,
        platforms=recipe.platforms,
        path=path.resolve(),
        origin=Origin(file, 1),
    )
    _check_names(result, file)
    return result


def _read_bounded(path: Path) -> str:
    from ocibuild.infile import read_regular_file  # here: importing recipe stays light

    limit = RECIPE_SIZE.value
    data = read_regular_file(path, limit + 1)
    if len(data) > limit:
        raise RecipeError(
            f"recipe file is larger than {limit} bytes (set {RECIPE_SIZE.name} to change "
            "the limit)",
            Origin(str(path)),
        )
    return data.decode()


@dataclasses.dataclass(frozen=True)
class _RecipeHead:
    mirror: str | None = None
    source_date_epoch: int | None = dataclasses.field(
        default=None,
        metadata={"check": lambda v: None if v is None else check_source_date_epoch(v)},
    )
    compression: str = "gzip"
    compression_level: int | None = None
    format: ManifestFormat = "auto"
    platforms: list[str] | None = dataclasses.field(
        default=None, metadata={"check": check_platforms}
    )

    def __post_init__(self) -> None:
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}")


def _images_node(root: yaml.MappingNode, file: str) -> yaml.SequenceNode:
    for key, value in root.value:
        if scalar_value(key, file) == "images":
            if not isinstance(value, yaml.SequenceNode):
                raise RecipeError("'images:' must be a list of images", origin_of(value, file))
            return value
    raise RecipeError("missing required key 'images'", origin_of(root, file))


def _without(node: yaml.MappingNode, *keys: str) -> yaml.MappingNode:
    kept = [
        (k, v) for k, v in node.value if not (isinstance(k, yaml.ScalarNode) and k.value in keys)
    ]
    return yaml.MappingNode(node.tag, kept, node.start_mark, node.end_mark)


def _check_level(node: yaml.Node, compression: str, level: int | None, file: str) -> None:
    try:
        check_level(compression, level)
    except ValueError as e:
        at = next(v for k, v in node.value if k.value == "compression_level")
        raise RecipeError(f"compression_level: {e}", origin_of(at, file)) from None


def _value(node: yaml.MappingNode, key: str) -> yaml.Node | None:
    return next(
        (v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None
    )


def _image(node: yaml.Node, file: str, compression: str, variables: dict[str, str]) -> ImageSpec:
    if not isinstance(node, yaml.MappingNode):
        raise RecipeError("each image is a mapping with at least 'name:'", origin_of(node, file))
    image = decode_dataclass(_without(node, "layers", "setup"), ImageSpec, file, "image", variables)
    layers_node, setup_node = _value(node, "layers"), _value(node, "setup")
    layers = _layers(layers_node, file, variables) if layers_node is not None else []
    if setup_node is not None:  # the setup source, as the image's last layer
        layers.append(
            _layer_spec("setup", setup_node, origin_of(setup_node, file), file, variables)
        )
    image = dataclasses.replace(image, layers=layers)
    for ref in (image.name, *(_tag_ref(image.name, t) for t in image.tags)):
        try:
            reference = parse_reference(ref)
        except ReferenceError as e:
            raise RecipeError(str(e), image.origin) from None
        if reference.digest is not None:
            raise RecipeError(
                f"{ref}: an image to build is named without a digest (its digest is what "
                "the build makes)",
                image.origin,
            )
    if image.compression is not None and image.compression not in COMPRESSIONS:
        raise RecipeError(f"compression must be one of {', '.join(COMPRESSIONS)}", image.origin)
    _check_level(node, image.compression or compression, image.compression_level, file)
    return image


def _tag_ref(name: str, tag: str) -> str:
    if "/" in tag or ":" in tag:
        return tag
    return str(parse_reference(name).with_tag(tag))


def _layer_spec(
    source: str, node: yaml.Node, at: Origin, file: str, variables: dict[str, str]
) -> LayerSpec:
    from ocibuild.sources import SOURCES  # spec types only: no source is loaded

    return SOURCES[source].decode(node, at, file, variables)


def _layers(node: yaml.Node, file: str, variables: dict[str, str]) -> list[LayerSpec]:
    from ocibuild.sources import SOURCES

    if not isinstance(node, yaml.SequenceNode):
        raise RecipeError("'layers:' must be a list", origin_of(node, file))
    out = []
    for item in node.value:
        at = origin_of(item, file)
        if not isinstance(item, yaml.MappingNode) or len(item.value) != 1:
            raise RecipeError(
                f"each layer is one source: {{{' | '.join(sorted(SOURCES))}: ...}}", at
            )
        key_node, value_node = item.value[0]
        name = str(scalar_value(key_node, file))
        kind = SOURCES.get(name)
        if kind is None:
            raise RecipeError(
                f"unknown layer source {name!r}{did_you_mean(name, SOURCES)}; "
                f"known sources: {', '.join(sorted(SOURCES))}",
                origin_of(key_node, file),
            )
        out.append(_layer_spec(name, value_node, at, file, variables))
    return out


def _check_names(recipe: Recipe, file: str) -> None:
    seen: dict[str, Origin | None] = {}
    for image in recipe.images:
        for ref in image_refs(image):
            if ref in seen:
                raise RecipeError(
                    f"image {ref} is defined twice (first at {seen[ref]})", image.origin
                )
            seen[ref] = image.origin
        if image.from_ != SCRATCH and "#" not in image.from_:
            try:
                parse_reference(image.from_)
            except ReferenceError as e:
                raise RecipeError(f"from: {e}", image.origin) from None


def image_refs(image: ImageSpec) -> list[str]:
    """Every full reference an image is stored and pushed under: its name and its tags."""
    refs = [str(parse_reference(image.name))]
    refs += [str(parse_reference(_tag_ref(image.name, t))) for t in image.tags]
    return list(dict.fromkeys(refs))
