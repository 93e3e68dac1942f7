"""Pick the Debian packages a request needs, the way apt would in the common cases.

Depends and Pre-Depends are followed (not Recommends); of a group of alternatives the first
that can be satisfied is taken, as apt does; a real package of the name comes before virtual
providers, and of several providers the one of highest Priority (then name) is chosen. The
newest version wins among candidates of the same name, over all repositories. Packages the
base image has installed (its dpkg status) satisfy dependencies and are not installed again.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from ocibuild.errors import SourceError
from ocibuild.ospkg.debindex import DebPackage
from ocibuild.ospkg.debver import Relation, compare_versions

PRIORITY_RANK = {"required": 0, "important": 1, "standard": 2, "optional": 3, "extra": 4}


@dataclass(frozen=True)
class InstalledDeb:
    """A package of the base image's dpkg status."""

    name: str
    version: str
    arch: str
    provides: tuple[Relation, ...] = field(default=())


def _provides(provided: Relation, relation: Relation) -> bool:
    if provided.name != relation.name:
        return False
    if not relation.op:
        return True
    return provided.op == "=" and relation.allows(provided.version)


class DebResolver:
    def __init__(
        self,
        packages: Iterable[DebPackage],
        arch: str = "amd64",
        exclude: Iterable[str] = (),
        installed: Iterable[InstalledDeb] = (),
    ) -> None:
        self.excluded = list(exclude)
        self.by_name: dict[str, list[DebPackage]] = {}
        self.providers: dict[str, list[DebPackage]] = {}
        for p in packages:
            if p.arch not in (arch, "all"):
                continue
            if any(fnmatch.fnmatchcase(p.name, x) for x in self.excluded):
                continue
            self.by_name.setdefault(p.name, []).append(p)
            if p.provides_field:
                for provided in p.provides:
                    self.providers.setdefault(provided.name, []).append(p)
        self.installed = {i.name: i for i in installed}

    def resolve(self, requests: Iterable[str]) -> list[DebPackage]:
        """The packages to install for `requests`, sorted by name."""
        self._selected: dict[str, DebPackage] = {}
        self._parents: dict[str, tuple[DebPackage, str] | None] = {}
        queue: deque[DebPackage] = deque()
        for request in requests:
            name, _, version = request.partition("=")
            relation = Relation(name.strip(), "=" if version else "", version.strip())
            if self._installed_satisfies(relation):
                continue
            package = self._candidate(relation)
            if package is None:
                raise SourceError(self._unknown(request))
            self._add(package, None, queue)
        while queue:
            package = queue.popleft()
            for group in package.depends:
                if any(self._satisfied(r) for r in group):
                    continue
                choice = next(filter(None, (self._candidate(r) for r in group)), None)
                text = " | ".join(map(str, group))
                if choice is None:
                    raise SourceError(f"{self._chain(package)}: nothing provides {text}")
                self._add(choice, (package, text), queue)
        return sorted(self._selected.values(), key=lambda p: p.name)

    def _add(
        self, package: DebPackage, parent: tuple[DebPackage, str] | None, queue: deque[DebPackage]
    ) -> None:
        other = self._selected.get(package.name)
        if other is package:
            return
        if other is not None:
            why = f" (for {self._chain(parent[0])} depending on {parent[1]})" if parent else ""
            raise SourceError(
                f"cannot install both {other.label} and {package.label}{why}: "
                "the dependencies ask for two versions of one package"
            )
        self._selected[package.name] = package
        self._parents[package.name] = parent
        queue.append(package)

    def _chain(self, package: DebPackage) -> str:
        names = [package.name]
        parent = self._parents.get(package.name)
        while parent is not None and parent[0].name not in names:
            names.append(parent[0].name)
            parent = self._parents.get(parent[0].name)
        return " -> ".join(reversed(names))

    def _satisfied(self, relation: Relation) -> bool:
        chosen = self._selected.get(relation.name)
        if chosen is not None and relation.allows(chosen.version):
            return True
        if any(
            p.name in self._selected
            and self._selected[p.name] is p
            and any(_provides(x, relation) for x in p.provides)
            for p in self.providers.get(relation.name, [])
        ):
            return True
        return self._installed_satisfies(relation)

    def _installed_satisfies(self, relation: Relation) -> bool:
        installed = self.installed.get(relation.name)
        if installed is not None and relation.allows(installed.version):
            return True
        return any(_provides(x, relation) for i in self.installed.values() for x in i.provides)

    def _candidate(self, relation: Relation) -> DebPackage | None:
        real = [p for p in self.by_name.get(relation.name, []) if relation.allows(p.version)]
        if real:
            return _newest(real)
        providers = [
            p
            for p in self.providers.get(relation.name, [])
            if any(_provides(x, relation) for x in p.provides)
        ]
        if not providers:
            return None
        chosen = [p for p in providers if self._selected.get(p.name) is p]
        if chosen:
            return chosen[0]
        best = min(providers, key=lambda p: (PRIORITY_RANK.get(p.priority, 5), p.name))
        return _newest([p for p in providers if p.name == best.name])

    def _unknown(self, request: str) -> str:
        name = request.partition("=")[0].strip()
        text = f"no package {request!r} in the repositories"
        if any(fnmatch.fnmatchcase(name, x) for x in self.excluded):
            return text + " (it is excluded)"
        if name in self.by_name:
            versions = ", ".join(sorted({p.version for p in self.by_name[name]}))
            return text + f" (versions there: {versions})"
        hint = difflib.get_close_matches(name, list(self.by_name), n=1, cutoff=0.7)
        return text + (f" (did you mean {hint[0]!r}?)" if hint else "")


def _newest(candidates: list[DebPackage]) -> DebPackage:
    best = candidates[0]
    for p in candidates[1:]:
        if compare_versions(p.version, best.version) > 0:
            best = p
    return best
