"""A script a table sources (sourceRequired(), sourceOptional()...) whose every line the frozen
Env can hold: `NAME=WORD`, `export NAME=WORD`, `export NAME`, `unset NAME...`, `true`,
`false`, `:`, blank lines and comments, evaluated as sh does (shell.py). Any other line means
the script cannot be frozen (`NeedsShell`).

With UPS_ENV, ups exports its variables (`UPS_PROD_NAME`, `UPS_PROD_DIR`...: upsget.c
`upsget_allout`) before the `.` and unsets them at the end of its script (`upsget_remall`).
"""

from __future__ import annotations

import re

from ocibuild.ups.scope import Scope
from ocibuild.ups.shell import NeedsShell
from ocibuild.ups.shellstate import ShellState

# upsget.c g_var_subs with include_in_env, and whether an empty one is unset instead
UPS_ENV_VARIABLES = (
    ("UPS_PROD_NAME_UC", False), ("UPS_PROD_NAME", False), ("UPS_PROD_VERSION", False),
    ("UPS_PROD_DIR", False), ("UPS_UPS_DIR", True), ("UPS_VERBOSE", True),
    ("UPS_EXTENDED", True), ("UPS_THIS_DB", False), ("UPS_OS_FLAVOR", False),
    ("UPS_PROD_FLAVOR", False), ("UPS_REQ_QUALIFIERS", False),
    ("UPS_PROD_QUALIFIERS", False), ("UPS_OPTIONS", False), ("UPS_REQ_CHAIN", False),
)  # fmt: skip
_ASSIGNMENT = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)")


def export_ups_variables(shell: ShellState, scope: Scope) -> None:
    """What ups writes before sourcing with UPS_ENV."""
    for name, unset_if_empty in UPS_ENV_VARIABLES:
        value = scope.variables.get(name) or ""
        if unset_if_empty and not value:
            shell.env.pop(name, None)
        else:
            shell.env[name] = value


def unset_ups_variables(shell: ShellState) -> None:
    for name, _ in UPS_ENV_VARIABLES:
        shell.env.pop(name, None)


def source(text: str, shell: ShellState) -> int:
    """`. FILE`: the script's lines applied to the environment; its exit status (its last
    command's). NeedsShell, before anything is applied, when a line is not understood."""
    steps = [_step(line) for line in text.splitlines()]
    status = 0
    for kind, name, word in (s for s in steps if s is not None):
        if kind == "set":
            shell.env[name] = _word(word, shell)
            status = 0
        elif kind == "unset":
            for each in name.split():
                shell.env.pop(each, None)
            status = 0
        else:
            status = 1 if kind == "false" else 0
    return status


def _step(line: str) -> tuple[str, str, str] | None:
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    if line in ("true", ":", "false"):
        return (line if line == "false" else "true", "", "")
    m = _ASSIGNMENT.fullmatch(line)
    if m:
        return ("set", m.group(1), m.group(2))
    words = line.split()
    if words[0] == "export" and all(re.fullmatch(r"[A-Za-z_]\w*", w) for w in words[1:]):
        return ("true", "", "")
    if words[0] == "unset" and all(re.fullmatch(r"[A-Za-z_]\w*", w) for w in words[1:]):
        return ("unset", " ".join(words[1:]), "")
    raise NeedsShell(f"the script line {line!r}")


def _word(word: str, shell: ShellState) -> str:
    """One sh word of an assignment (a blank outside quotes: NeedsShell)."""
    return shell.unquoted(word)
