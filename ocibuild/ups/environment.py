"""What UPS's `setup` does to the environment, computed without a shell.

`source <root>/setup` puts the database on PRODUCTS and runs `setup ups`; then
`setup <product> <version> -q <quals>` finds the declared instance (trying the host flavor's
fallbacks: Linux64bit+2.6-2.12, Linux64bit+2.6, Linux64bit, NULL), its table instance (flavor
or ANY, same qualifiers) and walks its `setup` action as UPS does (upsact.c):

- each line has its `${UPS_...}`, `${_name}` and `${PRODUCTS}` replaced first, then is parsed
  as a call (table.py); what the sh code UPS writes for it does to the environment is done
  here, the values evaluated as sh would (shell.py, functions.py);
- `setupRequired/setupOptional(prod [version] [-q quals] [-f flavor] [-j] [-g chain|-c|-t..])`
  set the dependency up in place, depth first. A product is set up once per `setup` command:
  a later request for it is skipped, whatever version it asks. The instances asked for
  directly in the top product's `setup` action take precedence over those asked deeper;
- `exeActionRequired/exeActionOptional(Name)` run another action of the same instance;
- `if (cond)` / `unless (cond)` / `else()` / `endif (cond)` / `endUnless (cond)` become sh
  conditionals: their commands, and the products set up between them, only change the
  environment when the condition holds; the products count as set up either way;
- a product without a setup action, or without a table, gets `doDefaults()`: `<P>_DIR` and
  `SETUP_<P>` (`product version -f FLAVOR -z DB -q QUALS`).

A required product or instance that is not declared makes the real `setup` print an error and
go on without it; here it is refused unless the recipe says `missing: warn`. What cannot be
frozen into an image's Env (aliases, sourced scripts, executed commands, conditions only a
shell in the image could answer) is collected as `NotFrozen`, naming the table file and line.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field, replace
from typing import Literal

from ocibuild.errors import SourceError
from ocibuild.limits import ENV_VALUE, LimitError
from ocibuild.progress import Message, Reporter
from ocibuild.ups import functions
from ocibuild.ups.database import Database, flavor_fallbacks
from ocibuild.ups.declaration import Instance
from ocibuild.ups.names import colon_qualifiers, same_qualifiers
from ocibuild.ups.reverse import reverse, setup_variables
from ocibuild.ups.shell import (
    KNOWN_COMMANDS,
    NeedsShell,
    condition,
    quoted_value,
    unquoted_value,
)
from ocibuild.ups.table import FUNCTIONS, Command, TableInstance, parse_call

MAX_DEPTH = 64
Missing = Literal["refuse", "warn"]
_TRANSLATED = re.compile(r"\$\{(UPS_[^}]*|_[^}]*|PRODUCTS)\}")
_SOURCES = {
    "sourcerequired": True,
    "sourcereqcheck": True,
    "sourcecompilereq": True,
    "sourceoptional": False,
    "sourceoptcheck": False,
    "sourcecompileopt": False,
}
_WITH_VALUE = {"-f", "-g", "-H", "-m", "-M", "-O", "-q", "-r", "-U", "-z"}
_CHAINS = {"-c": "current", "-d": "development", "-n": "new", "-o": "old", "-t": "test"}


@dataclass(frozen=True)
class Request:
    """One `setup` request: product, version (or chain), qualifiers, options."""

    product: str
    version: str = ""
    qualifiers: str = ""
    chain: str = "current"
    flavor: str = ""
    just_this: bool = False
    extended: bool = False
    optional: bool = False
    via: str = ""  # who asked: "recipe.yaml:12" or "/products/art/v1/ups/art.table:30"

    def __str__(self) -> str:
        quals = f" -q {self.qualifiers}" if self.qualifiers else ""
        return f"{self.product} {self.version or '(' + self.chain + ')'}{quals}"


@dataclass(frozen=True)
class NotFrozen:
    """A table line whose effect the image's Env cannot hold."""

    where: str  # table file:line
    text: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.text}: not in the frozen Env ({self.reason})"


