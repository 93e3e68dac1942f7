"""A JSON schema of recipe format v1, generated from the same types the decoder uses, so the
two cannot drift apart (editors use it for completion and checking)."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Union

from ocibuild.recipe.load import _RecipeHead
from ocibuild.recipe.model import ImageSpec
from ocibuild.sources import SOURCES
from ocibuild.yamldecode import yaml_key

_SCALARS = {
    str: {"type": "string"},
    int: {"type": "integer"},
    bool: {"type": "boolean"},
    float: {"type": "number"},
}


def type_schema(tp: Any) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = [type_schema(a) for a in typing.get_args(tp) if a is not type(None)]
        return options[0] if len(options) == 1 else {"anyOf": options}
    if origin in (list, tuple):
        return {"type": "array", "items": type_schema(typing.get_args(tp)[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": type_schema(typing.get_args(tp)[1])}
    if dataclasses.is_dataclass(tp):
        return dataclass_schema(tp)
    if origin is typing.Literal:
        return {"enum": list(typing.get_args(tp))}
    return _SCALARS.get(tp, {})


def dataclass_schema(tp: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    hints = typing.get_type_hints(tp)
    properties: dict[str, Any] = {}
    required = []
    for f in dataclasses.fields(tp):
        if f.name == "origin" or f.name in skip or not f.init or f.metadata.get("internal"):
            continue
        properties[yaml_key(f)] = type_schema(hints[f.name])
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(yaml_key(f))
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


def recipe_schema() -> dict[str, Any]:
    layer = {
        "oneOf": [
            {
                "type": "object",
                "properties": {name: type_schema(kind.spec)},
                "required": [name],
                "additionalProperties": False,
                "description": kind.description,
            }
            for name, kind in sorted(SOURCES.items())
        ]
    }
    image = dataclass_schema(ImageSpec, skip=("layers",))
    image["properties"]["layers"] = {"type": "array", "items": layer}
    image["properties"]["setup"] = {
        **type_schema(SOURCES["setup"].spec),
        "description": "the image's last layer: " + SOURCES["setup"].description,
    }
    head = dataclass_schema(_RecipeHead)
    head["properties"]["images"] = {"type": "array", "items": image, "minItems": 1}
    head["required"] = ["images"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "ocibuild recipe (format v1)",
        **head,
    }
