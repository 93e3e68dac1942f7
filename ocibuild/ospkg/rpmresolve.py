"""Pick the rpm packages a request needs, the way dnf would in the common cases.

Requests are names (`gcc`), names with an architecture (`libgcc.i686`), capabilities
(`perl(Carp)`, `foo >= 2`) or file paths (`/usr/bin/xmlto`). Requirements are matched against
Provides and the file lists of primary.xml; `rpmlib(...)` requirements are rpm's own and
ignored. Among candidates the newest EVR wins; x86_64 and noarch are preferred over the
32-bit multilib architectures unless asked for (`.i686`), and a 32-bit package's requirements
prefer 32-bit providers. Packages the base image already has satisfy requirements and are not
installed again.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from ocibuild.errors import SourceError
from ocibuild.ospkg.repomd import Capability, RpmPackage
from ocibuild.ospkg.rpmver import EQUAL, EVR, GREATER, LESS, ranges_overlap

MULTILIB = {"x86_64": ("i686", "i586", "i486", "i386", "athlon")}
_REQUEST = re.compile(r"^(\S+)\s*(<=|>=|=|<|>)\s*(\S+)$")
_SENSE = {"<": LESS, ">": GREATER, "=": EQUAL, "<=": LESS | EQUAL, ">=": GREATER | EQUAL}


@dataclass(frozen=True)
class InstalledRpm:
    """A package the base image already has: from its ocibuild package record, or from its rpm
    database with the package's own Provides and files. Those follow from the NEVRA, so they
    stay out of the repr, which keys the lock's record of a resolution."""

    name: str
    evr: str
    arch: str
    provides: tuple[Capability, ...] = field(default=(), repr=False, compare=False)
    files: frozenset[str] = field(default=frozenset(), repr=False, compare=False)