@dataclass(frozen=True)
class Frozen:
    """The environment after setup, and the table lines it could not hold."""

    env: dict[str, str]
    not_frozen: tuple[NotFrozen, ...]
    products: int  # how many products were set up


class _NoTableInstance(SourceError):
    """The table has no instance for the declared one: to UPS, no match."""


class _Stop(Exception):
    """The setup script returns here (a failed fileTest, a missing required source)."""


@dataclass
class _Scope:
    """One product instance being set up."""

    request: Request
    instance: Instance
    table: TableInstance | None
    table_path: str
    action: str = "setup"  # the action walked: setup, or unsetup before a new setup
    translations: dict[str, str] = field(default_factory=dict)


class UpsEnvironment:
    def __init__(
        self,
        db: Database,
        env: dict[str, str],
        flavor: str,
        report: Reporter,
        missing: Missing = "refuse",
        warned: set[str] | None = None,
    ) -> None:
        """`warned` holds the warnings already given (in this build): each is given once."""
        self.db = db
        self.env = dict(env)
        self.flavors = flavor_fallbacks(flavor)
        self.report = report
        self.missing = missing
        self.done: dict[str, tuple[str, str]] = {}  # product -> (version, qualifiers)
        self.active: dict[str, tuple[str, str]] = {}  # every product set up, all commands
        self.top: dict[str, tuple[Instance, str]] = {}  # precedence of the top's own requests
        self.not_frozen: list[NotFrozen] = []
        self.missing_products: dict[str, str] = {}  # product -> what was said
        self.stopped = ""
        self.warned = warned if warned is not None else set()
        self.initial: dict[str, str] = dict(env)  # the environment a setup command started in
        self.commands = {**KNOWN_COMMANDS, "ups flavor": flavor, "ups flavor -4": flavor}

    # -- source <root>/setup; setup ... ----------------------------------------------------

    def source_setup(self) -> None:
        """What `source <root>/setup` does: PRODUCTS, then `setup ups`."""
        parts = [p for p in self.env.get("PRODUCTS", "").split(":") if p and p != self.db.path]
        self.env["PRODUCTS"] = ":".join([self.db.path, *parts])
        self.env["UPS_SHELL"] = "sh"
        if "ups" in self.db.products():
            self.setup(Request("ups", optional=True, via=f"{self.db.path}/setup"))

    def setup(self, request: Request) -> None:
        """One `setup` command (ups_setup.c): when SETUP_<PRODUCT> is set, the instance it
        names is unset up first; then the product is set up. Each walk has its own set of
        products done and of top-level requests."""
        if self.stopped:
            return
        found = self._resolve(request)
        if found is None:
            if request.optional:
                self.report(Message(f"{request.via}: optional {request} not found"))
                return
            raise SourceError(f"setup {request}: {self._not_found(request)}", request.via)
        self.initial = dict(self.env)
        try:
            previous = self.env.get(f"SETUP_{request.product.upper()}")
            if previous:
                old = _parse_request(previous, True, request.via)
                old_found = self._resolve(old)
                if old_found is not None:
                    self.done, self.top = {}, {}
                    self._enter(self._scope(old, *old_found, "unsetup"), 0, True)
            self.done, self.top = {}, {}
            scope = self._scope(request, *found)
            self._collect_top(scope)
            self._enter(scope, 0, True)
        except _Stop:
            pass

    # -- finding instances ------------------------------------------------------------------

    def _resolve(self, request: Request) -> tuple[Instance, str] | None:
        flavors = [request.flavor] if request.flavor else self.flavors
        for quals in _qualifier_choices(request.qualifiers):
            version = request.version or self.db.chained_version(
                request.product, request.chain, quals, flavors
            )
            if not version and request.chain == "current":
                version = self._only_version(request.product)
            if version:
                instance = self.db.find(request.product, version, quals, flavors)
                if instance is not None:
                    return instance, quals
        return None

    def _only_version(self, product: str) -> str:
        versions = self.db.product_versions(product)
        if len(versions) > 1:
            self._warn(
                f"{product}: no current chain and several versions ({', '.join(versions)}); "
                f"using {versions[-1]}"
            )
        return versions[-1] if versions else ""

    def _not_found(self, request: Request) -> str:
        versions = self.db.product_versions(request.product)
        if not versions:
            return f"no product {request.product} in {self.db.path}"
        declared = [
            f"{i.version} -f {i.flavor}{' -q ' + i.qualifiers if i.qualifiers else ''}"
            for v in versions
            for i in self.db.versions[(request.product, v)]
        ]
        flavors = [request.flavor] if request.flavor else self.flavors
        return (
            f"no such instance for flavors {', '.join(flavors)} in {self.db.path}; "
            f"declared: {'; '.join(declared)}"
        )

    def _scope(
        self, request: Request, instance: Instance, quals: str, action: str = "setup"
    ) -> _Scope:
        table = self.db.table(instance)
        table_instance = None
        if table is not None:
            table_instance = next(
                (
                    t
                    for t in table.instances
                    if t.flavor in ("ANY", instance.flavor)
                    and same_qualifiers(t.qualifiers, instance.qualifiers)
                ),
                None,
            )
            if table_instance is None:
                raise _NoTableInstance(
                    f"{table.path}: no instance for flavor {instance.flavor} qualifiers "
                    f"{instance.qualifiers or '(none)'} (setup {request}, from {request.via})"
                )
        scope = _Scope(
            request, instance, table_instance, table.path if table else instance.source, action
        )
        scope.translations = self._translations(scope, quals)
        return scope

    def _translations(self, scope: _Scope, quals: str) -> dict[str, str]:
        """The variables UPS replaces in a table line before parsing it (upsget.c)."""
        i, request = scope.instance, scope.request
        return {
            "UPS_PROD_NAME_UC": i.product.upper(),
            "UPS_PROD_NAME": i.product,
            "UPS_PROD_VERSION": i.version,
            "UPS_PROD_DIR": self.db.prod_dir(i),
            "UPS_UPS_DIR": self.db.ups_dir(i),
            "UPS_VERBOSE": "",
            "UPS_EXTENDED": "1" if request.extended else "",
            "UPS_THIS_DB": self.db.path,
            "UPS_OS_FLAVOR": self.flavors[0],
            "UPS_PROD_FLAVOR": i.flavor,
            "UPS_REQ_QUALIFIERS": quals,
            "UPS_PROD_QUALIFIERS": _sorted(i.qualifiers),
            "UPS_SHELL": "sh",
            "UPS_OPTIONS": "",
            "UPS_SETUP": self._setup_string(scope),
            "UPS_COMPILE": f"{self.db.path}/{i.product}/{i.version}.{i.flavor}.compile",
            "UPS_ORIGIN": "",
            "UPS_SOURCE": ".",
            "UPS_REQ_CHAIN": "" if request.version else request.chain,
            "PRODUCTS": self.db.path,
        }

    def _setup_string(self, scope: _Scope) -> str:
        """SETUP_<P>: `product version -f FLAVOR -z DB`, then `-q QUALS` (sorted) when
        qualified."""
        i = scope.instance
        out = f"{i.product} {i.version} -f {i.flavor} -z {self.db.path}"
        if i.qualifiers:
            out += f" -q {_sorted(i.qualifiers)}"
        if scope.request.just_this:
            out += " -j"
        if scope.request.extended:
            out += " -e"
        return out

    def _collect_top(self, scope: _Scope) -> None:
        """The instances the top product asks for in its own setup action (not through
        exeAction): they are used wherever these products are asked for."""
        if scope.table is None or scope.request.just_this:
            return
        for command in scope.table.actions.get("setup", []):
            call = parse_call(self._translate(command.text, scope))
            if call is None or call[0] not in ("setuprequired", "setupoptional") or not call[1]:
                continue
            request = _parse_request(call[1][0], call[0] == "setupoptional", "")
            found = self._resolve(request)
            if found is not None and request.product not in self.top:
                self.top[request.product] = found

    # -- setting up -------------------------------------------------------------------------

    def _enter(self, scope: _Scope, depth: int, active: bool) -> None:
        """Walk the instance's action (setup or unsetup); an unsetup action missing is the
        setup action reversed; no action at all is doDefaults()."""
        if depth > MAX_DEPTH:
            raise SourceError(
                f"{scope.request.via}: {scope.action} of {scope.request}: dependencies nest "
                "too deep"
            )
        i = scope.instance
        self.done[i.product] = (i.version, i.qualifiers)
        if active and scope.action == "setup":
            self.active[i.product] = (i.version, i.qualifiers)
        actions = scope.table.actions if scope.table else {}
        if scope.action in actions:
            self._run(actions[scope.action], scope, depth, active)
        elif scope.action == "unsetup" and "setup" in actions:
            self._run(self._reversed(actions["setup"], scope), scope, depth, active)
        else:
            self._defaults(scope, scope.action, active)

    def _reversed(self, commands: list[Command], scope: _Scope) -> list[Command]:
        products = setup_variables(self.initial)
        return reverse(
            commands,
            lambda text: self._translate(text, scope),
            lambda product: product.upper() in products,
        )

    def _dependency(
        self,
        name: str,
        text: str,
        scope: _Scope,
        depth: int,
        active: bool,
        where: str,
        call: str,
    ) -> None:
        if scope.request.just_this:
            return
        optional = name.endswith("optional")
        unsetup = name.startswith("unsetup")
        asked = f"{where}: {call}"
        if unsetup and scope.action == "setup":
            self._warn(f"{asked}: UPS cannot parse this in a setup action; skipped")
            return
        request = _parse_request(text, optional, where)
        if unsetup:
            previous = self.initial.get(f"SETUP_{request.product.upper()}")
            if previous:
                request = replace(_parse_request(previous, optional, where), via=where)
        if request.product in self.done:
            version, quals = self.done[request.product]
            wanted = request.version or version
            if wanted != version or not _compatible(request.qualifiers, quals):
                self._warn(
                    f"{where}: {request} asked, but {request.product} {version}"
                    f"{' -q ' + quals if quals else ''} is already set up; keeping it"
                )
            return
        found = self.top.get(request.product) or self._resolve(request)
        if found is None:
            if unsetup:
                if not optional:
                    self._warn(f"{asked}: {self._not_found(request)}")
                return
            self._missing(request, asked)
            return
        action = "unsetup" if unsetup else "setup"
        try:
            scope = self._scope(request, *found, action)
        except _NoTableInstance as e:
            if not unsetup:
                self._missing(request, asked, str(e))
            return
        self._enter(scope, depth + 1, active)

    def _missing(self, request: Request, asked: str, reason: str = "") -> None:
        if request.optional:
            self.report(Message(f"{asked}: optional {request} not found"))
            return
        reason = reason or self._not_found(request)
        if self.missing == "refuse":
            raise SourceError(
                f"{asked}: {request}: {reason} (the real setup goes on without it; "
                "`missing: warn` in the recipe's setup: does the same)"
            )
        if request.product not in self.missing_products:
            message = f"{asked}: {request}: {reason}; going on without it, as UPS does"
            self.missing_products[request.product] = message
            self._warn(message)

    # -- actions ----------------------------------------------------------------------------

    def _run(self, commands: list[Command], scope: _Scope, depth: int, active: bool) -> None:
        branches: list[tuple[bool, str, str]] = []  # (condition holds, kind, its argument)
        for command in commands:
            where = f"{scope.table_path}:{command.line}"
            translated = self._translate(command.text, scope)
            call = parse_call(translated)
            if call is None:
                self._warn(f"{where}: {command.text}: UPS cannot parse this line and skips it")
                continue
            name, args = call
            fewest, most = FUNCTIONS[name]
            if not fewest <= len(args) <= most:
                raise SourceError(
                    f"{command.text}: {name} takes {fewest} to {most} arguments, "
                    f"got {len(args)} (UPS stops the setup here)",
                    where,
                )
            here = active and all(holds for holds, _, _ in branches)
            if name in ("if", "unless"):
                holds = here and self._condition(command, args[0], where, name == "unless")
                branches.append((holds, name, args[0]))
            elif name == "else":
                if not branches:
                    raise SourceError("else() without if()", where)
                holds, kind, arg = branches[-1]
                outer = active and all(h for h, _, _ in branches[:-1])
                branches[-1] = (outer and not holds, kind, arg)
            elif name in ("endif", "endunless"):
                if not branches or branches[-1][2] != args[0]:
                    opened = f"{branches[-1][1]}({branches[-1][2]})" if branches else "no if()"
                    raise SourceError(
                        f"{command.text} does not close {opened}: UPS pairs them by their text",
                        where,
                    )
                branches.pop()
            else:
                self._call(name, args, command, scope, depth, here, where)
                self._check_lengths(command, where)
        if branches:
            raise SourceError(
                f"{scope.table_path}: {branches[-1][1]}({branches[-1][2]}) without "
                "endif() in the setup action"
            )

    def _condition(self, command: Command, text: str, where: str, unless: bool) -> bool:
        try:
            holds = condition(text, self.env, self.commands, self.db.exists)
        except NeedsShell as e:
            self._not_frozen(where, command.text, f"only a shell in the image can tell: {e}")
            return False
        return holds != unless

    def _call(
        self,
        name: str,
        args: list[str],
        command: Command,
        scope: _Scope,
        depth: int,
        active: bool,
        where: str,
    ) -> None:
        if name in ("setuprequired", "setupoptional", "unsetuprequired", "unsetupoptional"):
            self._dependency(name, args[0], scope, depth, active, where, command.text)
        elif name.endswith(("exeactionrequired", "exeactionoptional")):
            action = args[0].lower()
            commands = scope.table.actions.get(action) if scope.table else None
            if commands is None:
                if name.endswith("required"):
                    raise SourceError(f"{command.text}: no action {action!r}", where)
                return
            if depth > MAX_DEPTH:
                raise SourceError("actions call each other too deep", where)
            if name.startswith("rev_"):
                commands = self._reversed(commands, scope)
            self._run(commands, scope, depth + 1, active)
        elif active:
            try:
                self._function(name, args, command, scope, where)
            except NeedsShell as e:
                self._not_frozen(where, command.text, f"only a shell in the image can tell: {e}")

    def _function(
        self, name: str, args: list[str], command: Command, scope: _Scope, where: str
    ) -> None:
        env = self.env
        if name in ("envset", "pathset"):
            env[_name(name, args[0])] = self._value(args[1])
        elif name == "envsetifnotset":
            functions.set_if_not_set(env, args[0], self._value(args[1]))
        elif name == "envunset":
            env.pop(args[0], None)
        elif name in ("envappend", "pathappend", "envprepend", "pathprepend"):
            edit = functions.append if name.endswith("append") else functions.prepend
            delim = self._value(functions.delimiter(args, 3))
            edit(env, _name(name, args[0]), self._value(args[1]), delim)
        elif name in ("envremove", "pathremove"):
            value = unquoted_value(args[1], env, self.commands)
            functions.remove(env, _name(name, args[0]), value, functions.delimiter(args, 3))
        elif name == "setupenv":
            self._set(f"SETUP_{scope.instance.product.upper()}", self._setup_string(scope))
        elif name == "unsetupenv":
            env.pop(f"SETUP_{scope.instance.product.upper()}", None)
        elif name == "proddir":
            self._prod_dir(scope, args)
        elif name == "unproddir":
            env.pop(scope.instance.product.upper() + (args[0] if args else "_DIR"), None)
        elif name == "dodefaults":
            self._defaults(scope, args[0].lower() if args else scope.action, True)
        elif name in ("addalias", "unalias"):
            if name == "unalias":
                env.pop(args[0], None)  # sh's `unset NAME` removes a variable too
            self._not_frozen(where, command.text, "aliases exist only in interactive shells")
        elif name in _SOURCES:
            self._source(name, args, command, where)
        elif name == "execute":
            if args[1].upper() not in ("UPS_ENV", "NO_UPS_ENV"):
                raise SourceError(
                    f"{command.text}: the second argument must be UPS_ENV or NO_UPS_ENV", where
                )
            if len(args) == 2 and args[0].split()[:1] in (["true"], [":"], ["echo"]):
                return  # changes nothing
            self._not_frozen(where, command.text, "commands are not run at build time")
        elif name == "exeaccess":
            self._not_frozen(where, command.text, "the command is looked up at setup time")
        elif name == "filetest":
            self._file_test(args, command, where)
        elif name == "writecompilescript":
            self._not_frozen(where, command.text, "compile scripts are not written at build time")

    def _prod_dir(self, scope: _Scope, args: list[str]) -> None:
        """prodDir(): <P>_DIR; prodDir(_SUFFIX): <P>_SUFFIX; prodDir(_SUFFIX, path): the path
        under the product directory, or as is when absolute."""
        prod_dir = scope.translations["UPS_PROD_DIR"]
        value = prod_dir
        if len(args) == 2:
            value = args[1] if args[1].startswith("/") else f"{prod_dir.rstrip('/')}/{args[1]}"
        suffix = args[0] if args else "_DIR"
        self._set(scope.instance.product.upper() + suffix, self._value(value))

    def _defaults(self, scope: _Scope, action: str, active: bool) -> None:
        """doDefaults(): for setup <P>_DIR and SETUP_<P>, for unsetup their removal."""
        if not active:
            return
        if action == "setup":
            self._prod_dir(scope, [])
            self._set(f"SETUP_{scope.instance.product.upper()}", self._setup_string(scope))
        elif action == "unsetup":
            self.env.pop(f"{scope.instance.product.upper()}_DIR", None)
            self.env.pop(f"SETUP_{scope.instance.product.upper()}", None)

    def _source(self, name: str, args: list[str], command: Command, where: str) -> None:
        if len(args) > 1 and args[1].upper() not in ("UPS_ENV", "NO_UPS_ENV"):
            raise SourceError(
                f"{command.text}: the second argument must be UPS_ENV or NO_UPS_ENV", where
            )
        path = self._value(args[0])
        if self.db.exists(path, "f") is False:
            if _SOURCES[name]:
                self._stop(where, command.text, f"{path} does not exist")
            return
        self._not_frozen(where, command.text, "a sourced script cannot be frozen")

    def _file_test(self, args: list[str], command: Command, where: str) -> None:
        path, flag = self._value(args[0]), args[1]
        try:
            holds = condition(f"test {flag} {shlex.quote(path)}", {}, {}, self.db.exists)
        except NeedsShell as e:
            self._not_frozen(where, command.text, f"only a shell in the image can tell: {e}")
            return
        if not holds:
            self._stop(where, command.text, "the test fails")

    def _stop(self, where: str, text: str, why: str) -> None:
        self.stopped = f"{where}: {text}: {why}; the setup stops here, as UPS's does"
        self._warn(self.stopped)
        raise _Stop

    # -- values -----------------------------------------------------------------------------

    def _translate(self, text: str, scope: _Scope) -> str:
        """`${UPS_...}` (those UPS knows), `${_name}` and `${PRODUCTS}` replaced."""
        version_variables = dict(scope.instance.variables)
        table_variables = scope.table.variables if scope.table else {}

        def value(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.startswith("_"):
                return version_variables.get(name, table_variables.get(name, ""))
            return scope.translations.get(name, m.group())

        return _TRANSLATED.sub(value, text)

    def _value(self, text: str) -> str:
        """What sh makes of `"text"`."""
        return quoted_value(text, self.env, self.commands)

    def _set(self, name: str, value: str) -> None:
        self.env[name] = value

    def _check_lengths(self, command: Command, where: str) -> None:
        """A table doubling a value line after line would fill the memory: refuse past the
        limit, naming the line."""
        limit = ENV_VALUE.value
        for name, value in self.env.items():
            if len(value) > limit:
                raise LimitError(
                    f"{command.text}: {name} is {len(value)} characters, over the limit {limit} "
                    f"(set {ENV_VALUE.name} to change it)",
                    where,
                )

    def _not_frozen(self, where: str, text: str, reason: str) -> None:
        rule = NotFrozen(where, text, reason)
        self.not_frozen.append(rule)
        self._warn(str(rule))

    def _warn(self, message: str) -> None:
        if message not in self.warned:
            self.warned.add(message)
            self.report(Message(message, "warning"))


def _sorted(qualifiers: str) -> str:
    """UPS reads qualifiers sorted (upsfil.c trim_qualifiers): `prof:e19` is `e19:prof`."""
    return ":".join(sorted(q for q in re.sub(r"[\s\"']", "", qualifiers).split(":") if q))


def _name(function: str, name: str) -> str:
    return functions.path_name(name) if function.startswith("path") else name


def _parse_request(text: str, optional: bool, where: str) -> Request:
    """`prod [version] [-q quals] [-f flavor] [-j] [-e] [-g chain|-c|-d|-n|-o|-t] [-z db]`,
    an option's value attached (`-q+e9:+prof`) or not."""
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    positional: list[str] = []
    options: dict[str, str] = {}
    flags: set[str] = set()
    i = 0
    while i < len(words):
        word = words[i]
        if word in _WITH_VALUE:
            if i + 1 >= len(words):
                raise SourceError(f"option {word} without a value in {text!r}", where)
            options[word] = words[i + 1]
            i += 2
            continue
        if len(word) > 2 and word[:2] in _WITH_VALUE:
            options[word[:2]] = word[2:]
        elif word.startswith("-") and len(word) > 1:
            flags.update("-" + ch for ch in word[1:])
        else:
            positional.append(word)
        i += 1
    if not positional:
        raise SourceError(f"setup without a product name: {text!r}", where)
    chain = next((name for flag, name in _CHAINS.items() if flag in flags), "current")
    return Request(
        product=positional[0],
        version=positional[1] if len(positional) > 1 else "",
        qualifiers=options.get("-q", ""),
        chain=options.get("-g", chain),
        flavor=options.get("-f", ""),
        just_this="-j" in flags,
        extended="-e" in flags,
        optional=optional,
        via=where,
    )


def _qualifier_choices(qualifiers: str) -> list[str]:
    """`+e9:?py2:prof` -> ["e9:py2:prof", "e9:prof"]: with optional qualifiers, then without."""
    parts = [p for p in re.split(r"[:]", qualifiers.strip()) if p.strip("+?")]
    required = [p.lstrip("+") for p in parts if not p.startswith("?")]
    optional = [p[1:] for p in parts if p.startswith("?")]
    choices = [colon_qualifiers(":".join(required + optional))]
    if optional:
        choices.append(colon_qualifiers(":".join(required)))
    return choices


def _compatible(asked: str, have: str) -> bool:
    return not asked or any(same_qualifiers(q, have) for q in _qualifier_choices(asked))
