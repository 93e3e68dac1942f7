"""The little of `sh` that UPS's setup script needs, evaluated without a shell.

UPS writes each table function as sh code and the login shell sources it: a value lands in
`VAR="value"`, a condition runs as `cond; if [ $? = 0 ]`. `quoted_value` evaluates such a
double-quoted value (`$VAR`, `${VAR}`, `${VAR:-word}` and friends, backslash escapes, command
substitutions whose output is known here); `condition` runs `test`/`[` commands joined by
`&&`, `||`, `!`. What only a real shell could answer raises `NeedsShell`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping

# command substitutions whose output is the same in every image of a Linux x86_64 host
KNOWN_COMMANDS = {
    "uname": "Linux",
    "uname -s": "Linux",
    "uname -m": "x86_64",
    "uname -p": "x86_64",
    "arch": "x86_64",
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class NeedsShell(Exception):
    """The text does something only a shell running in the image could tell."""


def quoted_value(text: str, env: Mapping[str, str], commands: Mapping[str, str]) -> str:
    """What `X="text"` assigns: the text as the inside of a double-quoted word. A `"` in it
    closes and reopens the quotes, which changes nothing unless a blank is then left
    unquoted."""
    out: list[str] = []
    i = 0
    quoted = True
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt in '$`"\\' or not quoted:
                out.append(nxt)
            elif nxt != "\n":
                out.append(ch + nxt)
            i += 2
        elif ch == '"':
            quoted = not quoted
            i += 1
        elif ch == "'" and not quoted:
            end = text.find("'", i + 1)
            if end < 0:
                raise NeedsShell("an unclosed quote")
            out.append(text[i + 1 : end])
            i = end + 1
        elif ch in " \t" and not quoted:
            raise NeedsShell("a blank outside quotes")
        elif ch == "$":
            value, i = _dollar(text, i, env, commands)
            out.append(value)
        elif ch == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise NeedsShell("an unclosed backquote")
            out.append(_substitute(text[i + 1 : end], commands))
            i = end + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def unquoted_value(text: str, env: Mapping[str, str], commands: Mapping[str, str]) -> str:
    """What `X=text` assigns (no word splitting in an assignment)."""
    if text[:1] == text[-1:] == "'" and len(text) >= 2 and "'" not in text[1:-1]:
        return text[1:-1]
    return quoted_value('"' + text + '"', env, commands) if text else ""


def _dollar(
    text: str, i: int, env: Mapping[str, str], commands: Mapping[str, str]
) -> tuple[str, int]:
    rest = text[i + 1 :]
    if rest.startswith("("):
        end = text.find(")", i + 2)
        if end < 0:
            raise NeedsShell("an unclosed $(")
        return _substitute(text[i + 2 : end], commands), end + 1
    if rest.startswith("{"):
        end = text.find("}", i + 2)
        if end < 0:
            raise NeedsShell("an unclosed ${")
        return _parameter(text[i + 2 : end], env, commands), end + 1
    m = _NAME.match(rest)
    if m:
        return env.get(m.group(), ""), i + 1 + m.end()
    if rest[:1] and rest[0] in "0123456789@*#?$!-":
        raise NeedsShell(f"the shell parameter ${rest[0]}")
    return "$", i + 1


def _parameter(inner: str, env: Mapping[str, str], commands: Mapping[str, str]) -> str:
    m = _NAME.match(inner)
    if m is None:
        raise NeedsShell(f"${{{inner}}}")
    name, op = m.group(), inner[m.end() :]
    value = env.get(name)
    if not op:
        return value or ""
    for form in (":-", ":+", ":=", "-", "+", "="):
        if op.startswith(form):
            word = quoted_value(op[len(form) :], env, commands)
            unset = value is None or (form.startswith(":") and value == "")
            if form.endswith("+"):
                return "" if unset else word
            return word if unset else value or ""
    raise NeedsShell(f"${{{inner}}}")


def _substitute(command: str, commands: Mapping[str, str]) -> str:
    key = " ".join(command.split())
    if key in commands:
        return commands[key]
    raise NeedsShell(f"the command substitution `{command}`")


# -- conditions -----------------------------------------------------------------------------

Exists = Callable[[str, str], "bool | None"]  # (path, kind d/f/e/s) -> known answer or None


def condition(
    text: str, env: Mapping[str, str], commands: Mapping[str, str], exists: Exists
) -> bool:
    """The exit status (0 -> True) of a command list of `test`, `[ ]`, `true`, `false`, `:`
    joined by `&&` / `||`, with `!`."""
    words = _words(text, env, commands)
    result: bool | None = None
    pending = ""
    current: list[str] = []
    for word in [*words, ";"]:
        if word in ("&&", "||", ";"):
            if not current:
                raise NeedsShell(f"an empty command in {text!r}")
            if (
                result is None
                or pending == ";"
                or (pending == "&&" and result)
                or (pending == "||" and not result)
            ):
                result = _command(current, env, commands, exists)
            pending, current = word, []
        else:
            current.append(word)
    assert result is not None
    return result


def _words(text: str, env: Mapping[str, str], commands: Mapping[str, str]) -> list[str]:
    expanded = _expand_outside_single_quotes(text, env, commands)
    lexer = shlex.shlex(expanded, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        words = list(lexer)
    except ValueError as e:
        raise NeedsShell(str(e)) from None
    if any(w and set(w) <= set(";&|") and w not in ("&&", "||", ";") for w in words):
        raise NeedsShell(f"a pipe or background job in {text!r}")
    return words


def _expand_outside_single_quotes(
    text: str, env: Mapping[str, str], commands: Mapping[str, str]
) -> str:
    """`$VAR` and command substitutions replaced; the result is quoted so that it stays one
    word when it was inside double quotes (and is split on blanks otherwise, as sh does)."""
    out: list[str] = []
    i = 0
    in_double = False
    while i < len(text):
        ch = text[i]
        if ch == "'" and not in_double:
            end = text.find("'", i + 1)
            if end < 0:
                raise NeedsShell("an unclosed quote")
            out.append(text[i : end + 1])
            i = end + 1
        elif ch == '"':
            in_double = not in_double
            out.append(ch)
            i += 1
        elif ch == "\\" and i + 1 < len(text):
            out.append(text[i : i + 2])
            i += 2
        elif ch in "$`":
            if ch == "$":
                value, i = _dollar(text, i, env, commands)
            else:
                end = text.find("`", i + 1)
                if end < 0:
                    raise NeedsShell("an unclosed backquote")
                value, i = _substitute(text[i + 1 : end], commands), end + 1
            out.append(_escape(value, in_double))
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _escape(value: str, in_double: bool) -> str:
    if in_double:
        return re.sub(r'(["\\])', r"\\\1", value)
    return " ".join(shlex.quote(w) for w in value.split())


_FOR_LOOP = re.compile(
    r"\s*for\s+(?P<var>[A-Za-z_]\w*)\s+in\s+(?P<words>[^;]*);\s*do\s+(?P<body>.*?)\s*&&\s*exit"
    r"\s*;\s*done\s*;\s*exit\s+1\s*;?\s*"
)


def _command(
    words: list[str], env: Mapping[str, str], commands: Mapping[str, str], exists: Exists
) -> bool:
    negate = False
    while words[:1] == ["!"]:
        negate, words = not negate, words[1:]
    if not words:
        raise NeedsShell("`!` alone")
    if words[0] in ("true", ":"):
        result = True
    elif words[0] == "false":
        result = False
    elif words[0] == "test":
        result = _or(words[1:], exists)
    elif words[0] == "[" and words[-1:] == ["]"]:
        result = _or(words[1:-1], exists)
    elif words[:2] == ["sh", "-c"] and len(words) == 3:
        result = _any_in_loop(words[2], env, commands, exists)
    else:
        raise NeedsShell(f"the command {words[0]!r}")
    return result != negate


def _any_in_loop(
    script: str, env: Mapping[str, str], commands: Mapping[str, str], exists: Exists
) -> bool:
    """`sh -c 'for dd in bin lib;do [ -d DIR/$dd ] && exit;done;exit 1'`, the test
    cetbuildtools writes into tables: whether the test holds for any of the words."""
    m = _FOR_LOOP.fullmatch(script)
    if m is None:
        raise NeedsShell(f"the script sh -c {script!r}")
    var = m["var"]
    for word in m["words"].split():
        inner = {**env, var: word}
        if condition(m["body"], inner, commands, exists):
            return True
    return False


def _or(words: list[str], exists: Exists) -> bool:
    results = [_and(part, exists) for part in _split(words, "-o")]
    return any(results)


def _and(words: list[str], exists: Exists) -> bool:
    results = [_primary(part, exists) for part in _split(words, "-a")]
    return all(results)


def _primary(words: list[str], exists: Exists) -> bool:
    negations = 0
    while words[:1] == ["!"]:  # counted, not recursed into: a table may hold thousands
        negations += 1
        words = words[1:]
    return _test(words, exists) != bool(negations % 2)


def _test(words: list[str], exists: Exists) -> bool:
    if len(words) == 0:
        return False
    if len(words) == 1:
        return bool(words[0])
    if len(words) == 2:
        op, arg = words
        if op in ("-d", "-f", "-e", "-r", "-s", "-x"):
            known = exists(arg, "e" if op in ("-r", "-x") else op[1])
            if known is None:
                raise NeedsShell(f"test {op} {arg} (outside the products tree)")
            return known
        if op == "-z":
            return not arg
        if op == "-n":
            return bool(arg)
        raise NeedsShell(f"test {op}")
    if len(words) == 3:
        left, op, right = words
        if op in ("=", "=="):
            return left == right
        if op == "!=":
            return left != right
        numeric = {"-eq": "==", "-ne": "!=", "-lt": "<", "-le": "<=", "-gt": ">", "-ge": ">="}
        if op in numeric:
            try:
                a, b = int(left), int(right)
            except ValueError:
                raise NeedsShell(f"test {left} {op} {right}") from None
            return {
                "==": a == b,
                "!=": a != b,
                "<": a < b,
                "<=": a <= b,
                ">": a > b,
                ">=": a >= b,
            }[numeric[op]]
    raise NeedsShell(f"test {' '.join(words)}")


def _split(words: list[str], operator: str) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    for word in words:
        if word == operator:
            parts.append([])
        else:
            parts[-1].append(word)
    return parts
