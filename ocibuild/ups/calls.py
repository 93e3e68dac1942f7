"""What each function of a table action does, as the sh code UPS writes for it (upsact.c):
the environment edits (functions.py), setupEnv(), prodDir(), doDefaults(); and the calls whose
effect the image's Env cannot hold (aliases, sourced scripts, executed commands), noted as
such. A failed fileTest() or a missing required sourced script ends the setup there.

Dependencies (setupRequired...), other actions (exeAction...) and conditionals (if...) are the
action walk's (actions.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ocibuild.errors import SourceError
from ocibuild.ups import functions
from ocibuild.ups.notices import Notices
from ocibuild.ups.scope import Scope
from ocibuild.ups.shell import NeedsShell
from ocibuild.ups.shellstate import ShellState

# source functions -> whether a missing script ends the setup
_SOURCES = {
    "sourcerequired": True,
    "sourcereqcheck": True,
    "sourcecompilereq": True,
    "sourceoptional": False,
    "sourceoptcheck": False,
    "sourcecompileopt": False,
}
_ENVIRONMENTS = ("UPS_ENV", "NO_UPS_ENV")


@dataclass(frozen=True)
class Call:
    """A function call of a table action, UPS's variables replaced."""

    name: str  # lower case
    args: tuple[str, ...]
    text: str  # the line as written
    where: str  # table file:line

    @property
    def asked(self) -> str:
        return f"{self.where}: {self.text}"


class SetupStopped(Exception):
    """The setup script returns here; the message says where and why."""


