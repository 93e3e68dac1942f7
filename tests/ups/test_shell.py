"""The sh that UPS's setup script runs for a value or a condition, evaluated without a shell."""

from __future__ import annotations

import pytest

from ocibuild.ups.shell import KNOWN_COMMANDS, NeedsShell, condition, quoted_value, unquoted_value

ENV = {"HOME": "/home/hep", "EMPTY": "", "DIR": "/products/a/v1"}


def exists(path: str, kind: str) -> bool | None:
    if not path.startswith("/products/"):
        return None
    dirs = {"/products/a/v1", "/products/a/v1/bin"}
    files = {"/products/a/v1/bin/a"}
    return {"d": path in dirs, "f": path in files}.get(kind, path in dirs | files)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("$HOME/x", "/home/hep/x"),
        ("${HOME}y", "/home/hepy"),
        ("${NOPE:-a}${EMPTY:-b}${EMPTY-c}${HOME:+d}${NOPE+e}", "abd"),
        ('a"b"c', "abc"),
        ("\\$HOME \\\\ \\` \\x", "$HOME \\ ` \\x"),
        ("`uname`/$(uname -m)", "Linux/x86_64"),
        ("cost: 5$", "cost: 5$"),
    ],
)
def test_double_quoted_values(text: str, value: str) -> None:
    assert quoted_value(text, ENV, KNOWN_COMMANDS) == value


@pytest.mark.parametrize("text", ["`hostname`", "$(id -u)", "$1", 'a"b c', "${HOME"])
def test_what_only_a_shell_can_tell(text: str) -> None:
    with pytest.raises(NeedsShell):
        quoted_value(text, ENV, KNOWN_COMMANDS)


def test_unquoted_assignment_values() -> None:
    assert unquoted_value("'$HOME'", ENV, {}) == "$HOME"
    assert unquoted_value("$HOME/lib", ENV, {}) == "/home/hep/lib"


@pytest.mark.parametrize(
    ("text", "holds"),
    [
        ("test -d ${DIR}/bin", True),
        ("[ -f $DIR/bin/a -a ! -d $DIR/bin/a ]", True),
        ('test -e $DIR/lib -o -z "$EMPTY"', True),
        ('test "$HOME" = /home/hep && test 3 -lt 10', True),
        ('false || test -n "$EMPTY"', False),
        ("! test -d $DIR/lib; true", True),
        ("sh -c 'for dd in lib bin;do [ -d $DIR/$dd ] && exit;done;exit 1'", True),
        ("sh -c 'for dd in lib man;do [ -d /products/a/v1/$dd ] && exit;done;exit 1'", False),
        ('test "`uname`" = "Darwin"', False),
    ],
)
def test_conditions(text: str, holds: bool) -> None:
    assert condition(text, ENV, KNOWN_COMMANDS, exists) is holds


@pytest.mark.parametrize(
    "text",
    ["test -d /usr/lib64", "lsb_release -si", "test -d $DIR | grep x", "sh -c 'exit 0'"],
)
def test_conditions_only_a_shell_can_answer(text: str) -> None:
    with pytest.raises(NeedsShell):
        condition(text, ENV, KNOWN_COMMANDS, exists)
