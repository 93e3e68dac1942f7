"""YAML nodes -> typed dataclasses, with every error pointing at a file, line and column.

Field types drive decoding: `str`, `int`, `bool`, `float`, `list[T]`, `dict[str, T]`,
`T | None`, unions of a scalar, a list and a dataclass (picked by the node's kind), and nested
dataclasses. Keys are field names, or `metadata["key"]` (for `from`). A field named `origin`
receives where the mapping was written. Unknown keys are refused with a "did you mean".

Given `variables` (`--var` values; None: no expansion), `${NAME}` in string (and integer)
values is expanded (ocibuild.variables), except below fields with `metadata["verbatim"]`.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Union

import yaml

from ocibuild.errors import Origin, RecipeError
from ocibuild.limits import RECIPE_NODES
from ocibuild.variables import UndefinedVariable, expand

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_constructor = yaml.constructor.SafeConstructor()


def origin_of(node: yaml.Node, file: str) -> Origin:
    return Origin(file, node.start_mark.line + 1, node.start_mark.column + 1)


def yaml_key(f: dataclasses.Field[Any]) -> str:
    return f.metadata.get("key", f.name)


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is list or origin is tuple:
        return "a list"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin is typing.Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(tp))
    return {str: "a string", int: "an integer", bool: "true or false", float: "a number"}.get(
        tp, str(tp)
    )


def scalar_value(node: yaml.Node, file: str) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise RecipeError("expected a single value here", origin_of(node, file))
    return construct(node, file)


def construct(node: yaml.Node, file: str) -> Any:
    """The Python value of a node; a value Python will not hold (an integer of 5,000 digits)
    is a RecipeError at its line."""
    try:
        return _constructor.construct_object(node, deep=True)
    except (ValueError, OverflowError) as e:
        detail = str(e).split(":")[0][:80]
        raise RecipeError(f"a value out of range ({detail})", origin_of(node, file)) from None


def decode(
    node: yaml.Node,
    tp: Any,
    file: str,
    what: str = "value",
    variables: Mapping[str, str] | None = None,
) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return _decode_union(node, tp, file, what, variables)
    if origin is list or origin is tuple:
        return _decode_sequence(node, tp, file, what, variables)
    if origin is dict:
        return _decode_mapping(node, tp, file, what, variables)
    if dataclasses.is_dataclass(tp):
        return decode_dataclass(node, tp, file, what, variables)
    if tp is Any:
        return construct(node, file)
    return _decode_scalar(node, tp, file, what, variables)


def _decode_union(
    node: yaml.Node, tp: object, file: str, what: str, variables: Mapping[str, str] | None
) -> object:
    """`T | None` takes null; otherwise the first member the node's kind fits."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if (
        isinstance(node, yaml.ScalarNode)
        and node.tag.endswith(":null")
        and len(args) < len(typing.get_args(tp))
    ):
        return None
    for arg in args:
        if _accepts(node, arg):
            return decode(node, arg, file, what, variables)
    raise RecipeError(f"{what}: expected {describe(tp)}", origin_of(node, file))


def _accepts(node: yaml.Node, tp: object) -> bool:
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        return isinstance(node, yaml.SequenceNode)
    if origin is dict or dataclasses.is_dataclass(tp):
        return isinstance(node, yaml.MappingNode)
    return isinstance(node, yaml.ScalarNode)


def _decode_sequence(
    node: yaml.Node, tp: object, file: str, what: str, variables: Mapping[str, str] | None
) -> list[object] | tuple[object, ...]:
    if not isinstance(node, yaml.SequenceNode):
        raise RecipeError(f"{what}: expected a list", origin_of(node, file))
    (item,) = typing.get_args(tp)[:1]
    values = [decode(n, item, file, f"{what} item", variables) for n in node.value]
    return values if typing.get_origin(tp) is list else tuple(values)


def _decode_mapping(
    node: yaml.Node, tp: object, file: str, what: str, variables: Mapping[str, str] | None
) -> dict[str, object]:
    if not isinstance(node, yaml.MappingNode):
        raise RecipeError(f"{what}: expected a mapping", origin_of(node, file))
    _, value_type = typing.get_args(tp)
    out = {}
    for key_node, value_node in node.value:
        key = decode(key_node, str, file, f"{what} key")
        out[key] = decode(value_node, value_type, file, f"{what} {key!r}", variables)
    return out


def _decode_scalar(
    node: yaml.Node, tp: object, file: str, what: str, variables: Mapping[str, str] | None
) -> object:
    at = origin_of(node, file)
    value = scalar_value(node, file)
    literal = typing.get_origin(tp) is typing.Literal
    if variables is not None and isinstance(value, str) and (tp in (str, int) or literal):
        try:
            value = expand(value, variables)
        except UndefinedVariable as e:
            raise RecipeError(str(e), at) from None
    if literal:
        if value not in typing.get_args(tp):
            raise RecipeError(f"{what}: expected {describe(tp)}, got {value!r}", at)
        return value
    convert = _SCALARS.get(tp)
    if convert is None:  # pragma: no cover - a programming error
        raise TypeError(f"cannot decode {tp}")
    return convert(node, value, what, at)


def _string(node: yaml.Node, value: object, what: str, at: Origin) -> str:
    if isinstance(value, (bool, bytes, list, dict)) or value is None:
        got = "binary data" if isinstance(value, bytes) else repr(value)
        raise RecipeError(f"{what}: expected a string, got {got}", at)
    if isinstance(value, (int, float)):
        # as written, not as YAML read it: `mode: 0755` is not 493, `version: 1.10` not 1.1
        return str(node.value)
    text = str(value)
    if "\x00" in text:
        raise RecipeError(f"{what}: a NUL byte is not allowed in a string", at)
    return text


