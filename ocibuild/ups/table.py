"""UPS `.table` files: per flavor and qualifiers, named actions made of function calls.

    File=Table
    Product=cetlib
    Group:
      Flavor=ANY
      Qualifiers=e9:prof
        Action=DefineFQ
          envSet(CETLIB_FQ_DIR, ${UPS_PROD_DIR}/${UPS_PROD_FLAVOR}-e9-prof)
    Common:
      Action=setup
        setupEnv()
        prodDir()
        exeActionRequired(DefineFQ)
        setupRequired( boost v1_57_0 -q +e9:+prof )
        if ( test `uname` = "Darwin" )
          envPrepend(DYLD_LIBRARY_PATH, ${CETLIB_FQ_DIR}/lib)
        else()
          envPrepend(LD_LIBRARY_PATH, ${CETLIB_FQ_DIR}/lib)
        endif ( test `uname` = "Darwin" )
    End:

Without `Group:`, each `Flavor=` starts an instance with its own actions. In a group, the
`Common:` actions are added to every instance of the group. Other `KEY=value` lines of an
instance (`_qualbits=e9-prof`) define variables its actions can use. Keywords and function
names are case-insensitive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ocibuild.errors import SourceError

_CALL = re.compile(r"(?P<name>[A-Za-z_]\w*)\s*\((?P<args>.*)\)\s*(?:#.*)?$")
_SETTING = re.compile(r"(?P<key>[A-Za-z_][\w.]*)\s*=\s*(?P<value>.*)$")
_MARKER = re.compile(r"(?P<marker>group|common|end)\s*:", re.IGNORECASE)


@dataclass(frozen=True)
class Command:
    name: str  # lower case
    args: tuple[str, ...]
    text: str  # the line as written
    line: int


@dataclass
class TableInstance:
    flavor: str
    qualifiers: str = ""
    actions: dict[str, list[Command]] = field(default_factory=dict)  # lower-case name ->
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Table:
    product: str
    instances: list[TableInstance]
    path: str


def parse_table(text: str, where: str) -> Table:
    return _Parser(where).parse(text)


class _Parser:
    def __init__(self, where: str) -> None:
        self.where = where
        self.product = ""
        self.instances: list[TableInstance] = []
        self.group: list[TableInstance] | None = None
        self.common: dict[str, list[Command]] | None = None
        self.instance: TableInstance | None = None
        self.action: list[Command] | None = None

    def parse(self, text: str) -> Table:
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if line and not line.startswith("#"):
                self.line(line, number)
        self.end_group()
        return Table(self.product, self.instances, self.where)

    def fail(self, number: int, message: str) -> SourceError:
        return SourceError(f"{self.where}:{number}: {message}")

    def line(self, line: str, number: int) -> None:
        if marker := _MARKER.fullmatch(line):
            self.marker(marker["marker"].lower(), number)
        elif call := _CALL.match(line):
            if self.action is None:
                raise self.fail(number, f"{call['name']}(...) outside an Action")
            args = tuple(split_args(call["args"]))
            self.action.append(Command(call["name"].lower(), args, line, number))
        elif setting := _SETTING.match(line):
            self.setting(setting["key"], setting["value"].strip().strip('"'), number)
        else:
            raise self.fail(number, f"cannot read {line!r}")

    def marker(self, marker: str, number: int) -> None:
        if marker == "group":
            self.end_group()
            self.group, self.instance, self.action = [], None, None
        elif marker == "common":
            if self.group is None:
                raise self.fail(number, "Common: outside a Group:")
            self.common, self.instance, self.action = {}, None, None
        else:
            self.end_group()

    def setting(self, key: str, value: str, number: int) -> None:
        upper = key.upper()
        if upper == "FLAVOR":
            if self.common is not None:
                raise self.fail(number, "Flavor= after Common: (missing End:?)")
            self.instance = TableInstance(value)
            self.action = None
            (self.group if self.group is not None else self.instances).append(self.instance)
        elif upper == "QUALIFIERS":
            if self.instance is None:
                raise self.fail(number, "Qualifiers= before any Flavor=")
            self.instance.qualifiers = value
        elif upper == "ACTION":
            owner = self.common if self.common is not None else _actions(self.instance)
            if owner is None:
                raise self.fail(number, f"Action={value} before any Flavor=")
            self.action = owner.setdefault(value.lower(), [])
        elif upper == "PRODUCT":
            self.product = value
        elif upper in ("FILE", "VERSION"):
            pass
        elif self.instance is not None and self.action is None:
            self.instance.variables[key] = value
        elif self.action is not None:
            raise self.fail(number, f"{key}= inside Action (a function call was expected)")

    def end_group(self) -> None:
        if self.group is None:
            return
        for instance in self.group:
            for name, commands in (self.common or {}).items():
                instance.actions[name] = [*instance.actions.get(name, []), *commands]
        self.instances.extend(self.group)
        self.group = self.common = self.instance = self.action = None


def _actions(instance: TableInstance | None) -> dict[str, list[Command]] | None:
    return None if instance is None else instance.actions


def split_args(text: str) -> list[str]:
    """Arguments of a call: split at top-level commas (not inside quotes, backquotes or
    brackets), stripped, one pair of surrounding double quotes removed."""
    args: list[str] = []
    depth = 0
    quote = ""
    current: list[str] = []
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'`":
            quote = ch
        elif ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append("".join(current))
            current = []
            continue
        current.append(ch)
    args.append("".join(current))
    out = [a.strip() for a in args]
    out = [a[1:-1] if len(a) >= 2 and a[0] == a[-1] == '"' else a for a in out]
    return [] if out == [""] else out
