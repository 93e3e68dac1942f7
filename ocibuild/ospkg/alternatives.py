"""Debian's alternatives, as the packages' postinst scripts would have made them with
`update-alternatives --install`, without running a script.

The calls are read from the scripts' text: every `update-alternatives ... --install LINK NAME
PATH PRIORITY [--slave LINK NAME PATH]...` (backslash-continued lines joined, shell comments
dropped), whatever shell condition it stands under (a postinst of a fresh install runs with
`configure`). A command substitution in such a call is evaluated when it is made of what
xz-utils' postinst uses to list its slaves: `for` loops, assignments, `echo`, and calls of the
script's functions made of the same; nothing is run. A call with another non-literal word (a
`$VAR` from elsewhere, a command) is taken up to that word, and the rest reported as not
evaluated.

The choice is dpkg's in auto mode: of a group's choices (sorted by path) the first of the
highest priority. What dpkg writes: LINK -> /etc/alternatives/NAME -> PATH for the master and
each slave whose path exists in the chosen set, and the group's state file
/var/lib/dpkg/alternatives/NAME (`auto`, the master link, slaves sorted by name, then each
choice: path, priority, slave paths).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ocibuild.layer.entry import Entry, bytes_entry, symlink_entry

ALTDIR = "/etc/alternatives"
ADMINDIR = "/var/lib/dpkg/alternatives"
_CONTINUATION = re.compile(r"\\\n")
_SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", "then", "do", "else", "fi", "done"}


@dataclass(frozen=True)
class Slave:
    name: str
    link: str
    path: str


@dataclass(frozen=True)
class Install:
    """One `update-alternatives --install` call of a package's postinst."""

    package: str
    link: str
    name: str
    path: str
    priority: int
    slaves: tuple[Slave, ...] = ()


@dataclass(frozen=True)
class Group:
    """An alternative (`cc`, `awk`) with every choice the packages offer for it."""

    name: str
    link: str
    slaves: tuple[tuple[str, str], ...]  # (name, link), sorted by name
    choices: tuple[Install, ...]  # sorted by path

    @property
    def best(self) -> Install:
        """What auto mode chooses: the highest priority, the first path of those."""
        top = max(c.priority for c in self.choices)
        return next(c for c in self.choices if c.priority == top)


def install_calls(package: str, script: str) -> tuple[list[Install], list[str]]:
    """The `--install` calls in a maintainer script, and a note for each call (or part of one)
    that could not be read without running the shell."""
    calls: list[Install] = []
    notes: list[str] = []
    script = _substituted(script)
    for line in _CONTINUATION.sub(" ", script).splitlines():
        if "update-alternatives" not in line:
            continue
        words = _words(line)
        while "update-alternatives" in words:
            words = words[words.index("update-alternatives") + 1 :]
            call, note = _install(package, words)
            if call is not None:
                calls.append(call)
            if note:
                notes.append(note)
    return calls, notes


_FUNCTION = re.compile(r"^\s*(\w+)\s*\(\)\s*\{\s*\n(.*?)\n\s*\}", re.S | re.M)
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_ASSIGNMENT = re.compile(r"(\w+)=(.*)", re.S)


def _substituted(script: str) -> str:
    """The script with each command substitution of an update-alternatives line replaced by
    its output, where `_run` can tell it without running anything."""
    functions = {m.group(1): m.group(2).splitlines() for m in _FUNCTION.finditer(script)}
    out, at = [], 0
    while (start := script.find("$(", at)) >= 0:
        line_start = script.rfind("\n", 0, start) + 1
        end = _closing(script, start + 2)
        if end < 0:
            break
        output = None
        if "update-alternatives" in script[line_start:start]:
            output = _run(script[start + 2 : end].splitlines(), {}, functions, 0)
        if output is None:
            out.append(script[at : end + 1])
        else:
            out.append(script[at:start] + " ".join(shlex.quote(w) for w in output.split()))
        at = end + 1
    return "".join(out) + script[at:]


