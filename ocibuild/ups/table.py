"""UPS `.table` files: per flavor and qualifiers, named actions made of function calls.

    File=Table
    Product=cetlib
    Group:
      Flavor=ANY
      Qualifiers=e9:prof
        _fq = e9-prof
        Action=DefineFQ
          envSet(CETLIB_FQ_DIR, ${UPS_PROD_DIR}/${UPS_PROD_FLAVOR}-${_fq})
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

The rules are UPS's (upsfil.c, upsact.c): a line whose first non-blank character is `#` is a
comment, anywhere; a line holding `=` is `KEY = value` (the key runs to the first blank or
`=`, one pair of quotes around the value is dropped); keywords are case-insensitive. Inside an
action every line that is not a keyword is a function call; a keyword ends the action. Lines
starting with `_` define the instance's own variables (`${_fq}`). Without `Group:`, each
`Flavor=` starts an instance with its own actions; in a group, the `Common:` actions are added
to every instance of the group.

A call is `name(arguments)`: the name is matched case-insensitively (blanks may precede `(`),
the arguments run to the end of the line with blanks, `;` and `)` trimmed from both ends, and
are split at commas outside double quotes; each is trimmed and loses one pair of surrounding
quotes. UPS parses a call after replacing its `${UPS_...}` variables, so `parse_call` is used on
the translated line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ocibuild.errors import SourceError

# name -> (fewest, most arguments): every function UPS v5/v6 accepts in a table file.
FUNCTIONS: dict[str, tuple[int, int]] = {
    "setupoptional": (1, 1),
    "setuprequired": (1, 1),
    "unsetupoptional": (1, 1),
    "unsetuprequired": (1, 1),
    "exeactionoptional": (1, 1),
    "exeactionrequired": (1, 1),
    "rev_exeactionoptional": (1, 1),
    "rev_exeactionrequired": (1, 1),
    "sourcecompilereq": (1, 1),
    "sourcecompileopt": (1, 1),
    "envappend": (2, 3),
    "envremove": (2, 3),
    "envprepend": (2, 3),
    "envset": (2, 2),
    "envsetifnotset": (2, 2),
    "envunset": (1, 1),
    "pathappend": (2, 3),
    "pathremove": (2, 3),
    "pathprepend": (2, 3),
    "pathset": (2, 2),
    "addalias": (2, 2),
    "unalias": (1, 1),
    "sourcerequired": (2, 3),
    "sourceoptional": (2, 3),
    "sourcereqcheck": (2, 3),
    "sourceoptcheck": (2, 3),
    "exeaccess": (1, 1),
    "execute": (2, 3),
    "filetest": (2, 3),
    "writecompilescript": (2, 3),
    "dodefaults": (0, 1),
    "setupenv": (0, 0),
    "proddir": (0, 2),
    "unsetupenv": (0, 0),
    "unproddir": (0, 1),
    "if": (1, 1),
    "endif": (1, 1),
    "else": (0, 0),
    "unless": (1, 1),
    "endunless": (1, 1),
}
# keywords of UPS files other than the structure ones: they end an action, their values are
# not used by `setup`
_OTHER_KEYWORDS = {
    "CHAIN",
    "DECLARER",
    "DECLARED",
    "MODIFIER",
    "MODIFIED",
    "PROD_DIR",
    "UPS_DIR",
    "TABLE_DIR",
    "TABLE_FILE",
    "ARCHIVE_FILE",
    "AUTHORIZED_NODES",
    "DESCRIPTION",
    "STATISTICS",
    "COMPILE_DIR",
    "COMPILE_FILE",
    "CATMAN_SOURCE_DIR",
    "HTML_SOURCE_DIR",
    "INFO_SOURCE_DIR",
    "MAN_SOURCE_DIR",
    "NEWS_SOURCE_DIR",
    "ORIGIN",
    "USER",
}
_MARKER = re.compile(r"(?P<marker>group|common|end)\s*:", re.IGNORECASE)


@dataclass(frozen=True)
class Command:
    name: str  # the function, lower case; "" when the line is no call UPS knows
    text: str  # the line as written
    line: int

    @property
    def args(self) -> tuple[str, ...]:
        """The arguments as written (before UPS replaces its variables)."""
        call = parse_call(self.text)
        return tuple(call[1]) if call else ()


@dataclass
class TableInstance:
    flavor: str
    qualifiers: str = ""
    actions: dict[str, list[Command]] = field(default_factory=dict)  # lower-case name ->
    variables: dict[str, str] = field(default_factory=dict)  # `_name = value` lines


@dataclass(frozen=True)
class Table:
    product: str
    instances: list[TableInstance]
    path: str


def parse_table(text: str, where: str) -> Table:
    return _Parser(where).parse(text)


def parse_call(text: str) -> tuple[str, list[str]] | None:
    """`envSet (X, "a b")` -> ("envset", ["X", "a b"]); None when the text is no call of a
    function UPS knows."""
    text = text.lstrip()
    name, paren, rest = text.partition("(")
    name = name.rstrip().lower()
    if not paren or name not in FUNCTIONS:
        return None
    rest = rest.strip(" ;").strip(" \t\n\r\f)")
    return name, split_args(rest)


def split_args(text: str) -> list[str]:
    """UPS's parameter split: at commas outside double quotes (an unclosed quote takes the
    rest of the line); each argument trimmed and stripped of one pair of `"` or `'`."""
    args: list[str] = []
    current: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            if current is None:
                current = ""
            end = text.find('"', i + 1)
            if end < 0:
                current = text[i + 1 :]
                i = len(text)
                break
            current += text[i : end + 1]
            i = end + 1
        elif ch == ",":
            if current is not None:
                args.append(_unquote(current))
            current = ""
            i += 1
        else:
            current = (current or "") + ch
            i += 1
    if current is not None:
        args.append(_unquote(current))
    return args


def _unquote(arg: str) -> str:
    arg = arg.strip(" \t\n\r\f")
    if len(arg) >= 2 and arg[0] == arg[-1] and arg[0] in "\"'":
        return arg[1:-1]
    return arg


class _Parser:
    def __init__(self, where: str) -> None:
        self.where = where
        self.product = ""
        self.instances: list[TableInstance] = []
        self.group: list[TableInstance] | None = None
        self.common: TableInstance | None = None
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
            return
        key, sep, value = line.partition("=")
        if sep:
            key = re.split(r"\s", key, maxsplit=1)[0]
            value = _unquote_value(value.strip())
        else:
            key = line
        upper = key.upper()
        if upper in ("FILE", "PRODUCT", "VERSION", "FLAVOR", "QUALIFIERS", "ACTION") and sep:
            self.keyword(upper, value, number)
        elif line.startswith("_") and sep:
            self.action = None
            owner = self.common if self.common is not None else self.instance
            if owner is not None:
                owner.variables[key] = value
        elif upper in _OTHER_KEYWORDS and sep:
            self.action = None
        elif self.action is not None:
            call = parse_call(line)
            self.action.append(Command(call[0] if call else "", line, number))
        # anything else outside an action UPS passes over

    def marker(self, marker: str, number: int) -> None:
        if marker == "group":
            self.end_group()
            self.group, self.instance, self.action = [], None, None
        elif marker == "common":
            if self.group is None:
                raise self.fail(number, "Common: outside a Group:")
            self.common, self.instance, self.action = TableInstance("common"), None, None
        else:
            self.end_group()

    def keyword(self, key: str, value: str, number: int) -> None:
        if key == "FLAVOR":
            if self.common is not None:
                raise self.fail(number, "Flavor= after Common: (missing End:?)")
            self.instance = TableInstance(value)
            self.action = None
            (self.group if self.group is not None else self.instances).append(self.instance)
        elif key == "QUALIFIERS":
            if self.instance is None:
                raise self.fail(number, "Qualifiers= before any Flavor=")
            self.instance.qualifiers = value
            self.action = None
        elif key == "ACTION":
            owner = self.common if self.common is not None else self.instance
            if owner is None:
                raise self.fail(number, f"Action={value} before any Flavor=")
            self.action = owner.actions.setdefault(value.lower(), [])
        elif key == "PRODUCT":
            self.product = value
            self.action = None

    def end_group(self) -> None:
        if self.group is None:
            return
        # as upsfil.c's add_to_instance: Common's actions come after the instance's own (UPS
        # takes the first of a name), Common's `_name` lines replace the instance's
        common = self.common or TableInstance("common")
        for instance in self.group:
            for name, commands in common.actions.items():
                instance.actions.setdefault(name, commands)
            if common.variables:
                instance.variables = dict(common.variables)
        self.instances.extend(self.group)
        self.group = self.common = self.instance = self.action = None


def _unquote_value(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value
