"""What each function of a table action does, as the sh code upsact.c writes for it: the
environment edits (functions.py), setupEnv(), prodDir(), doDefaults(); the calls whose effect
the image's Env cannot hold (aliases, sourced scripts, executed commands), noted as such.

Two kinds of failure, as in the real setup: `WriteError`, what ups finds wrong while writing
the sh code (a wrong second argument of execute(), prodDir() without a PROD_DIR): ups refuses
the setup, nothing applied; `ShellStop`, where the sh code stops (`return 1`): a required
sourced file missing or empty (`[ -s FILE ]`), a failing fileTest(): the lines before apply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ocibuild.ups import functions, sourced
from ocibuild.ups.lookup import relative
from ocibuild.ups.notices import Notices
from ocibuild.ups.scope import Scope
from ocibuild.ups.shell import NeedsShell
from ocibuild.ups.shellstate import ShellState

# source functions -> whether a missing (or empty) script ends the setup
SOURCES = {
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
    """A function call of a table action, ups's variables replaced."""

    name: str  # lower case
    args: tuple[str, ...]
    text: str  # the line as written
    where: str  # table file:line
    action: str = "setup"  # the action walked (doDefaults() without argument does its defaults)

    @property
    def asked(self) -> str:
        return f"{self.where}: {self.text}"


class WriteError(Exception):
    """ups fails writing this call: the real setup is refused. `messages` are its messages."""

    def __init__(self, messages: list[tuple[str, str]]) -> None:
        super().__init__(messages[-1][1])
        self.messages = messages  # (code, text), all ERROR


class ShellStop(Exception):
    """The sh code returns 1 here; `output` is what it prints; `unsets`: ups's variables
    exported for a sourced script are unset before (upsutl.c upsutl_finish_temp_file)."""

    def __init__(self, output: str, unsets: bool = False) -> None:
        super().__init__(output)
        self.output = output
        self.unsets = unsets


def product_info(scope: Scope) -> tuple[str, str]:
    """upsact.c OUTPUT_ACTION_INFO, given before ups's errors about a call."""
    v = scope.match.version
    return (
        "PRODUCT_INFO",
        f"Error occurred for product 'UPSACT: ' '{v.get('PRODUCT') if v else ''}' "
        f"'{v.get('VERSION') if v else ''}' '{v.flavor if v else ''}'.",
    )