class RpmResolver:
    def __init__(
        self,
        packages: Iterable[RpmPackage],
        arch: str = "x86_64",
        exclude: Iterable[str] = (),
        installed: Iterable[InstalledRpm] = (),
    ) -> None:
        self.arch = arch
        self.primary_arches = (arch, "noarch")
        self.multilib = MULTILIB.get(arch, ())
        patterns = list(exclude)
        allowed = {*self.primary_arches, *self.multilib}
        self.pool = [
            p
            for p in packages
            if p.arch in allowed and not any(fnmatch.fnmatchcase(p.name, x) for x in patterns)
        ]
        self.excluded = patterns
        self.by_name: dict[str, list[RpmPackage]] = {}
        self.provides: dict[str, list[tuple[RpmPackage, Capability]]] = {}
        self.file_owners: dict[str, list[RpmPackage]] = {}
        for p in self.pool:
            self.by_name.setdefault(p.name, []).append(p)
            for cap in p.provides:
                self.provides.setdefault(cap.name, []).append((p, cap))
            for path in p.files:
                self.file_owners.setdefault(path, []).append(p)
        self.installed = {(i.name, i.arch): i for i in installed}
        self.installed_provides: dict[str, list[Capability]] = {}
        self.installed_files: set[str] = set()
        for i in self.installed.values():
            for cap in i.provides:
                self.installed_provides.setdefault(cap.name, []).append(cap)
            self.installed_files.update(i.files)

    # -- requests -------------------------------------------------------------------------------

    def resolve(self, requests: Iterable[str]) -> list[RpmPackage]:
        """The packages to install for `requests`, sorted by name and architecture."""
        self._selected: dict[tuple[str, str], RpmPackage] = {}
        self._chosen: set[int] = set()
        self._parents: dict[int, tuple[RpmPackage, Capability] | None] = {}
        queue: deque[RpmPackage] = deque()
        # Like dnf: requests naming an architecture first; a plain name is then satisfied by
        # a package of that name of any architecture (ask for `foo.x86_64 foo.i686` for both).
        for request in sorted(requests, key=lambda r: not self._names_arch(r)):
            package = self._request(request)
            if package is not None:  # None: the base image already has it
                self._add(package, None, queue)
        while queue:
            package = queue.popleft()
            for requirement in package.requires:
                if requirement.name.startswith("rpmlib(") or self._satisfied(requirement):
                    continue
                provider = self._best_provider(requirement, package)
                if provider is None:
                    raise SourceError(f"{self._chain(package)}: nothing provides {requirement}")
                self._add(provider, (package, requirement), queue)
        return sorted(self._selected.values(), key=lambda p: (p.name, p.arch))

    def _add(
        self,
        package: RpmPackage,
        parent: tuple[RpmPackage, Capability] | None,
        queue: deque[RpmPackage],
    ) -> None:
        key = (package.name, package.arch)
        other = self._selected.get(key)
        if other is package:
            return
        if other is not None:
            why = f" (for {self._chain(parent[0])} requiring {parent[1]})" if parent else ""
            raise SourceError(
                f"cannot install both {other.nevra} and {package.nevra}{why}: "
                "the requirements ask for two versions of one package"
            )
        self._selected[key] = package
        self._chosen.add(id(package))
        self._parents[id(package)] = parent
        queue.append(package)

    def _chain(self, package: RpmPackage) -> str:
        names = [package.nevra]
        parent = self._parents.get(id(package))
        while parent is not None and parent[0].nevra not in names:
            names.append(parent[0].nevra)
            parent = self._parents.get(id(parent[0]))
        return " -> ".join(reversed(names))

    def _request(self, request: str) -> RpmPackage | None:
        match = _REQUEST.match(request)
        if match:
            cap = Capability(match[1], _SENSE[match[2]], EVR.parse(match[3]))
            return self._pick_for_request(cap, request)
        name, arch = request, ""
        if self._names_arch(request):
            name, _, arch = request.rpartition(".")
        if any((name, a) in self.installed for a in (arch or self.arch, "noarch")):
            return None
        if not arch and any(name == n for n, _ in self._selected):
            return None
        candidates = [p for p in self.by_name.get(name, []) if not arch or p.arch == arch]
        if candidates:
            return self._best(candidates, self.primary_arches)
        if not arch:
            return self._pick_for_request(Capability(name), request)
        raise SourceError(self._unknown(request))

    def _names_arch(self, request: str) -> bool:
        base, dot, suffix = request.rpartition(".")
        return bool(dot and base) and suffix in (*self.multilib, *self.primary_arches)

    def _pick_for_request(self, cap: Capability, request: str) -> RpmPackage | None:
        if self._installed_provides(cap):
            return None
        provider = self._best_provider(cap, None)
        if provider is None:
            raise SourceError(self._unknown(request))
        return provider

    def _unknown(self, request: str) -> str:
        name = request.split(maxsplit=1)[0]
        text = f"no package provides {request!r} in the repositories"
        if any(fnmatch.fnmatchcase(name, x) for x in self.excluded):
            return text + " (it is excluded)"
        hint = difflib.get_close_matches(name, list(self.by_name), n=1, cutoff=0.7)
        return text + (f" (did you mean {hint[0]!r}?)" if hint else "")

    # -- requirements ---------------------------------------------------------------------------

    def _satisfied(self, cap: Capability) -> bool:
        if cap.name.startswith("/"):
            if any(id(p) in self._chosen for p in self.file_owners.get(cap.name, [])):
                return True
        elif any(
            id(p) in self._chosen and ranges_overlap(c.flags, c.evr, cap.flags, cap.evr)
            for p, c in self.provides.get(cap.name, [])
        ):
            return True
        return self._installed_provides(cap)

    def _installed_provides(self, cap: Capability) -> bool:
        """Whether the base image provides `cap`: a package of its name and EVR, a Provides or
        file of its rpm database, or a package the repositories say provides it (the same name
        and architecture as one installed)."""
        if not self.installed:
            return False
        for installed in self.installed.values():
            if installed.name == cap.name and ranges_overlap(
                EQUAL, EVR.parse(installed.evr), cap.flags, cap.evr
            ):
                return True
        if cap.name.startswith("/"):
            owners = self.file_owners.get(cap.name, [])
            return cap.name in self.installed_files or any(
                (p.name, p.arch) in self.installed for p in owners
            )
        if any(
            ranges_overlap(c.flags, c.evr, cap.flags, cap.evr)
            for c in self.installed_provides.get(cap.name, [])
        ):
            return True
        return any(
            (p.name, p.arch) in self.installed
            and ranges_overlap(c.flags, c.evr, cap.flags, cap.evr)
            for p, c in self.provides.get(cap.name, [])
        )

    def _best_provider(self, cap: Capability, requirer: RpmPackage | None) -> RpmPackage | None:
        if cap.name.startswith("/"):
            candidates = list(self.file_owners.get(cap.name, []))
        else:
            candidates = [
                p
                for p, c in self.provides.get(cap.name, [])
                if ranges_overlap(c.flags, c.evr, cap.flags, cap.evr)
            ]
        if not candidates:
            return None
        wants_32bit = requirer is not None and requirer.arch in self.multilib
        preferred = (*self.multilib, "noarch") if wants_32bit else self.primary_arches
        pool = [p for p in candidates if p.name == cap.name] or candidates
        first_name = min(p.name for p in pool)  # several names provide it: a stable choice
        return self._best([p for p in pool if p.name == first_name], preferred)

    @staticmethod
    def _best(candidates: list[RpmPackage], preferred: tuple[str, ...]) -> RpmPackage:
        """The newest of the candidates of the preferred architectures (of any, if none is)."""
        favoured = [p for p in candidates if p.arch in preferred] or candidates
        best = favoured[0]
        for p in favoured[1:]:
            rc = p.evr.compare(best.evr)
            if rc > 0 or (
                rc == 0 and _arch_rank(p.arch, preferred) < _arch_rank(best.arch, preferred)
            ):
                best = p
        return best


def _arch_rank(arch: str, preferred: tuple[str, ...]) -> int:
    return preferred.index(arch) if arch in preferred else len(preferred)