def _boolean(node: yaml.Node, value: object, what: str, at: Origin) -> bool:
    if not isinstance(value, bool):
        raise RecipeError(f"{what}: expected true or false, got {value!r}", at)
    return value


def _integer(node: yaml.Node, value: object, what: str, at: Origin) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            return int(str(value), 0)
        except ValueError:
            raise RecipeError(f"{what}: expected an integer, got {value!r}", at) from None
    return value


def _number(node: yaml.Node, value: object, what: str, at: Origin) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecipeError(f"{what}: expected a number, got {value!r}", at)
    return float(value)


_SCALARS: dict[object, Callable[[yaml.Node, object, str, Origin], object]] = {
    str: _string,
    bool: _boolean,
    int: _integer,
    float: _number,
}


def decode_dataclass(
    node: yaml.Node,
    tp: Any,
    file: str,
    what: str = "value",
    variables: Mapping[str, str] | None = None,
) -> Any:
    at = origin_of(node, file)
    if not isinstance(node, yaml.MappingNode):
        raise RecipeError(f"{what}: expected a mapping", at)
    fields = _keyed_fields(tp)
    hints = typing.get_type_hints(tp)
    values: dict[str, object] = {}
    for key_node, value_node in node.value:
        key = str(scalar_value(key_node, file))
        f = _field_for(key, key_node, fields, values, file, what)
        inner = None if f.metadata.get("verbatim") else variables
        value = decode(value_node, hints[f.name], file, key, inner)
        values[f.name] = _checked(f, value, key, origin_of(value_node, file))
    _check_required(fields, values, what, at)
    if "origin" in {f.name for f in dataclasses.fields(tp)}:
        values["origin"] = at
    try:
        return tp(**values)
    except ValueError as e:
        raise RecipeError(f"{what}: {e}", at) from None


def _keyed_fields(tp: type[DataclassInstance]) -> dict[str, dataclasses.Field[object]]:
    """The fields a mapping may set, by their key: not `origin`, internal or init=False ones."""
    return {
        yaml_key(f): f
        for f in dataclasses.fields(tp)
        if f.name != "origin" and f.init and not f.metadata.get("internal")
    }


def _field_for(
    key: str,
    key_node: yaml.Node,
    fields: Mapping[str, dataclasses.Field[object]],
    values: Mapping[str, object],
    file: str,
    what: str,
) -> dataclasses.Field[object]:
    """The field `key` sets: refused when unknown or already set."""
    f = fields.get(key)
    if f is None:
        raise RecipeError(
            f"unknown key {key!r} in {what}{did_you_mean(key, fields)}", origin_of(key_node, file)
        )
    if f.name in values:
        raise RecipeError(f"key {key!r} given twice", origin_of(key_node, file))
    return f


def _check_required(
    fields: Mapping[str, dataclasses.Field[object]],
    values: Mapping[str, object],
    what: str,
    at: Origin,
) -> None:
    for key, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and f.name not in values:
            raise RecipeError(f"{what}: missing required key {key!r}", at)


def _checked(f: dataclasses.Field[object], value: object, key: str, at: Origin) -> object:
    """The value after the field's `metadata["check"]`, if it has one."""
    check = f.metadata.get("check")
    if not check:
        return value
    try:
        return check(value)
    except ValueError as e:
        raise RecipeError(f"{key}: {e}", at) from None


MAX_DEPTH = 100  # nested mappings and lists; deeper input is refused, not recursed into


class _DepthLimitedLoader(yaml.SafeLoader):
    """PyYAML composes nested nodes by recursion: past Python's limit it would crash with a
    RecursionError. Count the depth and stop at MAX_DEPTH with the position of the node."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def compose(text: str, file: str) -> yaml.Node | None:
    """Parse YAML into nodes (keeping positions); malformed YAML names its line, and so does
    a document whose aliases expand past the RECIPE_NODES limit (decoding walks every alias
    as a copy: nested aliases are how a few kilobytes become billions of values)."""
    try:
        root = yaml.compose(text, Loader=_DepthLimitedLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        origin = Origin(file, mark.line + 1, mark.column + 1) if mark else Origin(file)
        lines = text.splitlines()
        line = lines[mark.line] if mark and mark.line < len(lines) else ""
        hint = ' (inside {...} or [...], quote a value holding ${...}: "${NAME}")'
        hint = hint if "${" in line else ""
        raise RecipeError(f"malformed YAML: {e.problem or e.context}{hint}", origin) from None
    except yaml.YAMLError as e:
        raise RecipeError(f"malformed YAML: {e}", Origin(file)) from None
    if root is not None:
        _check_expansion(root, file)
    return root


def _check_expansion(root: yaml.Node, file: str) -> None:
    """Count the values of the document with every alias expanded, without expanding any:
    each node's count is computed once, from its children's, children first."""
    limit = RECIPE_NODES.value
    counts: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in counts:
            continue
        children = _children(node)
        if not children_done:
            if id(node) in active:
                raise RecipeError("a YAML alias refers to itself", origin_of(node, file))
            active.add(id(node))
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in counts)
            continue
        active.discard(id(node))
        total = 1 + sum(counts.get(id(c), 0) for c in children)
        if total > limit:
            raise RecipeError(
                f"this value expands to more than {limit} values through YAML aliases "
                f"(set {RECIPE_NODES.name} to change the limit)",
                origin_of(node, file),
            )
        counts[id(node)] = total


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []
