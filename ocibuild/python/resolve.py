"""Requirements -> the exact set of wheels to install, for the image's Python.

`resolvelib` does the search (with backtracking) over candidates this provider offers:
for each project, the versions that have a wheel fitting the target's tags, allowed by the
requirements' specifiers (`packaging`), best version first, each with its best-fitting wheel.
Dependencies come from each candidate's METADATA (served apart by the index, PEP 658, or read
from the downloaded wheel), markers evaluated for the target. An sdist is never built: a
project with no fitting wheel is an error that says so, naming the versions and tags.

In pinned mode (a requirements file with hashes) every project must be pinned there, and only
the pinned version's files with a listed hash are candidates.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version
from resolvelib import AbstractProvider, BaseReporter, ResolutionImpossible, Resolver
from resolvelib.resolvers import RequirementInformation, ResolutionTooDeep

from ocibuild.errors import SourceError
from ocibuild.python.index import Index, Link
from ocibuild.python.metadata import CoreMetadata, reason
from ocibuild.python.target import TargetPython

MAX_ROUNDS = 20000
SHOWN_TAGS = 6


@dataclass(frozen=True)
class Pin:
    """A requirements file's line in hash-checking mode: one version, the allowed hashes."""

    version: Version
    hashes: frozenset[str]


@dataclass(frozen=True)
class Req:
    """A requirement as the resolver sees it: project, extras, versions allowed, and who
    asked (for messages)."""

    name: NormalizedName
    extras: frozenset[str]
    specifier: SpecifierSet
    text: str
    parent: str = "the recipe"

    @property
    def identifier(self) -> str:
        return _identifier(self.name, self.extras)


@dataclass(frozen=True)
class Candidate:
    name: NormalizedName
    version: Version
    extras: frozenset[str]
    link: Link | None  # None: installed by a lower layer
    metadata: CoreMetadata | None = field(default=None, compare=False)

    @property
    def identifier(self) -> str:
        return _identifier(self.name, self.extras)

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


@dataclass(frozen=True)
class Chosen:
    """A wheel the resolution installs."""

    name: str  # as its METADATA spells it
    version: str
    link: Link
    requested: bool  # named by the recipe (pip's REQUESTED)
    licenses: tuple[str, ...]


def _identifier(name: str, extras: frozenset[str]) -> str:
    return f"{name}[{','.join(sorted(extras))}]" if extras else name


def to_req(requirement: Requirement, parent: str = "the recipe") -> Req:
    return Req(
        canonicalize_name(requirement.name),
        frozenset(canonicalize_name(e) for e in requirement.extras),
        requirement.specifier,
        str(requirement),
        parent,
    )


def wheel_tags(filename: str) -> frozenset[Tag]:
    try:
        return parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        return frozenset()


def wheel_version(filename: str) -> Version | None:
    try:
        return parse_wheel_filename(filename)[1]
    except (InvalidWheelFilename, InvalidVersion):
        return None