def _closing(text: str, at: int) -> int:
    """The index of the `)` closing a `$(` whose body starts at `at` (-1: none)."""
    depth = 1
    for i in range(at, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i
    return -1


def _run(
    lines: list[str], env: dict[str, str], functions: dict[str, list[str]], depth: int
) -> str | None:
    """What `lines` print, for the small shell they may be written in; None for anything
    else."""
    statements = [
        part.strip() for line in lines for part in line.split("#", 1)[0].split(";") if part.strip()
    ]
    out: list[str] = []
    i = 0
    while i < len(statements):
        words = _expanded(statements[i], env)
        if words is None or depth > 8:
            return None
        if words[0] == "for" and len(words) >= 3 and words[2] == "in":
            end, nested = i + 1, 0
            while end < len(statements) and not (statements[end] == "done" and nested == 0):
                nested += statements[end].startswith("for ") - (statements[end] == "done")
                end += 1
            if end == len(statements) or statements[i + 1] != "do":
                return None
            for item in words[3:]:
                printed = _run(statements[i + 2 : end], {**env, words[1]: item}, functions, depth)
                if printed is None:
                    return None
                out.append(printed)
            i = end + 1
            continue
        if all(_ASSIGNMENT.fullmatch(w) for w in words):
            env = {**env, **dict(w.split("=", 1) for w in words)}
        elif words[0] == "echo":
            out.append(" ".join(words[1:]))
        elif words[0] in functions:
            args = {str(n): a for n, a in enumerate(words[1:], 1)}
            printed = _run(functions[words[0]], args, functions, depth + 1)
            if printed is None:
                return None
            out.append(printed)
        else:
            return None
        i += 1
    return "\n".join(p for p in out if p)


def _expanded(statement: str, env: dict[str, str]) -> list[str] | None:
    """The statement's words, variables expanded; None if it has what cannot be."""
    if "`" in statement or "$(" in statement:
        return None
    try:
        words = shlex.split(
            _VARIABLE.sub(lambda m: env.get(m.group(1) or m.group(2), ""), statement)
        )
    except ValueError:
        return None
    return words or None


def _words(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        return list(lexer)
    except ValueError:  # an open quote: a line of a larger construct
        return line.split("#", 1)[0].split()


def _literal(word: str) -> bool:
    return not any(c in word for c in "$`*?[")


def _install(package: str, words: list[str]) -> tuple[Install | None, str]:
    args: list[str] = []
    for word in words:
        if word in _SEPARATORS or word == "update-alternatives":
            break
        args.append(word)
    if "--install" not in args:
        return None, ""
    args = args[args.index("--install") + 1 :]
    stop = next((i for i, w in enumerate(args) if not _literal(w)), len(args))
    note = ""
    if stop < len(args):
        note = f"{package}: update-alternatives {_shown(args[: stop + 1])} ...: not evaluated from {_shown([args[stop]])!r} on"
    args = args[:stop]
    said = f"{package}: update-alternatives --install {_shown(args)}"
    if len(args) < 4 or not _PRIORITY.fullmatch(args[3]):
        return None, note or f"{said}: not understood"
    link, name, path, priority = args[:4]
    slaves = []
    rest = args[4:]
    while len(rest) >= 4 and rest[0] == "--slave":
        slaves.append(Slave(rest[2], rest[1], rest[3]))
        rest = rest[4:]
    for what in (Slave(name, link, path), *slaves):
        refused = _refused(what)
        if refused:
            return None, f"{said}: refused: {refused}"
    return Install(package, link, name, path, int(priority), tuple(slaves)), note


_PRIORITY = re.compile(r"-?[0-9]{1,9}")  # update-alternatives takes an int


def _shown(words: list[str], most: int = 160) -> str:
    """Words of a script for a message, cut short: a script may hold anything."""
    text = " ".join(words)
    return text if len(text) <= most else text[:most] + "..."


def _refused(call: Slave) -> str:
    """Why update-alternatives would refuse these names, or an image path its link or path
    could not be (a `..` would put the link elsewhere than the call says); '' if neither."""
    if not call.name or call.name in (".", "..") or re.search(r"[/\s]", call.name):
        return f"alternative name {call.name!r} is empty or holds a slash or a space"
    for path in (call.link, call.path):
        if not path.startswith("/") or ".." in path.split("/") or "\0" in path:
            return f"{path!r} is not an absolute path without '..'"
    return ""


def groups(calls: Iterable[Install], exists: Callable[[str], bool]) -> list[Group]:
    """The alternatives the calls make, by name; a choice whose path the image lacks is left
    out, as `update-alternatives` refuses it."""
    by_name: dict[str, list[Install]] = {}
    for call in calls:
        if exists(call.path):
            by_name.setdefault(call.name, []).append(call)
    out = []
    for name, choices in sorted(by_name.items()):
        slaves: dict[str, str] = {}
        for choice in choices:
            for slave in choice.slaves:
                slaves.setdefault(slave.name, slave.link)
        unique = {c.path: c for c in choices}  # a later call for the same path replaces it
        out.append(
            Group(
                name,
                choices[0].link,
                tuple(sorted(slaves.items())),
                tuple(unique[p] for p in sorted(unique)),
            )
        )
    return out


def state_file(group: Group) -> bytes:
    """/var/lib/dpkg/alternatives/NAME as dpkg writes it (auto mode)."""
    lines = ["auto", group.link]
    for name, link in group.slaves:
        lines += [name, link]
    lines.append("")
    for choice in group.choices:
        paths = {s.name: s.path for s in choice.slaves}
        lines += [choice.path, str(choice.priority), *(paths.get(n, "") for n, _ in group.slaves)]
    lines.append("")
    return ("\n".join(lines) + "\n").encode()


def entries(found: list[Group], exists: Callable[[str], bool]) -> Iterator[Entry]:
    """The links of every group's best choice and the groups' state files."""
    for group in found:
        best = group.best
        paths = {s.name: s.path for s in best.slaves}
        yield symlink_entry(group.link, f"{ALTDIR}/{group.name}")
        yield symlink_entry(f"{ALTDIR}/{group.name}", best.path)
        for name, link in group.slaves:
            if name in paths and exists(paths[name]):
                yield symlink_entry(link, f"{ALTDIR}/{name}")
                yield symlink_entry(f"{ALTDIR}/{name}", paths[name])
        yield bytes_entry(f"{ADMINDIR}/{group.name}", state_file(group))