class FunctionCalls:
    def __init__(
        self, shell: ShellState, notices: Notices, read: Callable[[str], bytes | None]
    ) -> None:
        """`read`: an image file's content."""
        self.shell = shell
        self.notices = notices
        self.read = read
        self.exported = False  # whether ups's variables were exported for a sourced script
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
            **dict.fromkeys(SOURCES, self._source),
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

    def defaults(self, scope: Scope, action: str) -> None:
        """doDefaults(): for setup <P>_DIR and SETUP_<P>, for unsetup their removal."""
        if action == "setup":
            self._set_prod_dir(scope, ())
            self._setup_env(Call("setupenv", (), "", ""), scope)
        elif action == "unsetup":
            self._unprod_dir(Call("unproddir", (), "", ""), scope)
            self._unsetup_env(Call("unsetupenv", (), "", ""), scope)

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
        self.shell.env[f"SETUP_{scope.product.upper()}"] = scope.setup_string

    def _unsetup_env(self, call: Call, scope: Scope) -> None:
        product = _version_product(scope)
        if product:
            self.shell.env.pop(f"SETUP_{product.upper()}", None)

    def _prod_dir(self, call: Call, scope: Scope) -> None:
        self._set_prod_dir(scope, call.args)

    def _set_prod_dir(self, scope: Scope, args: tuple[str, ...]) -> None:
        """upsact.c f_proddir: <P>_DIR (or <P><suffix>) = the version instance's PROD_DIR,
        under the dbconfig's PROD_DIR_PREFIX when relative; with a second argument, that path
        joined to it (one trailing `/` of the directory and one leading `/` of the path
        dropped)."""
        version = scope.match.version
        prod_dir = version.get("PROD_DIR") if version else None
        if prod_dir is None:
            if version is not None and version.get("PRODUCT"):
                raise WriteError(
                    [
                        product_info(scope),
                        (
                            "NO_PROD_DIR",
                            f"No 'PROD_DIR' keyword for product '{version.get('PRODUCT')}'",
                        ),
                    ]
                )
            return
        prefix = scope.match.config.get("PROD_DIR_PREFIX")
        if relative(prod_dir) and prefix:
            prod_dir = f"{prefix}/{prod_dir}"
        if len(args) == 2:
            path = args[1][1:] if args[1].startswith("/") else args[1]
            prod_dir = f"{prod_dir.removesuffix('/')}/{path}"
        suffix = args[0] if args else "_DIR"
        product = _version_product(scope) or scope.request.product
        self.shell.env[product.upper() + suffix] = self.shell.quoted(prod_dir)

    def _unprod_dir(self, call: Call, scope: Scope) -> None:
        product = _version_product(scope)
        if product:
            suffix = call.args[0] if call.args else "_DIR"
            self.shell.env.pop(product.upper() + suffix, None)

    def _do_defaults(self, call: Call, scope: Scope) -> None:
        self.defaults(scope, call.args[0].lower() if call.args else call.action)

    # -- what the Env cannot hold ------------------------------------------------------------

    def _alias(self, call: Call, scope: Scope) -> None:
        self.notices.cannot_freeze(
            call.where, call.text, "aliases exist only in interactive shells"
        )

    def _unalias(self, call: Call, scope: Scope) -> None:
        self.shell.env.pop(call.args[0], None)  # sh's `unset NAME` removes a variable too
        self._alias(call, scope)

    def _source(self, call: Call, scope: Scope) -> None:
        """`if [ -s FILE ]; then [ups's variables exported;] . FILE; [status checked;] else
        [echo "File (FILE) not found"; return 1;] fi`."""
        with_ups_env = len(call.args) > 1 and _check_environment_argument(call, scope)
        path = self.shell.quoted(call.args[0])
        if not self.shell.test_file(path, "-s"):
            if SOURCES[call.name]:
                raise ShellStop(f"File ({path}) not found", self.exported)
            return
        if with_ups_env:
            sourced.export_ups_variables(self.shell, scope)
            self.exported = True
        text = (self.read(path) or b"").decode("utf-8", "surrogateescape")
        try:
            status = sourced.source(text, self.shell)
        except NeedsShell as e:
            self.notices.cannot_freeze(call.where, call.text, f"a sourced script: {e}")
            return
        if status and call.name in ("sourcereqcheck", "sourceoptcheck"):
            raise ShellStop(f"Error {status} while sourcing {path}", self.exported)

    def _execute(self, call: Call, scope: Scope) -> None:
        _check_environment_argument(call, scope)
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
        """`if [ ! FLAG PATH ]; then echo "MESSAGE"; return 1; fi`."""
        path = self.shell.quoted(call.args[0])
        if not self.shell.test_file(path, call.args[1]):
            raise ShellStop(call.args[2] if len(call.args) > 2 else "")


def _version_product(scope: Scope) -> str:
    version = scope.match.version
    return (version.get("PRODUCT") or "") if version else ""


def _name(call: Call) -> str:
    """The variable a call edits: the path* functions take csh's `path` for PATH."""
    name = call.args[0]
    return functions.path_name(name) if call.name.startswith("path") else name


def _check_environment_argument(call: Call, scope: Scope) -> bool:
    """upsact.c GET_UPS_ENV: whether the second argument is UPS_ENV (else NO_UPS_ENV)."""
    if call.args[1].upper() not in _ENVIRONMENTS:
        raise WriteError(
            [
                product_info(scope),
                (
                    "EXECUTE_ARG2",
                    "The 'execute' function must have 'UPS_ENV' or 'NO_UPS_ENV' as a second "
                    f"parameter, not '{call.args[1]}'",
                ),
            ]
        )
    return call.args[1].upper() == "UPS_ENV"
