"""What a `wheels` layer is asked to install, from its three forms of input:

- requirement strings (PEP 508), resolved against the index;
- a requirements file (`pip-compile --generate-hashes`, `uv export`, `uv pip compile`): lines
  with `--hash` options put the whole file in hash-checking mode (every package pinned with
  `==`, only files with a listed hash accepted, nothing unpinned installed), as pip does; the
  index options (`--index-url`, `--extra-index-url`, `--find-links`, `--no-index`, `--pre`) it
  may carry are read;
- a `pylock.toml` (PEP 751): the packages and their files are given, nothing is resolved.

Every error names the file and line, or the requirement, at fault.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ocibuild.errors import SourceError
from ocibuild.infile import read_regular_file
from ocibuild.python.index import Link
from ocibuild.python.metadata import reason
from ocibuild.python.resolve import Pin
from ocibuild.python.target import TargetPython

COMMENT = re.compile(r"(^|\s+)#.*$")


def parse_requirement(text: str, what: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as e:
        raise SourceError(f"{what}: {text!r} is not a requirement ({reason(e)})") from None


def applies(requirement: Requirement, target: TargetPython, what: str) -> bool:
    """Whether the requirement's marker holds for the image's Python."""
    if requirement.marker is None:
        return True
    try:
        return requirement.marker.evaluate({**target.marker_environment(), "extra": ""})
    except Exception as e:  # packaging raises several kinds for markers it cannot evaluate
        raise SourceError(
            f"{what}: the marker of {requirement} cannot be evaluated ({reason(e)})"
        ) from None


@dataclass(frozen=True)
class RequirementsFile:
    requirements: list[Requirement]
    pins: dict[str, Pin] | None  # hash-checking mode
    index_url: str | None = None
    extra_index_urls: list[str] = field(default_factory=list)
    find_links: list[str] = field(default_factory=list)
    no_index: bool = False
    prereleases: bool = False


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each line, continuations joined, comments removed."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined = COMMENT.sub("", pending + line).strip()
        pending = ""
        if joined:
            out.append((start, joined))
    if pending.strip():
        out.append((start, COMMENT.sub("", pending).strip()))
    return out


OPTIONS_WITH_VALUE = {
    "-i": "index_url",
    "--index-url": "index_url",
    "--extra-index-url": "extra_index_url",
    "-f": "find_links",
    "--find-links": "find_links",
}


def read_requirements_file(path: Path, target: TargetPython) -> RequirementsFile:
    try:
        text = read_regular_file(path).decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SourceError(f"{path}: cannot read the requirements file ({reason(e)})") from None
    requirements: list[tuple[Requirement, frozenset[str], str]] = []
    index_url: str | None = None
    extra: list[str] = []
    find_links: list[str] = []
    no_index = pre = False
    for number, line in _logical_lines(text):
        what = f"{path}:{number}"
        try:
            words = shlex.split(line)
        except ValueError as e:
            raise SourceError(f"{what}: {e}") from None
        if words[0].startswith("-") and not words[0].startswith("--hash"):
            option, _, value = words[0].partition("=")
            if option in OPTIONS_WITH_VALUE:
                value = value or (words[1] if len(words) > 1 else "")
                if not value:
                    raise SourceError(f"{what}: {option} needs a value")
                kind = OPTIONS_WITH_VALUE[option]
                if kind == "index_url":
                    index_url = value
                elif kind == "extra_index_url":
                    extra.append(value)
                else:
                    find_links.append(value if "://" in value else str(path.parent / value))
            elif option == "--no-index":
                no_index = True
            elif option == "--pre":
                pre = True
            else:
                raise SourceError(
                    f"{what}: option {option} is not supported in a wheels layer's requirements file"
                )
            continue
        spec_words = [w for w in words if not w.startswith("--")]
        hashes = set()
        for word in words:
            if word.startswith("--hash"):
                _, _, value = word.partition("=")
                algorithm, _, digest = value.partition(":")
                if algorithm == "sha256" and digest:
                    hashes.add(digest.lower())
            elif word.startswith("--"):
                raise SourceError(f"{what}: option {word} is not supported on a requirement line")
        requirement = parse_requirement(" ".join(spec_words), what)
        if applies(requirement, target, what):
            requirements.append((requirement, frozenset(hashes), what))
    pins = _pins(requirements) if any(h for _, h, _ in requirements) else None
    return RequirementsFile(
        [r for r, _, _ in requirements], pins, index_url, extra, find_links, no_index, pre
    )


def _pins(requirements: list[tuple[Requirement, frozenset[str], str]]) -> dict[str, Pin]:
    """Hash-checking mode: every line `name==version` with at least one sha256."""
    pins: dict[str, Pin] = {}
    for requirement, hashes, what in requirements:
        specs = list(requirement.specifier)
        if len(specs) != 1 or specs[0].operator not in ("==", "===") or "*" in specs[0].version:
            raise SourceError(
                f"{what}: {requirement} is not pinned with == (a file with hashes must pin "
                "every package)"
            )
        if not hashes:
            raise SourceError(
                f"{what}: {requirement} has no --hash=sha256:... (the file has hashes elsewhere)"
            )
        name = canonicalize_name(requirement.name)
        pin = Pin(Version(specs[0].version), hashes)
        if name in pins and pins[name] != pin:
            raise SourceError(f"{what}: {requirement.name} is pinned twice, differently")
        pins[name] = pin
    return pins


@dataclass(frozen=True)
class LockedWheel:
    """A package of a pylock.toml with the wheel chosen for the target."""

    name: str
    version: str
    link: Link


def read_pylock(path: Path, target: TargetPython) -> list[LockedWheel]:
    """The packages of a PEP 751 lock file that apply to the target, each with its best
    wheel for the target's tags."""
    try:
        data = tomllib.loads(read_regular_file(path).decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise SourceError(f"{path}: not a readable pylock.toml ({reason(e)})") from None
    version = str(data.get("lock-version", ""))
    if not version.startswith("1."):
        raise SourceError(f"{path}: unsupported lock-version {version!r} (1.x only)")
    environment = {
        **target.marker_environment(),
        "extras": frozenset[str](),
        "dependency_groups": frozenset[str](),
    }
    out = []
    packages = data.get("packages", [])
    if not isinstance(packages, list):
        raise SourceError(f"{path}: 'packages' is not a list")
    for n, package in enumerate(packages, 1):
        what = f"{path}: packages[{n}]"
        try:
            name, pkg_version = str(package["name"]), str(package.get("version", ""))
            if marker := package.get("marker"):
                try:
                    if not Marker(str(marker)).evaluate(environment, "lock_file"):  # type: ignore[arg-type]
                        continue
                except InvalidMarker as e:
                    raise SourceError(
                        f"{what} ({name}): marker {marker!r} does not parse ({reason(e)})"
                    ) from None
            out.append(LockedWheel(name, pkg_version, _best_wheel(package, path, target, what)))
        except (KeyError, TypeError, AttributeError, InvalidVersion) as e:
            raise SourceError(f"{what}: malformed package entry ({e!r})") from None
    return out


def _best_wheel(package: dict[str, object], path: Path, target: TargetPython, what: str) -> Link:
    from ocibuild.python.resolve import wheel_tags

    name = package["name"]
    wheels = package.get("wheels") or []
    if not isinstance(wheels, list):
        raise SourceError(f"{what} ({name}): 'wheels' is not a list")
    best: tuple[int, Link] | None = None
    for wheel in wheels:
        url = str(wheel.get("url") or "")
        local = wheel.get("path")
        if local:
            url = (path.parent / str(local)).resolve().as_uri()
        filename = str(wheel.get("name") or url.rsplit("/", 1)[-1])
        sha256 = str((wheel.get("hashes") or {}).get("sha256", "")).lower()
        if not url or not sha256:
            raise SourceError(f"{what} ({name}): wheel {filename} has no url/path or sha256 hash")
        ranks = [target.tag_rank[t] for t in wheel_tags(filename) if t in target.tag_rank]
        if ranks and (best is None or min(ranks) < best[0]):
            best = (min(ranks), Link(filename, url, sha256))
    if best is None:
        if package.get("sdist") and not wheels:
            raise SourceError(
                f"{what}: {name} {package.get('version', '')} has only a source distribution; "
                "ocibuild never builds an sdist"
            )
        shown = ", ".join(str(t) for t in target.tags[:6])
        raise SourceError(
            f"{what}: no wheel of {name} {package.get('version', '')} fits "
            f"{target.describe()} (tags looked for: {shown}, ...)"
        )
    return best[1]
