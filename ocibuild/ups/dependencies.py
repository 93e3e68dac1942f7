"""The products one `setup` command sets up, depth first (upsact.c).

`setupRequired/setupOptional(prod [version] [-q quals] [-f flavor] [-j] [-g chain|-c|-t..])`
set the dependency up in place. A product is set up once per `setup` command: a later request
for it is skipped, whatever version it asks. The instances asked for directly in the top
product's `setup` action take precedence over those asked deeper. Products set up inside a
condition that does not hold count as set up, without changing the environment.
`unsetupRequired/unsetupOptional` in an unsetup action unset up what SETUP_<PRODUCT> named when
the command began.

A required product or instance that is not declared makes the real `setup` print an error and
go on without it; here it is refused unless the recipe says `missing: warn`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from ocibuild.errors import SourceError
from ocibuild.ups.actions import MAX_DEPTH, ActionRunner
from ocibuild.ups.calls import Call
from ocibuild.ups.lookup import Found, Lookup, NoTableInstance, compatible
from ocibuild.ups.notices import Notices
from ocibuild.ups.request import Request, parse_request
from ocibuild.ups.scope import Scope, enter_scope
from ocibuild.ups.shellstate import ShellState
from ocibuild.ups.table import parse_call

Missing = Literal["refuse", "warn"]


class DependencyWalk:
    def __init__(
        self, lookup: Lookup, shell: ShellState, notices: Notices, missing: Missing
    ) -> None:
        self.lookup = lookup
        self.shell = shell
        self.notices = notices
        self.missing = missing
        self.actions = ActionRunner(shell, notices, self.dependency)
        self.active: dict[str, tuple[str, str]] = {}  # every product set up, all commands
        self.missing_warned: set[str] = set()  # products said missing, all commands
        self.done: dict[str, tuple[str, str]] = {}  # this command's: product -> (version, quals)
        self.top: dict[str, Found] = {}  # this command's top product's own requests

    def setup(self, request: Request, found: Found) -> None:
        self.done, self.top = {}, {}
        scope = enter_scope(self.lookup, request, found)
        self._collect_top(scope)
        self.enter(scope, 0, True)

    def unsetup(self, request: Request, found: Found) -> None:
        self.done, self.top = {}, {}
        self.enter(enter_scope(self.lookup, request, found, "unsetup"), 0, True)

    def _collect_top(self, scope: Scope) -> None:
        """The instances the top product asks for in its own setup action (not through
        exeAction): they are used wherever these products are asked for."""
        if scope.table is None or scope.request.just_this:
            return
        for command in scope.table.actions.get("setup", []):
            call = parse_call(scope.translate(command.text))
            if call is None or call[0] not in ("setuprequired", "setupoptional") or not call[1]:
                continue
            request = parse_request(call[1][0], call[0] == "setupoptional", "")
            found = self.lookup.find(request)
            if found is not None and request.product not in self.top:
                self.top[request.product] = found

    def enter(self, scope: Scope, depth: int, active: bool) -> None:
        if depth > MAX_DEPTH:
            raise SourceError(
                f"{scope.request.via}: {scope.action} of {scope.request}: dependencies nest "
                "too deep"
            )
        i = scope.instance
        self.done[i.product] = (i.version, i.qualifiers)
        if active and scope.action == "setup":
            self.active[i.product] = (i.version, i.qualifiers)
        self.actions.perform(scope, depth, active)

    def dependency(self, call: Call, scope: Scope, depth: int, active: bool) -> None:
        """A (un)setupRequired/Optional call of `scope`'s action."""
        if scope.request.just_this:
            return
        unsetup = call.name.startswith("unsetup")
        if unsetup and scope.action == "setup":
            self.notices.warn(f"{call.asked}: UPS cannot parse this in a setup action; skipped")
            return
        request = self._request(call, unsetup)
        if request.product in self.done:
            self._keep_done(request, call.where)
            return
        found = self.top.get(request.product) or self.lookup.find(request)
        if found is None:
            if not unsetup:
                self._missing(request, call.asked)
            elif not request.optional:
                self.notices.warn(f"{call.asked}: {self.lookup.not_found(request)}")
            return
        try:
            inner = enter_scope(self.lookup, request, found, "unsetup" if unsetup else "setup")
        except NoTableInstance as e:
            if not unsetup:
                self._missing(request, call.asked, str(e))
            return
        self.enter(inner, depth + 1, active)

    def _request(self, call: Call, unsetup: bool) -> Request:
        """What the call asks for; for unsetup, the instance its SETUP_<PRODUCT> named."""
        optional = call.name.endswith("optional")
        request = parse_request(call.args[0], optional, call.where)
        previous = self.shell.initial.get(f"SETUP_{request.product.upper()}") if unsetup else ""
        if previous:
            return replace(parse_request(previous, optional, call.where), via=call.where)
        return request

    def _keep_done(self, request: Request, where: str) -> None:
        version, quals = self.done[request.product]
        wanted = request.version or version
        if wanted != version or not compatible(request.qualifiers, quals):
            self.notices.warn(
                f"{where}: {request} asked, but {request.product} {version}"
                f"{' -q ' + quals if quals else ''} is already set up; keeping it"
            )

    def _missing(self, request: Request, asked: str, reason: str = "") -> None:
        if request.optional:
            self.notices.tell(f"{asked}: optional {request} not found")
            return
        reason = reason or self.lookup.not_found(request)
        if self.missing == "refuse":
            raise SourceError(
                f"{asked}: {request}: {reason} (the real setup goes on without it; "
                "`missing: warn` in the recipe's setup: does the same)"
            )
        if request.product not in self.missing_warned:
            self.missing_warned.add(request.product)
            self.notices.warn(f"{asked}: {request}: {reason}; going on without it, as UPS does")
