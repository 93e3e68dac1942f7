"""One pass over the products a setup command sets (or unsets) up, as upsact.c's
`upsact_get_cmd` walks them: what it looks up, in which order, and the messages and last error
that leaves (upserrors.py), which decide whether the real setup is refused.

1. The first-level dependencies (`next_top_prod`): the setupRequired/setupOptional (and
   unsetup...) lines of the top product's own action, each looked up once, in order; they are
   the instances used wherever these products are asked for later. A line ups cannot parse
   is an error here already; exeAction lines are not followed in this pass (an upsact.c slip:
   its `continue` is outside the `if`); a product not found here leaves no error.
2. The walk (`next_cmd`), depth first: each line of the action translated and parsed; a
   standard call written (script.py); exeAction(Name) walks that action of the same instance
   (rev_exeAction: reversed); a dependency already walked in this pass is skipped, one of the
   first level is walked without a new lookup, any other is looked up (a read, which clears
   the last error) and walked. A required one not found (or a line ups cannot parse, a missing
   required action) leaves the error standing until ups reads another file.

An instance without the action walked gets, for unsetup, its setup action reversed
(reverse.py), else doDefaults(). A dependency's instance is the one SETUP_<PRODUCT> names when
it is an unsetup and that variable is set (then its unsetup is applied), else the request's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from ocibuild.errors import SourceError
from ocibuild.ups.calls import Call
from ocibuild.ups.lookup import Lookup
from ocibuild.ups.request import Request, parse_request
from ocibuild.ups.reverse import reverse
from ocibuild.ups.scope import Match, Scope, Variables
from ocibuild.ups.script import Script
from ocibuild.ups.table import Command, parse_call
from ocibuild.ups.upserrors import UpsErrors

MAX_DEPTH = 64
DEPENDENCIES = ("setupoptional", "setuprequired", "unsetupoptional", "unsetuprequired")
EXE_ACTIONS = (
    "exeactionoptional",
    "exeactionrequired",
    "rev_exeactionoptional",
    "rev_exeactionrequired",
)


@dataclass
class Item:
    """A product instance in the walk (upsact.c t_upsact_item)."""

    request: Request
    match: Match
    action: list[Command] | None  # the action's lines; None: the instance has no such action
    unsetup: bool = False  # set up when the command began (an unsetup applies to it)


@dataclass(frozen=True)
class Process:
    """What the passes of one setup command share: one `ups` process."""

    lookup: Lookup
    errors: UpsErrors
    env: Mapping[str, str]  # the environment the command began in (ups's getenv)
    databases: list[str]  # the command's: its -z, else PRODUCTS
    hosts: tuple[str, ...]  # the command's host flavors
    exact: bool  # -B
    home: str
    statistics: Callable[[Match, str], None]


def action_lines(match: Match, name: str) -> list[Command] | None:
    """upsact.c get_act: that action of the matched table instance."""
    table = match.table
    action = table.action(name) if table is not None else None
    if action is None:
        return None
    return [Command("", text, line) for line, text in action.lines]


@dataclass
class Pass:
    process: Process
    action: str  # "setup" or "unsetup"
    script: Script
    top: list[Item] = field(default_factory=list)
    done: set[str] = field(default_factory=set)  # lower-case product names walked

    def walk(self, item: Item) -> None:
        self._first_level(item)
        self._next(item, self.action, 0)

    def scope(self, item: Item) -> Scope:
        lookup = self.process.lookup
        databases = item.request.databases or tuple(self.process.databases)
        variables = Variables(item.request, item.match, databases, lookup.prod_dir, lookup.ups_dir)
        return Scope(variables, self.process.home)

    # -- 1. the first level ---------------------------------------------------------------

    def _first_level(self, item: Item) -> None:
        if item.action is None:
            return
        scope = self.scope(item)
        for command in item.action:
            line = scope.translate(command.text)
            call = parse_call(line)
            if call is None:
                self._parse_error(line, f"{scope.table_path}:{command.line}")
                continue
            if call[0] not in DEPENDENCIES or item.request.just_this:
                continue
            request, unsetup = self._dependent(
                call[0], call[1], f"{scope.table_path}:{command.line}"
            )
            found = self._new_item(request, "unsetup" if call[0].startswith("un") else "setup")
            if found is None:
                self.process.errors.backup()
            else:
                found.unsetup = unsetup
                self.top.append(found)

    # -- 2. the walk ----------------------------------------------------------------------

    def _next(self, item: Item, action: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise SourceError(f"{item.request.via}: {item.request}: actions nest too deep")
        self.done.add(item.request.product.lower())
        commands = item.action if item.action is not None else self._default(item, action)
        scope = self.scope(item)
        for command in commands:
            where = f"{scope.table_path}:{command.line}"
            line = scope.translate(command.text)
            parsed = parse_call(line)
            if parsed is None:
                self._parse_error(line, where)
                continue
            call = Call(parsed[0], tuple(parsed[1]), command.text, where, action)
            if call.name in DEPENDENCIES:
                self._dependency(call, line, item, action, depth)
            elif call.name in EXE_ACTIONS:
                self._exe_action(call, line, item, action, depth)
            else:
                if self.action == "setup" or (item.unsetup and not self.process.exact):
                    self.script.write(call, scope)
                if _exits(call):
                    break

    def _default(self, item: Item, action: str) -> list[Command]:
        """upsact.c new_default_action: for unsetup, the setup action reversed; else
        doDefaults()."""
        if action == "unsetup":
            setup = action_lines(item.match, "setup")
            if setup is not None:
                scope = self.scope(item)
                return reverse(setup, scope.translate, self._is_set_up)
        return [Command("dodefaults", "doDefaults()", 0)]

    def _is_set_up(self, product: str) -> bool:
        return f"SETUP_{product.upper()}" in self.process.env

    def _exe_action(self, call: Call, line: str, item: Item, action: str, depth: int) -> None:
        name = call.args[0] if call.args else ""
        lines = action_lines(item.match, name)
        if lines is None:
            if call.name.endswith("required"):
                errors = self.process.errors
                errors.add(
                    "NO_ACTION",
                    "ERROR",
                    f"There is no ACTION={name} section in this table file.",
                    call.where,
                )
                self._parse_error(line, call.where)
            else:
                self.process.errors.backup()
            return
        if call.name.startswith("rev_"):
            lines = reverse(lines, self.scope(item).translate, self._is_set_up)
        self._next(replace(item, action=lines), action, depth + 1)

    def _dependency(self, call: Call, line: str, item: Item, action: str, depth: int) -> None:
        request, unsetup = self._dependent(call.name, list(call.args), call.where)
        found = None if self.process.exact else self._first_level_item(request.product)
        if request.product.lower() in self.done or item.request.just_this:
            return
        if found is None:
            action = "unsetup" if call.name.startswith("un") else "setup"
            found = self._new_item(request, action)
            if found is None:
                if call.name.endswith("required"):
                    self._parse_error(line, call.where)
                else:
                    self.process.errors.backup()
                return
        found.unsetup = unsetup
        self._next(found, action, depth + 1)
        if found.unsetup or not call.name.startswith("un"):
            self.process.statistics(found.match, found.request.product)

    def _first_level_item(self, product: str) -> Item | None:
        return next((i for i in self.top if i.request.product.lower() == product.lower()), None)

    def _dependent(self, name: str, args: list[str], where: str) -> tuple[Request, bool]:
        """upsact.c get_dependent: the request of a (un)setupRequired/Optional line, and
        whether it is an unsetup of what SETUP_<PRODUCT> names."""
        text = args[0] if args else ""
        optional = name.endswith("optional")
        request: Request | None = None
        unsetup = False
        if name.startswith("un"):
            product = text if " " not in text else parse_request(text, optional, where).product
            previous = self.process.env.get(f"SETUP_{product.upper()}")
            if previous:
                asked = parse_request(text, optional, where)
                request = replace(
                    parse_request(previous, optional, where),
                    just_this=asked.just_this,
                    extended=asked.extended,
                )
                unsetup = True
        if request is None:
            request = parse_request(text, optional, where)
        return (
            replace(
                request,
                hosts=request.hosts or self.process.hosts,
                databases=request.databases or tuple(self.process.databases),
                exact=request.exact or self.process.exact,
            ),
            unsetup,
        )

    def _new_item(self, request: Request, action: str) -> Item | None:
        """upsact.c new_act_item: the request looked up; not found, ups says so (not for an
        unsetup)."""
        match = self.process.lookup.find(request, list(request.databases))
        if match is None:
            if action != "unsetup":
                self.process.errors.add(
                    "NO_MATCH",
                    "ERROR",
                    f"Found no match for product '{request.product}'",
                    request.via,
                )
            return None
        return Item(request, match, action_lines(match, action))

    def _parse_error(self, line: str, where: str) -> None:
        self.process.errors.add(
            "ACTION_PARSE", "ERROR", f'Action parsing failed on "{line}"', where
        )


def _exits(call: Call) -> bool:
    """upsact.c do_exit_action: ups writes nothing of this action after sourceCompileReq(), or
    after sourceRequired/sourceReqCheck(..., EXIT)."""
    if call.name == "sourcecompilereq":
        return True
    if call.name in ("sourcerequired", "sourcereqcheck"):
        return any(a.upper() == "EXIT" for a in call.args[2:])
    return False
