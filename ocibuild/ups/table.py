"""The lines of a table action: the functions ups v6_0_8 knows in a table file (upsact.c
g_func_info, with their fewest and most arguments) and how it parses a call
(`upsact_parse_cmd`, `parse_params`):

A call is `name(arguments)`: the name is matched case-insensitively (blanks may precede `(`),
the arguments run to the end of the line with blanks, `;` and `)` trimmed from both ends, and
are split at commas outside double quotes; each is trimmed and loses one pair of surrounding
quotes. ups parses a call after replacing its `${UPS_...}` variables (scope.py), so
`parse_call` is used on the translated line. The files themselves are read by upsfile.py.
"""

from __future__ import annotations

from dataclasses import dataclass

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
