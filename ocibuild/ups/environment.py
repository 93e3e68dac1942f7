"""What UPS's `setup` does to the environment, computed without a shell.

`source <root>/setup` puts the database on PRODUCTS and runs `setup ups`; then
`setup <product> <version> -q <quals>` (request.py) unsets up the instance SETUP_<PRODUCT>
names, if any, then sets the product up. The parts, from the database lookup to the edits of
the environment, are listed in ocibuild/ups/__init__.py.

What cannot be frozen into an image's Env (aliases, sourced scripts, executed commands,
conditions only a shell in the image could answer) is collected as `NotFrozen`, naming the
table file and line.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocibuild.errors import SourceError
from ocibuild.progress import Reporter
from ocibuild.ups.calls import SetupStopped
from ocibuild.ups.database import Database, flavor_fallbacks
from ocibuild.ups.dependencies import DependencyWalk, Missing
from ocibuild.ups.lookup import Lookup
from ocibuild.ups.notices import NotFrozen, Notices
from ocibuild.ups.request import Request, parse_request
from ocibuild.ups.shell import KNOWN_COMMANDS
from ocibuild.ups.shellstate import ShellState

__all__ = ["Frozen", "NotFrozen", "Request", "UpsEnvironment"]


@dataclass(frozen=True)
class Frozen:
    """The environment after setup, and the table lines it could not hold."""

    env: dict[str, str]
    not_frozen: tuple[NotFrozen, ...]
    products: int  # how many products were set up


class UpsEnvironment:
    """The shell the setup commands run in, one after the other."""

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
        self.notices = Notices(report, warned if warned is not None else set())
        commands = {**KNOWN_COMMANDS, "ups flavor": flavor, "ups flavor -4": flavor}
        self.shell = ShellState(dict(env), commands, db.exists, dict(env))
        self.lookup = Lookup(db, tuple(flavor_fallbacks(flavor)), self.notices.warn)
        self.walk = DependencyWalk(self.lookup, self.shell, self.notices, missing)
        self.stopped = ""  # why the setup script returned early: no command runs after it

    @property
    def env(self) -> dict[str, str]:
        return self.shell.env

    @property
    def active(self) -> dict[str, tuple[str, str]]:
        """Every product set up (product -> version, qualifiers), by all commands."""
        return self.walk.active

    @property
    def not_frozen(self) -> list[NotFrozen]:
        return self.notices.not_frozen

    def source_setup(self) -> None:
        """What `source <root>/setup` does: PRODUCTS, then `setup ups`."""
        env = self.shell.env
        parts = [p for p in env.get("PRODUCTS", "").split(":") if p and p != self.db.path]
        env["PRODUCTS"] = ":".join([self.db.path, *parts])
        env["UPS_SHELL"] = "sh"
        if "ups" in self.db.products():
            self.setup(Request("ups", optional=True, via=f"{self.db.path}/setup"))

    def setup(self, request: Request) -> None:
        """One `setup` command (ups_setup.c): when SETUP_<PRODUCT> is set, the instance it
        names is unset up first; then the product is set up."""
        if self.stopped:
            return
        found = self.lookup.find(request)
        if found is None:
            if request.optional:
                self.notices.tell(f"{request.via}: optional {request} not found")
                return
            raise SourceError(f"setup {request}: {self.lookup.not_found(request)}", request.via)
        self.shell.begin_command()
        try:
            previous = self.shell.env.get(f"SETUP_{request.product.upper()}")
            if previous:
                old = parse_request(previous, True, request.via)
                old_found = self.lookup.find(old)
                if old_found is not None:
                    self.walk.unsetup(old, old_found)
            self.walk.setup(request, found)
        except SetupStopped as stopped:
            self.stopped = str(stopped)