class _Provider(AbstractProvider[Req, Candidate, str]):
    def __init__(
        self,
        index: Index,
        target: TargetPython,
        metadata: Callable[[Link], CoreMetadata],
        pins: Mapping[str, Pin] | None,
        installed: Mapping[str, CoreMetadata],
        prereleases: bool,
    ) -> None:
        self.index = index
        self.target = target
        self.load_metadata = metadata
        self.pins = pins
        self.installed = installed
        self.prereleases = prereleases
        self.environment = target.marker_environment()
        self._best: dict[str, dict[Version, Link]] = {}
        self._metadata: dict[tuple[str, Version], CoreMetadata] = {}

    def identify(self, requirement_or_candidate: Req | Candidate) -> str:
        return requirement_or_candidate.identifier

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, Candidate],
        candidates: Mapping[str, Iterator[Candidate]],
        information: Mapping[str, Iterator[RequirementInformation[Req, Candidate]]],
        backtrack_causes: Sequence[RequirementInformation[Req, Candidate]],
    ) -> tuple[bool, bool, bool, str]:
        infos = list(information[identifier])
        pinned = any(
            s.operator in ("==", "===") and "*" not in s.version
            for info in infos
            for s in info.requirement.specifier
        )
        causes = {c.requirement.name for c in backtrack_causes}
        direct = any(info.parent is None for info in infos)
        return (
            not pinned,
            identifier.split("[", maxsplit=1)[0] not in causes,
            not direct,
            identifier,
        )

    def wheels(self, name: NormalizedName) -> dict[Version, Link]:
        """Each version of `name` that has a wheel for the target, with its best wheel."""
        if name in self._best:
            return self._best[name]
        best: dict[Version, tuple[int, Link]] = {}
        full = Version(".".join(map(str, self.target.version)))
        pin = self.pins.get(name) if self.pins is not None else None
        if self.pins is not None and pin is None:
            self._best[name] = {}  # hash-checking mode: only what the file pins
            return self._best[name]
        for link in self.index.project(name):
            if not link.is_wheel:
                continue
            version = wheel_version(link.filename)
            if version is None or canonicalize_name(link.filename.split("-")[0]) != name:
                continue
            ranks = [
                self.target.tag_rank[t]
                for t in wheel_tags(link.filename)
                if t in self.target.tag_rank
            ]
            if not ranks or not _python_allows(link.requires_python, full):
                continue
            if pin is not None and (version != pin.version or link.sha256 not in pin.hashes):
                continue
            rank = min(ranks)
            if version not in best or rank < best[version][0]:
                best[version] = (rank, link)
        self._best[name] = {v: link for v, (_, link) in best.items()}
        return self._best[name]

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[Req]],
        incompatibilities: Mapping[str, Iterator[Candidate]],
    ) -> list[Candidate]:
        reqs = list(requirements[identifier])
        name = reqs[0].name
        extras = frozenset().union(*(r.extras for r in reqs))
        bad = {c.version for c in incompatibilities[identifier]}
        if name in self.installed:
            meta = self.installed[name]
            version = Version(meta.version)
            if version in bad or not all(r.specifier.contains(version, True) for r in reqs):
                return []
            return [Candidate(name, version, extras, None, meta)]
        wheels = self.wheels(name)
        versions = [v for v in wheels if v not in bad]
        exact = all(s.operator in ("==", "===") for r in reqs for s in r.specifier) and any(
            len(r.specifier) for r in reqs
        )
        versions = [v for v in versions if exact or not wheels[v].yanked]
        for r in reqs:
            versions = list(r.specifier.filter(versions, True if self.prereleases else None))
        return [Candidate(name, v, extras, wheels[v]) for v in sorted(versions, reverse=True)]

    def is_satisfied_by(self, requirement: Req, candidate: Candidate) -> bool:
        return requirement.specifier.contains(candidate.version, prereleases=True)

    def metadata_of(self, candidate: Candidate) -> CoreMetadata:
        if candidate.metadata is not None:
            return candidate.metadata
        key = (candidate.name, candidate.version)
        if key not in self._metadata:
            assert candidate.link is not None
            meta = self.load_metadata(candidate.link)
            if (
                canonicalize_name(meta.name) != candidate.name
                or _version(meta.version) != candidate.version
            ):
                raise SourceError(
                    f"{candidate.link.filename}: its METADATA names {meta.name} {meta.version}"
                )
            full = Version(".".join(map(str, self.target.version)))
            if not meta.requires_python.contains(full, prereleases=True):
                raise SourceError(
                    f"{candidate.link.filename} requires Python {meta.requires_python}, "
                    f"the image has {full}"
                )
            self._metadata[key] = meta
        return self._metadata[key]

    def get_dependencies(self, candidate: Candidate) -> list[Req]:
        meta = self.metadata_of(candidate)
        parent = str(candidate)
        out = []
        if candidate.extras:  # the project itself, at the same version
            out.append(
                Req(candidate.name, frozenset(), SpecifierSet(f"=={candidate.version}"), "", parent)
            )
        for requirement in meta.requires:
            if requirement.marker is not None and not _marker_holds(
                requirement.marker, self.environment, candidate.extras, parent, requirement
            ):
                continue
            out.append(to_req(requirement, parent))
        self.index.prefetch(r.name for r in out)
        return out


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _python_allows(requires_python: str, version: Version) -> bool:
    if not requires_python:
        return True
    try:
        return SpecifierSet(requires_python).contains(version, prereleases=True)
    except InvalidSpecifier:
        return True  # pip ignores a Requires-Python it cannot parse


def _marker_holds(
    marker: Marker,
    environment: dict[str, str],
    extras: frozenset[str],
    parent: str,
    requirement: Requirement,
) -> bool:
    try:
        return any(
            marker.evaluate({**environment, "extra": extra}) for extra in ("", *sorted(extras))
        )
    except Exception as e:  # packaging raises several kinds for markers it cannot evaluate
        raise SourceError(
            f"{parent}: the marker of {requirement} cannot be evaluated ({reason(e)})"
        ) from None


