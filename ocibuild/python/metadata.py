"""A distribution's core metadata (METADATA), as far as installing reads it: its name and
version, what it requires (for which extras, under which markers), the Python it requires,
and its license for the SBOM. Parsed by `packaging.metadata`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from packaging.metadata import parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from ocibuild.errors import SourceError

LICENSE_CLASSIFIER = "License :: "


def reason(error: Exception) -> str:
    """packaging's message of a parse error, on one line (it draws a caret on the next)."""
    return str(error).splitlines()[0] if str(error) else type(error).__name__


@dataclass(frozen=True)
class CoreMetadata:
    name: str
    version: str
    requires: tuple[Requirement, ...]
    requires_python: SpecifierSet
    licenses: tuple[str, ...]


def parse_metadata(data: bytes, what: str) -> CoreMetadata:
    """METADATA's fields; `what` (a wheel's file name) names it in errors."""
    raw, _ = parse_email(data)
    requires = []
    for text in raw.get("requires_dist", []):
        try:
            requires.append(Requirement(text))
        except InvalidRequirement as e:
            raise SourceError(
                f"{what}: METADATA: Requires-Dist {text!r} does not parse ({e})"
            ) from None
    try:
        requires_python = SpecifierSet(raw.get("requires_python", ""))
    except InvalidSpecifier as e:
        raise SourceError(
            f"{what}: METADATA: Requires-Python does not parse ({reason(e)})"
        ) from None
    if "name" not in raw or "version" not in raw:
        raise SourceError(f"{what}: METADATA has no Name or Version")
    return CoreMetadata(
        raw["name"], raw["version"], tuple(requires), requires_python, _licenses(raw)
    )


def _licenses(raw: Mapping[str, object]) -> tuple[str, ...]:
    """PEP 639's License-Expression, else the License field (when it is one short line, not
    the license's whole text), else the license classifiers."""
    expression = raw.get("license_expression")
    if isinstance(expression, str) and expression.strip():
        return (expression.strip(),)
    text = raw.get("license")
    if isinstance(text, str) and text.strip() and "\n" not in text.strip() and len(text) < 100:
        return (text.strip(),)
    classifiers = raw.get("classifiers")
    if isinstance(classifiers, list):
        found = [
            c.rsplit(" :: ", 1)[-1]
            for c in classifiers
            if isinstance(c, str) and c.startswith(LICENSE_CLASSIFIER)
        ]
        return tuple(dict.fromkeys(found))
    return ()
