"""The environment edits of UPS's table functions, as the sh code UPS writes for them does them
(upsact.c of UPS v5/v6): values already evaluated, names as written.

    envSet(V, x)          V="x"
    envSetIfNotSet(V, x)  if [ "${V:-}" = "" ]; then V="x"; fi
    envAppend(V, x[, d])  V="x" when V is empty, else V="${V}dx"        (d defaults to ':')
    envPrepend(V, x[, d]) V="x" when V is empty, else V="xd${V}"
    envRemove(V, x[, d])  V=`dropit -e -p "$V" -i d -d d x`, unset when that leaves nothing
    pathSet / pathAppend / pathPrepend / pathRemove: the env... ones (`path` means PATH)

No duplicate is removed on append or prepend: UPS does not either.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence

DEFAULT_DELIMITER = ":"


def delimiter(args: Sequence[str], most: int) -> str:
    """The optional last argument: quotes dropped, an empty one means a blank."""
    if len(args) < most:
        return DEFAULT_DELIMITER
    value = args[most - 1]
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return value or " "


def path_name(name: str) -> str:
    """The path* functions take csh's `path` for PATH."""
    return "PATH" if name == "path" else name


def set_if_not_set(env: MutableMapping[str, str], name: str, value: str) -> None:
    if not env.get(name):
        env[name] = value


def append(env: MutableMapping[str, str], name: str, value: str, delim: str) -> None:
    current = env.get(name, "")
    env[name] = current + delim + value if current else value


def prepend(env: MutableMapping[str, str], name: str, value: str, delim: str) -> None:
    current = env.get(name, "")
    env[name] = value + delim + current if current else value


def remove(env: MutableMapping[str, str], name: str, value: str, delim: str) -> None:
    """`dropit -e -n ''`: split at the delimiter's first character, drop the parts equal to
    the value, join with the delimiter; an emptied variable is unset."""
    current = env.get(name, "")
    if not current:
        return
    kept = [part for part in current.split(delim[0]) if part != value]
    result = delim.join(kept)
    if result:
        env[name] = result
    else:
        env.pop(name, None)
