"""The sh code ups writes for one setup command, run as the shell runs it: the table's calls in
the order ups walks them (dependencies.py), each checked as upsact.c checks it when writing it
(its number of arguments, EndIf against its If), then applied to the environment where the
shell would run it (conditionals.py), until the shell stops.

How it ends (`Ending`): ups failed writing (`write_error`: the real setup is refused, nothing
applied); the shell stopped with status 1 (`stop`: a required sourced file missing, a failing
fileTest) or 2 (an If without EndIf, whose whole block the shell refuses: the environment is
the one at that If); or it ran to the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ocibuild.ups.calls import Call, FunctionCalls, ShellStop, WriteError, product_info
from ocibuild.ups.conditionals import Branch, Conditionals
from ocibuild.ups.notices import Notices
from ocibuild.ups.scope import Scope
from ocibuild.ups.shell import NeedsShell
from ocibuild.ups.shellstate import ShellState
from ocibuild.ups.sourced import unset_ups_variables
from ocibuild.ups.table import FUNCTIONS

# the name upsact.c's CHECK_NUM_PARAM gives each function
_SHOWN = {
    "envset": "envSet", "pathset": "envSet", "envsetifnotset": "envSetIfNotSet",
    "envunset": "envUnset", "envappend": "envAppend", "pathappend": "envAppend",
    "envprepend": "envPrepend", "pathprepend": "envPrepend", "envremove": "envRemove",
    "pathremove": "envRemove", "if": "If", "unless": "Unless", "else": "EndIf",
    "endif": "EndIf", "endunless": "EndIf", "setupenv": "setupEnv", "unsetupenv": "unSetupEnv",
    "proddir": "prodDir", "unproddir": "unProdDir", "dodefaults": "doDefaults",
    "addalias": "addAlias", "unalias": "unAlias", "exeaccess": "exeAccess",
    "filetest": "fileTest", "sourcerequired": "sourceRequired",
    "sourceoptional": "sourceOptional", "sourcereqcheck": "sourceReqCheck",
    "sourceoptcheck": "sourceOptCheck", "sourcecompilereq": "sourceCompileReq",
    "sourcecompileopt": "sourceCompileOpt", "writecompilescript": "writeCompileScript",
}  # fmt: skip


@dataclass(frozen=True)
class Stop:
    """Where the shell stopped."""

    status: int  # 1: `return 1`; 2: a syntax error
    output: str  # what it printed (stdout for `return 1`, stderr for a syntax error)
    where: str  # the table line
    env: dict[str, str]  # the environment at that point
    position: int  # how far into the script


class Script:
    def __init__(
        self, shell: ShellState, notices: Notices, read: Callable[[str], bytes | None]
    ) -> None:
        self.shell = shell
        self.notices = notices
        self.calls = FunctionCalls(shell, notices, read)
        self.conditionals = Conditionals()
        self.write_error: list[tuple[str, str]] = []  # (code, message) of ups's messages
        self.write_error_where = ""
        self.stop: Stop | None = None
        self._position = 0

    def runs(self) -> bool:
        """Whether a command written now changes the environment."""
        return not self.write_error and self.stop is None and self.conditionals.holds()

    def write(self, call: Call, scope: Scope) -> None:
        """One standard call of an action, as ups writes it and the shell runs it."""
        if self.write_error:
            return
        self._position += 1
        try:
            self._check_arguments(call, scope)
            self._write(call, scope)
        except WriteError as e:
            self.write_error = e.messages
            self.write_error_where = call.asked
        self.shell.check_lengths(call.text, call.where)

    def _check_arguments(self, call: Call, scope: Scope) -> None:
        fewest, most = FUNCTIONS[call.name]
        if not fewest <= len(call.args) <= most:
            shown = _SHOWN.get(call.name, call.name)
            raise WriteError(
                [
                    product_info(scope),
                    (
                        "INVALID_ACTION_PARAMS",
                        f"Invalid number of parameters for action {shown}, must be "
                        f"between {fewest} and {most} (found {len(call.args)})",
                    ),
                ]
            )

    def _write(self, call: Call, scope: Scope) -> None:
        if call.name in ("if", "unless"):
            runs = self.runs()
            holds = runs and self._condition(call)
            self.conditionals.open(
                Branch(holds, call.name, call.args[0], self._position, dict(self.shell.env))
            )
        elif call.name == "else":
            if not self.conditionals.otherwise() and self.runs():
                self._stopped(2, "syntax error near unexpected token `else'", call)
        elif call.name in ("endif", "endunless"):
            mismatch = self.conditionals.close(call.args[0])
            if mismatch:
                raise WriteError([("MISMATCHED_ENDIF", mismatch)])
        elif self.runs():
            try:
                self.calls.apply(call, scope)
            except ShellStop as stop:
                if stop.unsets:
                    unset_ups_variables(self.shell)
                self._stopped(1, stop.output, call)

    def _condition(self, call: Call) -> bool:
        try:
            holds = self.shell.holds(call.args[0])
        except NeedsShell as e:
            self.notices.cannot_freeze(
                call.where, call.text, f"only a shell in the image can tell: {e}"
            )
            return False
        return holds != (call.name == "unless")

    def _stopped(self, status: int, output: str, call: Call) -> None:
        self.stop = Stop(status, output, call.asked, dict(self.shell.env), self._position)

    def defaults(self, scope: Scope, action: str) -> None:
        """doDefaults() where an instance has no such action."""
        if self.runs():
            try:
                self.calls.defaults(scope, action)
            except WriteError as e:
                self.write_error = e.messages
                self.write_error_where = scope.table_path

    def finish(self) -> None:
        """The end of the script: an If left open is a syntax error there."""
        branch = self.conditionals.unclosed()
        before = self.stop is None or self.stop.position > branch.position if branch else False
        if branch is not None and before and not self.write_error:
            self.stop = Stop(
                2,
                "syntax error: unexpected end of file",
                f"{branch.kind}({branch.test}) without EndIf",
                branch.env,
                branch.position,
            )
        if self.stop is not None:
            self.shell.env.clear()
            self.shell.env.update(self.stop.env)
        elif self.calls.exported:
            unset_ups_variables(self.shell)
