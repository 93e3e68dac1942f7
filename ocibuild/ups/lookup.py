"""Which files of the database answer a `setup` request: the declared instance (its `.version`
file, the version named or the one a `.chain` file gives), and the instance of its `.table`
file. UPS's matching rules live here: the host flavor's fallbacks tried in order
(Linux64bit+2.6-2.12, Linux64bit+2.6, Linux64bit, NULL, ANY), optional qualifiers
(`+e9:?py2`) tried with then without, the table instance of flavor ANY or the instance's own
with the same qualifiers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ocibuild.errors import SourceError
from ocibuild.ups.database import Database
from ocibuild.ups.declaration import Instance
from ocibuild.ups.names import colon_qualifiers, same_qualifiers
from ocibuild.ups.request import Request
from ocibuild.ups.table import TableInstance


@dataclass(frozen=True)
class Found:
    """The declared instance a request names."""

    instance: Instance
    qualifiers: str  # the choice of the request's qualifiers that matched it


@dataclass(frozen=True)
class TableMatch:
    instance: TableInstance | None  # None: the instance declares no table file
    path: str  # the table file, or without one the file that declared the instance


class NoTableInstance(SourceError):
    """The table has no instance for the declared one: to UPS, no match."""


@dataclass(frozen=True)
class Lookup:
    db: Database
    flavors: tuple[str, ...]  # the host flavor's fallbacks, most specific first
    warn: Callable[[str], None]

    def find(self, request: Request) -> Found | None:
        flavors = [request.flavor] if request.flavor else list(self.flavors)
        for quals in qualifier_choices(request.qualifiers):
            version = request.version or self.db.chained_version(
                request.product, request.chain, quals, flavors
            )
            if not version and request.chain == "current":
                version = self._only_version(request.product)
            if version:
                instance = self.db.find(request.product, version, quals, flavors)
                if instance is not None:
                    return Found(instance, quals)
        return None

    def _only_version(self, product: str) -> str:
        versions = self.db.product_versions(product)
        if len(versions) > 1:
            self.warn(
                f"{product}: no current chain and several versions ({', '.join(versions)}); "
                f"using {versions[-1]}"
            )
        return versions[-1] if versions else ""

    def not_found(self, request: Request) -> str:
        """Why `find` found nothing: what the database declares instead."""
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

    def table(self, request: Request, instance: Instance) -> TableMatch:
        table = self.db.table(instance)
        if table is None:
            return TableMatch(None, instance.source)
        for candidate in table.instances:
            if candidate.flavor in ("ANY", instance.flavor) and same_qualifiers(
                candidate.qualifiers, instance.qualifiers
            ):
                return TableMatch(candidate, table.path)
        raise NoTableInstance(
            f"{table.path}: no instance for flavor {instance.flavor} qualifiers "
            f"{instance.qualifiers or '(none)'} (setup {request}, from {request.via})"
        )


def qualifier_choices(qualifiers: str) -> list[str]:
    """`+e9:?py2:prof` -> ["e9:py2:prof", "e9:prof"]: with optional qualifiers, then without."""
    parts = [p for p in re.split(r"[:]", qualifiers.strip()) if p.strip("+?")]
    required = [p.lstrip("+") for p in parts if not p.startswith("?")]
    optional = [p[1:] for p in parts if p.startswith("?")]
    choices = [colon_qualifiers(":".join(required + optional))]
    if optional:
        choices.append(colon_qualifiers(":".join(required)))
    return choices


def compatible(asked: str, have: str) -> bool:
    """Whether an instance set up with qualifiers `have` answers a request for `asked`."""
    return not asked or any(same_qualifiers(q, have) for q in qualifier_choices(asked))
