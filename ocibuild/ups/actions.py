"""A table action walked as the sh code UPS writes for it runs (upsact.c): each line has its
`${UPS_...}`, `${_name}` and `${PRODUCTS}` replaced first, then is parsed as a call (table.py);
conditionals follow conditionals.py, `exeActionRequired/exeActionOptional(Name)` run another
action of the same instance, the other functions do what calls.py says. A dependency
(`setupRequired(...)`) is handed to the walk that set this instance up, in place.

An instance without the action walked gets, for unsetup, its setup action reversed
(reverse.py), else `doDefaults()`.
"""

from __future__ import annotations

from collections.abc import Callable

from ocibuild.errors import SourceError
from ocibuild.ups.calls import Call, FunctionCalls
from ocibuild.ups.conditionals import Conditionals
from ocibuild.ups.notices import Notices
from ocibuild.ups.reverse import reverse, setup_variables
from ocibuild.ups.scope import Scope
from ocibuild.ups.shell import NeedsShell
from ocibuild.ups.shellstate import ShellState
from ocibuild.ups.table import FUNCTIONS, Command, parse_call

MAX_DEPTH = 64
DEPENDENCIES = ("setuprequired", "setupoptional", "unsetuprequired", "unsetupoptional")
# (the call, the instance whose action holds it, depth, whether its effects count)
SetUpDependency = Callable[[Call, Scope, int, bool], None]


class ActionRunner:
    def __init__(
        self, shell: ShellState, notices: Notices, set_up_dependency: SetUpDependency
    ) -> None:
        self.shell = shell
        self.notices = notices
        self.calls = FunctionCalls(shell, notices)
        self.set_up_dependency = set_up_dependency

    def perform(self, scope: Scope, depth: int, active: bool) -> None:
        """The instance's action `scope.action`; only `active` ones change the environment."""
        actions = scope.table.actions if scope.table else {}
        if scope.action in actions:
            self.run(actions[scope.action], scope, depth, active)
        elif scope.action == "unsetup" and "setup" in actions:
            self.run(self._reversed(actions["setup"], scope), scope, depth, active)
        else:
            self.calls.defaults(scope, scope.action, active)

    def run(self, commands: list[Command], scope: Scope, depth: int, active: bool) -> None:
        branches = Conditionals(active)
        for command in commands:
            call = self._parse(command, scope)
            if call is None:
                continue
            if call.name in ("if", "unless"):
                holds = branches.holds() and self._condition(call)
                branches.open(call.name, call.args[0], holds)
            elif call.name == "else":
                branches.otherwise(call.where)
            elif call.name in ("endif", "endunless"):
                branches.close(call.text, call.args[0], call.where)
            else:
                self._do(call, scope, depth, branches.holds())
                self.shell.check_lengths(call.text, call.where)
        branches.check_closed(scope.table_path)

    def _parse(self, command: Command, scope: Scope) -> Call | None:
        """The call on the line, UPS's variables replaced; None (and a warning) when UPS
        cannot parse it."""
        where = f"{scope.table_path}:{command.line}"
        call = parse_call(scope.translate(command.text))
        if call is None:
            self.notices.warn(f"{where}: {command.text}: UPS cannot parse this line and skips it")
            return None
        name, args = call
        fewest, most = FUNCTIONS[name]
        if not fewest <= len(args) <= most:
            raise SourceError(
                f"{command.text}: {name} takes {fewest} to {most} arguments, "
                f"got {len(args)} (UPS stops the setup here)",
                where,
            )
        return Call(name, tuple(args), command.text, where)

    def _condition(self, call: Call) -> bool:
        try:
            holds = self.shell.holds(call.args[0])
        except NeedsShell as e:
            self.notices.cannot_freeze(
                call.where, call.text, f"only a shell in the image can tell: {e}"
            )
            return False
        return holds != (call.name == "unless")

    def _do(self, call: Call, scope: Scope, depth: int, active: bool) -> None:
        if call.name in DEPENDENCIES:
            self.set_up_dependency(call, scope, depth, active)
        elif call.name.endswith(("exeactionrequired", "exeactionoptional")):
            self._other_action(call, scope, depth, active)
        elif active:
            self.calls.apply(call, scope)

    def _other_action(self, call: Call, scope: Scope, depth: int, active: bool) -> None:
        """exeAction(Name), or rev_exeAction(Name): that action reversed."""
        action = call.args[0].lower()
        commands = scope.table.actions.get(action) if scope.table else None
        if commands is None:
            if call.name.endswith("required"):
                raise SourceError(f"{call.text}: no action {action!r}", call.where)
            return
        if depth > MAX_DEPTH:
            raise SourceError("actions call each other too deep", call.where)
        if call.name.startswith("rev_"):
            commands = self._reversed(commands, scope)
        self.run(commands, scope, depth + 1, active)

    def _reversed(self, commands: list[Command], scope: Scope) -> list[Command]:
        products = setup_variables(self.shell.initial)
        return reverse(commands, scope.translate, lambda product: product.upper() in products)
