"""The unsetup action UPS derives from a setup action when a table has none (upsact.c,
reverse_command_list): each call replaced by its opposite, in reverse order.

    envSet, pathSet -> envUnset        envAppend, envPrepend -> envRemove
    pathAppend, pathPrepend -> pathRemove      pathRemove -> pathAppend
    setupEnv <-> unsetupEnv            prodDir(_S, p) <-> unProdDir(_S)
    setupRequired/Optional -> unsetupRequired/Optional (just the product when it is set up)
    exeAction... -> rev_exeAction... (that action reversed)     addAlias -> unAlias
    sourceX(file...) -> sourceOpt...(unfile...)    doDefaults() -> doDefaults()
    if(c) -> endUnless(c)   unless(c) -> endIf(c)   else() -> else()
    endIf(c) -> unless(c)   endUnless(c) -> if(c), or unless(c) when no else() came between

Calls without an opposite (envSetIfNotSet, envUnset, execute, fileTest...) are dropped. The
arguments kept are at most as many as both functions take.
"""

from __future__ import annotations

from collections.abc import Callable

from ocibuild.ups.table import FUNCTIONS, Command, parse_call

OPPOSITES = {
    "setupoptional": "unsetupoptional",
    "setuprequired": "unsetuprequired",
    "unsetupoptional": "setupoptional",
    "unsetuprequired": "setuprequired",
    "exeactionoptional": "rev_exeactionoptional",
    "exeactionrequired": "rev_exeactionrequired",
    "envappend": "envremove",
    "envprepend": "envremove",
    "envset": "envunset",
    "pathappend": "pathremove",
    "pathremove": "pathappend",
    "pathprepend": "pathremove",
    "pathset": "envunset",
    "addalias": "unalias",
    "sourcerequired": "sourceoptional",
    "sourceoptional": "sourceoptional",
    "sourcereqcheck": "sourceoptcheck",
    "sourceoptcheck": "sourceoptcheck",
    "dodefaults": "dodefaults",
    "setupenv": "unsetupenv",
    "proddir": "unproddir",
    "unsetupenv": "setupenv",
    "unproddir": "proddir",
    "if": "endunless",
    "endif": "unless",
    "else": "else",
    "unless": "endif",
    "endunless": "if",
}
_SOURCES = ("sourcerequired", "sourceoptional", "sourcereqcheck", "sourceoptcheck")


def reverse(
    commands: list[Command],
    translate: Callable[[str], str],
    is_set_up: Callable[[str], bool],
) -> list[Command]:
    """The reversed action of `commands`, their lines translated by `translate`;
    `is_set_up(product)` tells whether SETUP_<PRODUCT> was in the environment."""
    out: list[Command] = []
    else_seen: list[bool] = [False]
    for command in commands:
        call = parse_call(translate(command.text))
        if call is None or call[0] not in OPPOSITES:
            continue
        name, args = call
        if name in ("if", "unless"):
            else_seen.append(False)
        elif name == "else":
            else_seen[-1] = True
        elif name in ("endif", "endunless"):
            if not else_seen[-1] and name == "endunless":
                name = "endif"
            if len(else_seen) > 1:
                else_seen.pop()
        opposite = OPPOSITES[name]
        count = min(FUNCTIONS[name][1], FUNCTIONS[opposite][1], len(args))
        kept = _first_argument(name, args[0], is_set_up) if count else ""
        text = f"{opposite}({', '.join([kept, *args[1:count]]) if count else ''})"
        out.insert(0, Command(opposite, text, command.line))
    return out


def _first_argument(name: str, arg: str, is_set_up: Callable[[str], bool]) -> str:
    if name in _SOURCES:
        directory, slash, file = arg.rpartition("/")
        file = file[2:] if file[:2].lower() == "un" else "un" + file
        return directory + slash + file
    if name in ("setuprequired", "setupoptional") and " " in arg:
        product = next((w for w in arg.split() if not w.startswith("-")), "")
        return product if is_set_up(product) else arg
    return arg
