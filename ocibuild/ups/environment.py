"""What UPS's `setup` does to the environment, computed without a shell.

`source <root>/setup` puts the database on PRODUCTS and sets up the `ups` product; then
`setup <product> <version> -q <quals>` finds the declared instance (trying the host flavor's
fallbacks: Linux64bit+2.6-2.12, Linux64bit+2.6, Linux64bit, NULL), its table instance
(flavor or ANY, same qualifiers), and runs the table's `setup` action in order:

- `setupEnv()` sets SETUP_<P>, `prodDir()` sets <P>_DIR (both are done when a table has no
  setup action, and for products without a table);
- `envSet`, `envSetIfNotSet`, `envUnset`, `envPrepend/envAppend/envRemove` and
  `pathPrepend/pathAppend/pathRemove/pathSet` (the path ones drop duplicates), with ':' as
  the default delimiter;
- `setupRequired/setupOptional(prod [version] [-q quals] [-f flavor] [-j] [-g chain])` run
  in place, depth first; a product already set up is not set up again (a different version
  asked later is warned about); qualifiers `+q` are required, `?q` optional;
- `exeActionRequired/exeActionOptional(Name)` run another action of the same table instance;
- `if (test ...)` / `else()` / `endif()` are evaluated where the answer is knowable here
  (`uname`, `test -d/-f/-e` under the database, string comparisons); otherwise warned about
  and taken as false.

Variables: `${UPS_PROD_DIR}`, `${UPS_PROD_NAME}`, `${UPS_PROD_VERSION}`, `${UPS_PROD_FLAVOR}`,
`${UPS_PROD_QUALIFIERS}`, `${UPS_UPS_DIR}`, `${UPS_THIS_DB}`, `${UPS_REQ_QUALIFIERS}`, the
table instance's own variables, then the environment so far. What cannot be frozen into an
image's Env (aliases, sourced scripts, executed commands, backquoted commands) is reported as
a warning naming the product, table file and line, and skipped.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from ocibuild.errors import SourceError
from ocibuild.limits import ENV_VALUE, LimitError
from ocibuild.report import Reporter
from ocibuild.ups.database import Database, flavor_fallbacks
from ocibuild.ups.declaration import Instance
from ocibuild.ups.names import colon_qualifiers, env_name, same_qualifiers
from ocibuild.ups.table import Command, TableInstance

MAX_DEPTH = 64
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_KNOWN_COMMANDS = {"uname": "Linux", "uname -s": "Linux", "uname -m": "x86_64"}
_NOT_FROZEN = {
    "addalias": "aliases exist only in interactive shells",
    "sourcerequired": "a sourced script cannot be frozen",
    "sourceoptional": "a sourced script cannot be frozen",
    "sourcereqcheck": "a sourced script cannot be frozen",
    "sourceoptcheck": "a sourced script cannot be frozen",
    "sourcecompilereq": "a sourced script cannot be frozen",
    "sourcecompileopt": "a sourced script cannot be frozen",
    "execute": "commands are not run at build time",
    "filetest": "file tests are not run at build time",
}
_UNSETUP = {"unsetuprequired", "unsetupoptional", "writecompilescript"}  # no effect on setup


@dataclass(frozen=True)
class Request:
    """One `setup` request: product, version (or chain), qualifiers, options."""

    product: str
    version: str = ""
    qualifiers: str = ""
    chain: str = "current"
    flavor: str = ""
    just_this: bool = False
    optional: bool = False
    via: str = ""  # who asked: "recipe.yaml:12" or "/products/art/v1/ups/art.table:30"

    def __str__(self) -> str:
        quals = f" -q {self.qualifiers}" if self.qualifiers else ""
        return f"{self.product} {self.version or '(' + self.chain + ')'}{quals}"


class _NeedsShell(Exception):
    pass


class _TooLong(Exception):
    pass


def _bounded(value: str) -> str:
    if len(value) > ENV_VALUE.value:
        raise _TooLong(len(value))
    return value


@dataclass
class _Scope:
    instance: Instance
    table: TableInstance | None
    table_path: str
    variables: dict[str, str] = field(default_factory=dict)
    just_this: bool = False


class UpsEnvironment:
    def __init__(self, db: Database, env: dict[str, str], flavor: str, report: Reporter) -> None:
        self.db = db
        self.env = dict(env)
        self.flavors = flavor_fallbacks(flavor)
        self.report = report
        self.active: dict[str, tuple[str, str]] = {}  # product -> (version, qualifiers)

    # -- source <root>/setup ------------------------------------------------------------------

    def source_setup(self) -> None:
        """What `source <root>/setup` does: PRODUCTS, then `setup ups`."""
        self.edit("PRODUCTS", self.db.path, ":", prepend=True, dedupe=True)
        self.env["UPS_SHELL"] = "sh"
        if "ups" in self.db.products():
            self.setup(Request("ups", optional=True, via=f"{self.db.path}/setup"))

    # -- setup --------------------------------------------------------------------------------

    def setup(self, request: Request, depth: int = 0) -> None:
        if depth > MAX_DEPTH:
            raise SourceError(f"{request.via}: setup of {request}: dependencies nest too deep")
        if request.product in self.active:
            version, quals = self.active[request.product]
            wanted = request.version or version
            if wanted != version or not _compatible(request.qualifiers, quals):
                self._warn(
                    f"{request.via}: {request} asked, but {request.product} {version}"
                    f"{' -q ' + quals if quals else ''} is already set up; keeping it"
                )
            return
        found = self._resolve(request)
        if found is None:
            if request.optional:
                self.report("message", message=f"{request.via}: optional {request} not found")
                return
            raise SourceError(f"{request.via}: setup {request}: {self._not_found(request)}")
        instance, requested_quals = found
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
                raise SourceError(
                    f"{table.path}: no instance for flavor {instance.flavor} qualifiers "
                    f"{instance.qualifiers or '(none)'} (setup {request}, from {request.via})"
                )
        self.active[instance.product] = (instance.version, instance.qualifiers)
        scope = _Scope(
            instance,
            table_instance,
            table.path if table else instance.source,
            self._ups_variables(instance, requested_quals),
            request.just_this,
        )
        actions = table_instance.actions if table_instance else {}
        if "setup" in actions:
            self._run(actions["setup"], scope, request, depth)
        else:
            self.set_up_defaults(scope)

    def _resolve(self, request: Request) -> tuple[Instance, str] | None:
        flavors = flavor_fallbacks(request.flavor) if request.flavor else self.flavors
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
        return (
            f"no instance for flavors {', '.join(self.flavors)} in {self.db.path}; "
            f"declared: {'; '.join(declared)}"
        )

    def _ups_variables(self, instance: Instance, requested_quals: str) -> dict[str, str]:
        return {
            "UPS_PROD_NAME": instance.product,
            "UPS_PROD_VERSION": instance.version,
            "UPS_PROD_FLAVOR": instance.flavor,
            "UPS_PROD_QUALIFIERS": instance.qualifiers,
            "UPS_PROD_DIR": self.db.prod_dir(instance),
            "UPS_UPS_DIR": self.db.ups_dir(instance),
            "UPS_THIS_DB": self.db.path,
            "UPS_REQ_QUALIFIERS": requested_quals,
            "UPS_OPTIONS": "",
            "UPS_VERBOSE": "",
            "UPS_EXTENDED": "",
            "UPS_SHELL": "sh",
        }

    # -- actions ------------------------------------------------------------------------------

    def _run(self, commands: list[Command], scope: _Scope, request: Request, depth: int) -> None:
        branches: list[tuple[bool, bool]] = []  # (taking this branch, enclosing active)
        for command in commands:
            active = all(taking for taking, _ in branches)
            where = f"{scope.table_path}:{command.line}"
            if command.name == "if":
                taking = active and self._condition(command, scope, where)
                branches.append((taking, active))
                continue
            if command.name == "else":
                if not branches:
                    raise SourceError(f"{where}: else() without if()")
                taking, outer = branches[-1]
                branches[-1] = (outer and not taking, outer)
                continue
            if command.name == "endif":
                if not branches:
                    raise SourceError(f"{where}: endif() without if()")
                branches.pop()
                continue
            if not active:
                continue
            try:
                self._call(command, scope, request, depth, where)
            except _NeedsShell as e:
                self._warn(f"{where}: {command.text}: skipped, it needs a shell ({e})")
            except _TooLong as e:
                raise LimitError(
                    f"{where}: {command.text}: a value of {e} characters or more is over the "
                    f"limit {ENV_VALUE.value} (set {ENV_VALUE.name} to change it)"
                ) from None
        if branches:
            self._warn(f"{scope.table_path}: if() without endif() in {request.product}'s table")

    def _call(
        self, command: Command, scope: _Scope, request: Request, depth: int, where: str
    ) -> None:
        name = command.name
        handler = _HANDLERS.get(name)
        if handler is not None:
            args = [self._expand(a, scope) for a in command.args]
            handler(self, scope, args, where)
        elif name in ("setuprequired", "setupoptional"):
            if scope.just_this:
                return
            text = " ".join(self._expand(a, scope) for a in command.args)
            self.setup(_parse_request(text, name == "setupoptional", where), depth + 1)
        elif name in ("exeactionrequired", "exeactionoptional"):
            action = self._expand(command.args[0], scope).lower() if command.args else ""
            commands = scope.table.actions.get(action) if scope.table else None
            if commands is None:
                if name == "exeactionrequired":
                    raise SourceError(f"{where}: {command.text}: no action {action!r}")
                return
            if depth > MAX_DEPTH:
                raise SourceError(f"{where}: actions call each other too deep")
            self._run(commands, scope, request, depth + 1)
        elif name in _NOT_FROZEN:
            self._warn(f"{where}: {command.text}: skipped ({_NOT_FROZEN[name]})")
        elif name not in _UNSETUP:
            self._warn(f"{where}: {command.text}: unknown UPS action {command.name}, skipped")

    def _expand(self, text: str, scope: _Scope) -> str:
        """Known command substitutions, then `${VAR}` and `$VAR`; another command substitution
        raises _NeedsShell."""
        commands = {
            **_KNOWN_COMMANDS,
            "ups flavor": self.flavors[0],
            "ups flavor -4": self.flavors[0],
        }
        for command, output in commands.items():
            text = text.replace(f"`{command}`", output).replace(f"$({command})", output)
        if "`" in text or "$(" in text:
            raise _NeedsShell("a command substitution")

        def value(m: re.Match[str]) -> str:
            name = m.group(1) or m.group(2)
            if name in scope.variables:
                return scope.variables[name]
            if scope.table is not None and name in scope.table.variables:
                return scope.table.variables[name]
            return self.env.get(name, "")

        return _bounded(_VARIABLE.sub(value, text))

    def _condition(self, command: Command, scope: _Scope, where: str) -> bool:
        try:
            result = _test(shlex.split(self._expand(" ".join(command.args), scope)), self.db)
        except (_NeedsShell, _TooLong, ValueError):
            result = None
        if result is None:
            self._warn(f"{where}: cannot evaluate {command.text} here; taking it as false")
            return False
        return result

    # -- the environment ----------------------------------------------------------------------

    def set_up_defaults(self, scope: _Scope) -> None:
        """`setupEnv()` and `prodDir()`: SETUP_<P> and <P>_DIR."""
        _setup_env(self, scope, [], "")
        _prod_dir(self, scope, [], "")

    def edit(self, name: str, value: str, delimiter: str, prepend: bool, dedupe: bool) -> None:
        """envPrepend/envAppend (dedupe=False) and pathPrepend/pathAppend (dedupe=True)."""
        current = self.env.get(name, "")
        if dedupe:
            parts = [p for p in current.split(delimiter) if p and p != value]
            self.env[name] = _bounded(
                delimiter.join([value, *parts] if prepend else [*parts, value])
            )
        elif not current:
            self.env[name] = value
        else:
            self.env[name] = _bounded(
                value + delimiter + current if prepend else current + delimiter + value
            )

    def remove(self, name: str, value: str, delimiter: str) -> None:
        if name in self.env:
            parts = [p for p in self.env[name].split(delimiter) if p != value]
            self.env[name] = delimiter.join(parts)

    def _warn(self, message: str) -> None:
        self.report("message", message=message, level="warning")


Handler = Callable[[UpsEnvironment, _Scope, list[str], str], None]


def _setup_env(env: UpsEnvironment, scope: _Scope, args: list[str], where: str) -> None:
    i = scope.instance
    quals = f" -q {i.qualifiers}" if i.qualifiers else ""
    env.env[f"SETUP_{env_name(i.product)}"] = (
        f"{i.product} {i.version} -f {i.flavor}{quals} -z {env.db.path}"
    )


def _prod_dir(env: UpsEnvironment, scope: _Scope, args: list[str], where: str) -> None:
    env.env[f"{env_name(scope.instance.product)}_DIR"] = scope.variables["UPS_PROD_DIR"]


def _defaults(env: UpsEnvironment, scope: _Scope, args: list[str], where: str) -> None:
    env.set_up_defaults(scope)


def _env_set(env: UpsEnvironment, scope: _Scope, args: list[str], where: str) -> None:
    name, value = _two(args, where)
    env.env[name] = value


def _env_set_if_not_set(env: UpsEnvironment, scope: _Scope, args: list[str], where: str) -> None:
    name, value = _two(args, where)
    env.env.setdefault(name, value)


def _env_unset(env: UpsEnvironment, scope: _Scope, args: list[str], where: str) -> None:
    if not args or not args[0]:
        raise SourceError(f"{where}: envUnset needs a variable name")
    env.env.pop(args[0], None)


def _editor(prepend: bool, dedupe: bool) -> Handler:
    def edit(env: UpsEnvironment, scope: _Scope, args: list[str], where: str) -> None:
        name, value = _two(args, where)
        env.edit(name, value, _delimiter(args), prepend, dedupe)

    return edit


def _remove(env: UpsEnvironment, scope: _Scope, args: list[str], where: str) -> None:
    name, value = _two(args, where)
    env.remove(name, value, _delimiter(args))


def _delimiter(args: list[str]) -> str:
    return args[2] if len(args) > 2 and args[2] else ":"


_HANDLERS: dict[str, Handler] = {
    "setupenv": _setup_env,
    "proddir": _prod_dir,
    "dodefaults": _defaults,
    "envset": _env_set,
    "pathset": _env_set,
    "envsetifnotset": _env_set_if_not_set,
    "envunset": _env_unset,
    "envprepend": _editor(prepend=True, dedupe=False),
    "envappend": _editor(prepend=False, dedupe=False),
    "pathprepend": _editor(prepend=True, dedupe=True),
    "pathappend": _editor(prepend=False, dedupe=True),
    "envremove": _remove,
    "pathremove": _remove,
}


def _two(args: list[str], where: str) -> tuple[str, str]:
    if len(args) < 2 or not args[0]:
        raise SourceError(f"{where}: expected (VARIABLE, value), got ({', '.join(args)})")
    return args[0], args[1]


def _parse_request(text: str, optional: bool, where: str) -> Request:
    """`prod [version] [-q quals] [-f flavor] [-j] [-g chain|-c|-t|-n|-o|-d] [-z db]`."""
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise SourceError(f"{where}: cannot read setup arguments {text!r}: {e}") from None
    positional: list[str] = []
    options: dict[str, str] = {}
    chain = "current"
    just = False
    chains = {"-c": "current", "-t": "test", "-n": "new", "-o": "old", "-d": "development"}
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("-q", "-f", "-z", "-g", "-H", "-m", "-M", "-O"):
            if i + 1 >= len(words):
                raise SourceError(f"{where}: option {word} without a value in {text!r}")
            options[word] = words[i + 1]
            i += 2
            continue
        if len(word) > 2 and word[:2] in ("-q", "-f", "-g"):
            options[word[:2]] = word[2:]
        elif word in chains:
            chain = chains[word]
        elif word == "-j":
            just = True
        elif not word.startswith("-"):
            positional.append(word)
        i += 1
    if not positional:
        raise SourceError(f"{where}: setup without a product name: {text!r}")
    return Request(
        product=positional[0],
        version=positional[1] if len(positional) > 1 else "",
        qualifiers=options.get("-q", ""),
        chain=options.get("-g", chain),
        flavor=options.get("-f", ""),
        just_this=just,
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


def _test(words: list[str], db: Database) -> bool | None:
    """`test EXPR` or `[ EXPR ]` with -d -f -e -z -n = != ! -a -o; None when unknowable."""
    if words[:1] == ["test"]:
        words = words[1:]
    elif words[:1] == ["["] and words[-1:] == ["]"]:
        words = words[1:-1]
    else:
        return None
    return _or(words, db)


def _or(words: list[str], db: Database) -> bool | None:
    results = [_and(part, db) for part in _split(words, "-o")]
    if any(r is True for r in results):
        return True
    return None if any(r is None for r in results) else False


def _and(words: list[str], db: Database) -> bool | None:
    results = [_primary(part, db) for part in _split(words, "-a")]
    if any(r is False for r in results):
        return False
    return None if any(r is None for r in results) else True


def _primary(words: list[str], db: Database) -> bool | None:
    if words[:1] == ["!"]:
        inner = _primary(words[1:], db)
        return None if inner is None else not inner
    if len(words) == 1:
        return bool(words[0])
    if len(words) == 2:
        op, arg = words
        if op in ("-d", "-f", "-e", "-r"):
            return db.exists(arg, "e" if op == "-r" else op[1])
        if op == "-z":
            return not arg
        if op == "-n":
            return bool(arg)
        return None
    if len(words) == 3 and words[1] in ("=", "==", "!="):
        equal = words[0] == words[2]
        return equal if words[1] != "!=" else not equal
    return None


def _split(words: list[str], operator: str) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    for word in words:
        if word == operator:
            parts.append([])
        else:
            parts[-1].append(word)
    return parts
