"""Bundle manifests: one product per line,

    product  version  tarball  -f <flavor>  [-q <qualifiers colon-joined>]

whitespace-separated; blank lines and `#` comments are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocibuild.errors import SourceError
from ocibuild.ups.names import NULL_FLAVOR, check_version


@dataclass(frozen=True)
class ManifestEntry:
    product: str
    version: str
    tarball: str
    flavor: str = NULL_FLAVOR
    qualifiers: str = ""

    def __str__(self) -> str:
        quals = f" -q {self.qualifiers}" if self.qualifiers else ""
        return f"{self.product} {self.version} -f {self.flavor}{quals}"


def parse_manifest(text: str, where: str) -> list[ManifestEntry]:
    """Entries of a manifest, in file order, without repeated lines; `where` names the file
    (its URL) in errors."""
    entries: list[ManifestEntry] = []
    seen: set[ManifestEntry] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        entry = _entry(line.split(), f"{where}:{number}")
        if entry not in seen:
            seen.add(entry)
            entries.append(entry)
    if not entries:
        raise SourceError("the manifest lists no products", where)
    return entries


def _entry(words: list[str], at: str) -> ManifestEntry:
    if len(words) < 3 or words[0].startswith("-"):
        raise SourceError("expected 'product version tarball -f flavor [-q quals]'", at)
    product, version, tarball, *options = words
    try:
        check_version(version)
    except ValueError as e:
        raise SourceError(f"{e}", at) from None
    if "/" in tarball or tarball.startswith("."):
        raise SourceError(f"{tarball!r} is not a tarball file name", at)
    values: dict[str, str] = {}
    while options:
        flag = options.pop(0)
        if not flag.startswith("-") or not options:
            raise SourceError(f"option {flag!r} without a value", at)
        values[flag] = options.pop(0)
    return ManifestEntry(
        product,
        version,
        tarball,
        flavor=values.get("-f", NULL_FLAVOR),
        qualifiers=values.get("-q", "").strip('"'),
    )
