"""What `source <db>/setup` and `setup ...` do to the environment, computed without a shell.

One setup command is what ups_setup.c does: the top product looked up (lookup.py: not found,
the setup is refused); its unsetup first (the instance SETUP_<PRODUCT> names, else the one being
set up, its unsetup action or its setup action reversed: applied only to products set up when
the command began, and not at all when that pass ends in error: "WARNING: Unsetup of P failed,
continuing with setup"); then its setup (dependencies.py, script.py). The real setup is refused
when ups's last error stands after its walk (upserrors.py), or when writing a call fails; the
shell stops where the sh code returns 1 (or cannot be parsed).

What the recipe makes of a refusal (`missing:` in setup:):

    ups     (default) what the real setup does: where it fails the build fails with its reason;
            where it goes on without a product, ocibuild goes on too, with a warning
    refuse  every required product, action or table line ups cannot resolve is an error, also
            where the real setup goes on
    warn    none is: each is a warning and the setup goes on without it (a missing sourced
            file or failing fileTest stops the setup there, as the shell does)

A ups refusal for another reason (a wrong number of arguments, EndIf against If, the top
product not found) is always an error.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from ocibuild.errors import SourceError
from ocibuild.ups.authorized import check_nodes
from ocibuild.ups.database import ImageTree
from ocibuild.ups.dependencies import Item, Pass, Process, action_lines
from ocibuild.ups.lookup import Lookup
from ocibuild.ups.notices import NotFrozen, Notices
from ocibuild.ups.reader import Reader
from ocibuild.ups.request import Request, parse_override, parse_request
from ocibuild.ups.scope import Match
from ocibuild.ups.script import Script
from ocibuild.ups.shell import KNOWN_COMMANDS
from ocibuild.ups.shellstate import ShellState
from ocibuild.ups.upserrors import SetupFailed, SetupRefused, UpsErrors

__all__ = ["Frozen", "Missing", "NotFrozen", "Request", "UpsEnvironment"]

Missing = Literal["ups", "refuse", "warn"]


@dataclass(frozen=True)
class Frozen:
    """The environment after setup, and the table lines it could not hold."""

    env: dict[str, str]
    not_frozen: tuple[NotFrozen, ...]
    products: int  # how many products the setup command walked
    messages: tuple[str, ...] = ()  # what the real ups prints on the way (ERROR:, WARNING:...)


class UpsEnvironment:
    """The shell the setup commands run in, one after the other."""

    def __init__(
        self,
        tree: ImageTree,
        env: dict[str, str],
        hosts: tuple[str, ...],
        notices: Notices,
        missing: Missing = "ups",
        home: str = "/root",
    ) -> None:
        """`hosts`: the host flavors (host.py); `home`: the home directory `~` stands for."""
        self.tree = tree
        self.hosts = hosts
        self.notices = notices
        commands = {**KNOWN_COMMANDS, "ups flavor": hosts[0] if hosts else "NULL"}
        self.shell = ShellState(dict(env), commands, tree.test, dict(env))
        self.missing = missing
        self.home = home
        self.products = 0
        self.messages: list[str] = []  # what the real ups printed, all commands

    @property
    def env(self) -> dict[str, str]:
        return self.shell.env

    @property
    def not_frozen(self) -> list[NotFrozen]:
        return self.notices.not_frozen

    def source_setup(self, root: str) -> None:
        """What `source <root>/setup` does (ups's bootstrap script): PRODUCTS gets <root>
        unless it has it, a previous ups is unset up, UPS_SHELL=sh, then `setup ups`."""
        env = self.shell.env
        products = env.get("PRODUCTS") or root
        if f":{root}:" not in f":{products}:":
            products = f"{root}:{products}"
        if env.get("UPS_DIR"):
            stale = f"{env['UPS_DIR'].rstrip('/')}/bin"
            env["PATH"] = ":".join(
                p for p in env.get("PATH", "").split(":") if p.rstrip("/") != stale
            )
        for name in ("SETUP_UPS", "UPS_DIR"):
            env.pop(name, None)
        env["UPS_SHELL"] = "sh"
        env["PRODUCTS"] = products
        for name in self.tree.entries(root):
            if name.startswith("ups_OVERRIDE.") or name == "setup.initial":
                self.notices.warn(
                    f"{root}/{name}: the real `source {root}/setup` reads it (on the host it "
                    "names, or always for setup.initial); ocibuild does not"
                )
        if self.tree.is_dir(f"{root}/ups"):
            self.setup(Request("ups", via=f"{root}/setup"))
        else:
            self.notices.warn(
                f"{root} has no ups product: the real `source {root}/setup` stops there (no ups "
                "binary); ocibuild sets PRODUCTS and goes on"
            )

    def setup(self, request: Request) -> None:
        """One `setup` command."""
        self.shell.begin_command()
        initial = self.shell.initial
        errors = UpsErrors()
        reader = Reader(self.tree, initial, self.home, errors, self.notices.warn)
        override = parse_override(initial.get("UPS_OVERRIDE", ""))
        lookup = Lookup(reader, override, self.notices.warn)
        request = replace(
            request,
            hosts=request.hosts or override.hosts or self.hosts,
            exact=request.exact or override.exact,
        )
        databases = list(request.databases) or _products(initial.get("PRODUCTS", ""))
        match = lookup.find(request, databases)
        if match is None or errors.failed:
            errors.add("NO_INSTANCE", "ERROR", _no_instance(request, lookup))
            raise _refusal(request, errors, f"{_cause(errors)}: the real setup is refused")
        check_nodes(match, request.product, self.notices.warn)
        process = Process(
            lookup, errors, initial, databases, request.hosts, request.exact, self.home,
            lambda m, p: self._statistics(errors, m, p),
        )  # fmt: skip
        self._unsetup_first(process, request, match)
        start = len(errors.messages)
        script = Script(self.shell, self.notices, self.tree.data)
        walk = Pass(process, "setup", script)
        walk.walk(Item(request, match, action_lines(match, "setup")))
        self.products = len(walk.done)
        warned = self._judge(request, errors, start, script)
        self._statistics(errors, match, request.product)
        self._report(request, errors, quiet=warned)
        self.messages += errors.messages

    def _unsetup_first(self, process: Process, request: Request, match: Match) -> None:
        """ups_setup.c: the unsetup of the product being set up, before its setup."""
        before = dict(self.shell.env)
        script = Script(self.shell, self.notices, self.tree.data)
        walk = Pass(process, "unsetup", script)
        top = self._unsetup_top(process, request, match)
        if top is None:
            process.errors.add(
                "NO_PRODUCT_FOUND", "ERROR", f"No instance found for product: '{request.product}'"
            )
        else:
            walk.walk(top)
            script.finish()
        if process.errors.failed or script.write_error:
            self.shell.env.clear()
            self.shell.env.update(before)
            process.errors.add(
                "UNSETUP_FAILED",
                "WARNING",
                f"Unsetup of {request.product} failed, continuing with setup",
            )

    def _unsetup_top(self, process: Process, request: Request, match: Match) -> Item | None:
        """upsact.c get_top_item for unsetup: what SETUP_<PRODUCT> names, else the instance
        being set up (its unsetup then applies to nothing)."""
        previous = process.env.get(f"SETUP_{request.product.upper()}")
        if not previous:
            alone = Request(
                request.product, hosts=request.hosts, databases=request.databases,
                just_this=request.just_this, exact=request.exact, via=request.via,
            )  # fmt: skip
            return Item(alone, match, action_lines(match, "unsetup"))
        named = parse_request(previous, False, request.via)
        named = replace(named, hosts=named.hosts or request.hosts, just_this=request.just_this)
        found = process.lookup.find(named, list(named.databases) or process.databases)
        if found is None:
            return None
        return Item(named, found, action_lines(found, "unsetup"), unsetup=True)

    def _judge(self, request: Request, errors: UpsErrors, start: int, script: Script) -> bool:
        """Refused, failed or done, as the recipe's `missing:` says; True when it went on
        where the real setup does not, with a warning."""
        troubles = [
            (place, message)
            for place, message in zip(errors.places[start:], errors.messages[start:], strict=True)
            if message.startswith("ERROR")
        ]
        if errors.failed and self.missing != "warn":
            raise _refusal(
                request,
                errors,
                f"{_cause(errors)}: the real setup is refused (ups's last error stands: nothing "
                "it reads after clears it; missing: warn would go on without it)",
            )
        warned = errors.failed
        if errors.failed:
            self.notices.warn(
                f"setup {request}: {_cause(errors)}: the real setup is refused; missing: warn "
                "goes on without what it could not find"
            )
            errors.clear()
        elif troubles and self.missing == "refuse":
            place, message = troubles[0]
            raise _refusal(
                request,
                errors,
                f"{place}: {message}: the real setup goes on without it (a file ups read after "
                "it cleared its last error); missing: refuse refuses it",
            )
        if script.write_error:
            for code, text in script.write_error:
                errors.add(code, "ERROR", text, script.write_error_where)
            raise _refusal(request, errors, f"{_cause(errors)}: the real setup is refused")
        script.finish()
        stop = script.stop
        if stop is None:
            return warned
        message = f"setup {request}: {stop.where}: {stop.output}"
        if stop.status == 1 and self.missing == "warn":
            self.notices.warn(f"{message}: the real setup stops here; so does this one")
            return True
        raise SetupFailed(
            f"{message} (the real setup stops there with status {stop.status}; "
            "the lines before it apply; missing: warn takes them)"
            if stop.status == 1
            else f"{message} (the real setup stops there with status 2)",
            dict(stop.env),
            stop.output,
            stop.status,
            request.via,
        )

    def _statistics(self, errors: UpsErrors, match: Match, product: str) -> None:
        """upsutl.c upsutl_statistics: with STATISTICS asked for and no statistics directory,
        the real ups warns (and goes on)."""
        wanted = match.config.get("STATISTICS", "")
        asked = wanted == "*" or product in wanted.split(":")
        instances = (match.chain, match.version, match.table)
        if asked or any(i is not None and i.get("STATISTICS") is not None for i in instances):
            directory = f"{match.db}/.upsfiles/statistics/"
            if not self.tree.is_dir(directory):
                errors.note("WARNING", f"File not found - {directory}")

    def _report(self, request: Request, errors: UpsErrors, quiet: bool) -> None:
        """What the real ups printed on a setup that goes on (`quiet`: its errors were
        warned about already)."""
        told = [_one_line(m) for m in errors.messages if not m.startswith("INFORMATIONAL")]
        for message in errors.messages:
            if message.startswith("INFORMATIONAL"):
                self.notices.tell(f"setup {request}: the real ups says {_one_line(message)}")
        if told and not quiet:
            self.notices.warn(
                f"setup {request}: the real setup goes on (exit status 0) after: {'; '.join(told)}"
            )


def _products(value: str) -> list[str]:
    """upsugo.c: PRODUCTS split at blanks and colons."""
    return [p for part in value.split() for p in part.split(":") if p]


def _no_instance(request: Request, lookup: Lookup) -> str:
    """ups_setup.c's message for a top product not found."""
    what = f"{request.version} version" if request.version else f"{request.chain_names()[0]} chain"
    first = request.qualifier_list(lookup.override)[0]
    return (
        f"Product '{request.product}' (with qualifiers '{first}'), has no {what} (or may not exist)"
    )


def _cause(errors: UpsErrors) -> str:
    where = f"{errors.where}: " if errors.where else ""
    return f"{where}{_one_line(errors.cause)}"


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _refusal(request: Request, errors: UpsErrors, reason: str) -> SourceError:
    """The real setup refused: `reason`, and what ups printed."""
    printed = "; ".join(
        _one_line(m) + (f" ({place})" if place and place != errors.where else "")
        for m, place in zip(errors.messages, errors.places, strict=True)
        if not m.startswith("INFO")
    )
    return SetupRefused(f"setup {request}: {reason} [ups: {printed}]", errors.messages, request.via)
