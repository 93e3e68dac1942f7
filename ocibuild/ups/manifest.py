"""Bundle manifests: one product per line,

    product  version  tarball  -f <flavor>  [-q <qualifiers colon-joined>]

whitespace-separated; blank lines and `#` comments are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ocibuild.errors import SourceError
from ocibuild.ups.names import NULL_FLAVOR, check_version

# every field below becomes part of a path (products tree, mirror URL, cache file): one path
# component each, never `.` or `..`, nothing that a shell, URL or tar would read differently
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
_FLAVOR = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
_QUALIFIERS = re.compile(r'"?[A-Za-z0-9_+:.-]*"?')


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
    if not _NAME.fullmatch(product):
        raise SourceError(f"{product!r} is not a product name", at)
    try:
        check_version(version)
    except ValueError as e:
        raise SourceError(f"{e}", at) from None
    if not _NAME.fullmatch(tarball):
        raise SourceError(f"{tarball!r} is not a tarball file name", at)
    values: dict[str, str] = {}
    while options:
        flag = options.pop(0)
        if not flag.startswith("-") or not options:
            raise SourceError(f"option {flag!r} without a value", at)
        values[flag] = options.pop(0)
    if not _FLAVOR.fullmatch(values.get("-f", NULL_FLAVOR)):
        raise SourceError(f"flavor {values['-f']!r} is not a UPS flavor", at)
    if not _QUALIFIERS.fullmatch(values.get("-q", "")) or ".." in values.get("-q", ""):
        raise SourceError(f"qualifiers {values['-q']!r} are not UPS qualifiers", at)
    return ManifestEntry(
        product,
        version,
        tarball,
        flavor=values.get("-f", NULL_FLAVOR),
        qualifiers=values.get("-q", "").strip('"'),
    )
