"""The one reader of YAML written by others (a Spack tarball's buildinfo); recipes, which users
write, have their own (`yamldecode`).

`read_yaml` parses with libyaml when PyYAML has it (a tenth of the pure-Python parser's time)
and refuses, with a one-line `YAMLInputError` naming what was read:

- malformed YAML, and values PyYAML cannot make, which its loader raises as whatever Python
  raised (a 30th of February and an integer of 5,000 digits a ValueError, `!!int ""` an
  IndexError);
- nesting deeper than `MAX_DEPTH`. PyYAML builds nested values by recursion: past Python's limit
  the pure-Python loader raises RecursionError, and libyaml's crashes the process (a few hundred
  kilobytes of `[` do it). The depth is counted on the parser's event stream, which does not
  recurse, before any loader sees the document;
- more than `OCIBUILD_MAX_YAML_NODES` values with every alias counted as a copy (nested aliases
  are how a few kilobytes become billions of values for whoever walks them), also counted on
  the events, once per anchor.
"""

from __future__ import annotations

import yaml

from ocibuild.errors import OcibuildError
from ocibuild.limits import YAML_NODES

MAX_DEPTH = 100  # mappings and lists inside each other; a buildinfo uses 2

_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_OPEN = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSE = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


class YAMLInputError(OcibuildError, ValueError):
    """YAML from elsewhere that is malformed or past a limit."""


def read_yaml(data: bytes, what: str) -> object:
    """The value of the YAML document `data`; `what` names it in errors."""
    try:
        _check_events(data, what)
        try:
            return yaml.load(data, Loader=_LOADER)
        except yaml.YAMLError:
            raise
        except Exception as e:  # PyYAML's constructors fail on some input in their own ways
            raise YAMLInputError(f"{what}: not YAML: a value it cannot hold ({e})") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise YAMLInputError(f"{what}: not YAML: {e.problem or e.context}{at}") from None
    except yaml.YAMLError as e:
        raise YAMLInputError(f"{what}: not YAML: {' '.join(str(e).split())}") from None


def _check_events(data: bytes, what: str) -> None:
    limit = YAML_NODES.value
    seen = 0  # values so far, aliases expanded
    opened: list[tuple[str | None, int]] = []  # each open collection: its anchor, `seen` before it
    anchors: dict[str, int] = {}  # the values under each anchor, itself included
    for event in yaml.parse(data, Loader=_LOADER):
        anchor: str | None = None
        if isinstance(event, _OPEN):
            if len(opened) == MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else 0
                raise YAMLInputError(f"{what}: nested deeper than {MAX_DEPTH} levels (line {line})")
            opened.append((event.anchor, seen))
            seen += 1
        elif isinstance(event, _CLOSE):
            anchor, before = opened.pop()
            count = seen - before
        elif isinstance(event, yaml.ScalarEvent):
            anchor, count = event.anchor, 1
            seen += 1
        elif isinstance(event, yaml.AliasEvent):
            seen += anchors.get(event.anchor or "", 1)
        if anchor is not None:
            anchors[anchor] = count
        if seen > limit:
            raise YAMLInputError(
                f"{what}: more than {limit} values with its aliases expanded "
                f"(set {YAML_NODES.name} to change the limit)"
            )