class FunctionCalls:
    def __init__(self, shell: ShellState, notices: Notices) -> None:
        self.shell = shell
        self.notices = notices
        self._handlers: dict[str, Callable[[Call, Scope], None]] = {
            "envset": self._set,
            "pathset": self._set,
            "envsetifnotset": self._set_if_not_set,
            "envunset": self._unset,
            "envappend": self._append,
            "pathappend": self._append,
            "envprepend": self._prepend,
            "pathprepend": self._prepend,
            "envremove": self._remove,
            "pathremove": self._remove,
            "setupenv": self._setup_env,
            "unsetupenv": self._unsetup_env,
            "proddir": self._prod_dir,
            "unproddir": self._unprod_dir,
            "dodefaults": self._do_defaults,
            "addalias": self._alias,
            "unalias": self._unalias,
            "execute": self._execute,
            "exeaccess": self._exe_access,
            "filetest": self._file_test,
            "writecompilescript": self._compile_script,
            **dict.fromkeys(_SOURCES, self._source),
        }

    def apply(self, call: Call, scope: Scope) -> None:
        handler = self._handlers.get(call.name)
        if handler is None:
            return
        try:
            handler(call, scope)
        except NeedsShell as e:
            self.notices.cannot_freeze(
                call.where, call.text, f"only a shell in the image can tell: {e}"
            )

    def defaults(self, scope: Scope, action: str, active: bool) -> None:
        """doDefaults(): for setup <P>_DIR and SETUP_<P>, for unsetup their removal."""
        if not active:
            return
        product = scope.instance.product.upper()
        if action == "setup":
            self._set_prod_dir(scope, ())
            self.shell.env[f"SETUP_{product}"] = scope.setup_string
        elif action == "unsetup":
            self.shell.env.pop(f"{product}_DIR", None)
            self.shell.env.pop(f"SETUP_{product}", None)

    # -- the environment edits ---------------------------------------------------------------

    def _set(self, call: Call, scope: Scope) -> None:
        self.shell.env[_name(call)] = self.shell.quoted(call.args[1])

    def _set_if_not_set(self, call: Call, scope: Scope) -> None:
        functions.set_if_not_set(self.shell.env, call.args[0], self.shell.quoted(call.args[1]))

    def _unset(self, call: Call, scope: Scope) -> None:
        self.shell.env.pop(call.args[0], None)

    def _append(self, call: Call, scope: Scope) -> None:
        delim = self.shell.quoted(functions.delimiter(call.args, 3))
        functions.append(self.shell.env, _name(call), self.shell.quoted(call.args[1]), delim)

    def _prepend(self, call: Call, scope: Scope) -> None:
        delim = self.shell.quoted(functions.delimiter(call.args, 3))
        functions.prepend(self.shell.env, _name(call), self.shell.quoted(call.args[1]), delim)

    def _remove(self, call: Call, scope: Scope) -> None:
        value = self.shell.unquoted(call.args[1])
        functions.remove(self.shell.env, _name(call), value, functions.delimiter(call.args, 3))

    # -- the product's own variables ---------------------------------------------------------

    def _setup_env(self, call: Call, scope: Scope) -> None:
        self.shell.env[f"SETUP_{scope.instance.product.upper()}"] = scope.setup_string

    def _unsetup_env(self, call: Call, scope: Scope) -> None:
        self.shell.env.pop(f"SETUP_{scope.instance.product.upper()}", None)

    def _prod_dir(self, call: Call, scope: Scope) -> None:
        self._set_prod_dir(scope, call.args)

    def _set_prod_dir(self, scope: Scope, args: tuple[str, ...]) -> None:
        """prodDir(): <P>_DIR; prodDir(_SUFFIX): <P>_SUFFIX; prodDir(_SUFFIX, path): the path
        under the product directory, or as is when absolute."""
        prod_dir = scope.translations["UPS_PROD_DIR"]
        value = prod_dir
        if len(args) == 2:
            value = args[1] if args[1].startswith("/") else f"{prod_dir.rstrip('/')}/{args[1]}"
        suffix = args[0] if args else "_DIR"
        self.shell.env[scope.instance.product.upper() + suffix] = self.shell.quoted(value)

    def _unprod_dir(self, call: Call, scope: Scope) -> None:
        suffix = call.args[0] if call.args else "_DIR"
        self.shell.env.pop(scope.instance.product.upper() + suffix, None)

    def _do_defaults(self, call: Call, scope: Scope) -> None:
        self.defaults(scope, call.args[0].lower() if call.args else scope.action, True)

    # -- what the Env cannot hold ------------------------------------------------------------

    def _alias(self, call: Call, scope: Scope) -> None:
        self.notices.cannot_freeze(
            call.where, call.text, "aliases exist only in interactive shells"
        )

    def _unalias(self, call: Call, scope: Scope) -> None:
        self.shell.env.pop(call.args[0], None)  # sh's `unset NAME` removes a variable too
        self._alias(call, scope)

    def _source(self, call: Call, scope: Scope) -> None:
        if len(call.args) > 1:
            _check_environment_argument(call)
        path = self.shell.quoted(call.args[0])
        if self.shell.exists(path, "f") is False:
            if _SOURCES[call.name]:
                self._stop(call, f"{path} does not exist")
            return
        self.notices.cannot_freeze(call.where, call.text, "a sourced script cannot be frozen")

    def _execute(self, call: Call, scope: Scope) -> None:
        _check_environment_argument(call)
        if len(call.args) == 2 and call.args[0].split()[:1] in (["true"], [":"], ["echo"]):
            return  # changes nothing
        self.notices.cannot_freeze(call.where, call.text, "commands are not run at build time")

    def _exe_access(self, call: Call, scope: Scope) -> None:
        self.notices.cannot_freeze(call.where, call.text, "the command is looked up at setup time")

    def _compile_script(self, call: Call, scope: Scope) -> None:
        self.notices.cannot_freeze(
            call.where, call.text, "compile scripts are not written at build time"
        )

    def _file_test(self, call: Call, scope: Scope) -> None:
        path = self.shell.quoted(call.args[0])
        try:
            holds = self.shell.test_file(path, call.args[1])
        except NeedsShell as e:
            self.notices.cannot_freeze(
                call.where, call.text, f"only a shell in the image can tell: {e}"
            )
            return
        if not holds:
            self._stop(call, "the test fails")

    def _stop(self, call: Call, why: str) -> None:
        message = f"{call.asked}: {why}; the setup stops here, as UPS's does"
        self.notices.warn(message)
        raise SetupStopped(message)


def _name(call: Call) -> str:
    """The variable a call edits: the path* functions take csh's `path` for PATH."""
    name = call.args[0]
    return functions.path_name(name) if call.name.startswith("path") else name


def _check_environment_argument(call: Call) -> None:
    if call.args[1].upper() not in _ENVIRONMENTS:
        raise SourceError(
            f"{call.text}: the second argument must be UPS_ENV or NO_UPS_ENV", call.where
        )