def resolve(
    requirements: Sequence[Requirement],
    index: Index,
    target: TargetPython,
    metadata: Callable[[Link], CoreMetadata],
    *,
    pins: Mapping[str, Pin] | None = None,
    installed: Mapping[str, CoreMetadata] | None = None,
    prereleases: bool = False,
) -> list[Chosen]:
    """The wheels that install `requirements` (markers already evaluated) for `target`, by
    name; those a lower layer installed (`installed`, by canonical name) are not repeated."""
    provider = _Provider(index, target, metadata, pins, installed or {}, prereleases)
    reqs = [to_req(r) for r in requirements]
    if pins is not None:
        missing = [r.text for r in reqs if r.name not in pins]
        if missing:
            raise SourceError(f"not pinned with hashes: {', '.join(missing)}")
    index.prefetch(r.name for r in reqs)
    try:
        result = Resolver(provider, BaseReporter()).resolve(reqs, max_rounds=MAX_ROUNDS)
    except ResolutionImpossible as e:
        raise SourceError(_explain(e.causes, provider)) from None
    except ResolutionTooDeep:
        raise SourceError(
            f"no resolution found in {MAX_ROUNDS} rounds: pin some versions to help"
        ) from None
    finally:
        index.close()
    requested = {r.name for r in reqs}
    chosen = []
    for candidate in sorted(result.mapping.values(), key=operator.attrgetter("name")):
        if candidate.extras or candidate.link is None:
            continue
        meta = provider.metadata_of(candidate)
        chosen.append(
            Chosen(
                meta.name,
                str(candidate.version),
                candidate.link,
                candidate.name in requested,
                meta.licenses,
            )
        )
    return chosen


def _explain(causes: Iterable[RequirementInformation[Req, Candidate]], provider: _Provider) -> str:
    """Why no candidate was found: no such project, only sdists, no wheel for the tags, a
    pin missing from a requirements file, or requirements that conflict."""
    by_name: dict[str, list[RequirementInformation[Req, Candidate]]] = {}
    for cause in causes:
        by_name.setdefault(cause.requirement.name, []).append(cause)
    reasons = []
    for name, infos in sorted(by_name.items()):
        asked = ", ".join(
            sorted(
                {
                    f"{i.requirement.text or name} (from {i.parent or i.requirement.parent})"
                    for i in infos
                }
            )
        )
        reasons.append(_why_nothing(NormalizedName(name), asked, provider))
    return "; ".join(reasons)


def _why_nothing(name: NormalizedName, asked: str, provider: _Provider) -> str:
    if name in provider.installed:
        return (
            f"{name} {provider.installed[name].version} is installed by a lower layer and does not "
            f"satisfy {asked} (a layer does not replace what is below it)"
        )
    if provider.pins is not None and name not in provider.pins:
        return f"{name} is needed ({asked}) but the requirements file does not pin it with hashes"
    links = provider.index.project(name)
    if not links:
        return f"no project {name} on {provider.index.config.describe()} (needed: {asked})"
    wheels = provider.wheels(name)
    if wheels:
        shown = ", ".join(str(v) for v in sorted(wheels, reverse=True)[:8])
        what = "conflicting requirements" if "), " in asked else "no version satisfies"
        return (
            f"{what} for {name}: {asked}; versions with a wheel for "
            f"{provider.target.describe()}: {shown}"
        )
    sdists = [link.filename for link in links if not link.is_wheel]
    all_wheels = [link.filename for link in links if link.is_wheel]
    if not all_wheels and sdists:
        return (
            f"{name} has only source distributions ({', '.join(sdists[-3:])}); "
            f"ocibuild never builds an sdist: give a wheel (find_links) or drop {asked}"
        )
    found = sorted({v for f in all_wheels if (v := wheel_version(f)) is not None}, reverse=True)
    tags = [str(t) for t in provider.target.tags[:SHOWN_TAGS]]
    more = len(provider.target.tags) - SHOWN_TAGS
    if provider.pins is not None and name in provider.pins:
        pin = provider.pins[name]
        return (
            f"no wheel of {name} {pin.version} for {provider.target.describe()} with a hash "
            f"the requirements file lists ({asked})"
        )
    return (
        f"no wheel of {name} (versions {', '.join(map(str, found[:8])) or 'none'}) fits "
        f"{provider.target.describe()}: tags looked for {', '.join(tags)} and {more} more; "
        f"its wheels are for {', '.join(sorted({str(t) for f in all_wheels[-4:] for t in wheel_tags(f)})[:6])}; "
        f"an sdist is never built (needed: {asked})"
    )
