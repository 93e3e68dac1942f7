"""`/var/lib/ocibuild/packages.json`: what ocibuild installed into an image from OS packages.

It records each package (type, name, EVR, architecture, the repository it came from, how that
repository was verified: the signing key's fingerprint, or "trusted" where the recipe opted
out) and the install scripts that were not run, since no package script runs at build time. Each package
layer rewrites the file with the record of the image below plus its own packages; the next
package layer reads it to skip what is already there.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from ocibuild.errors import SourceError
from ocibuild.jsonread import json_list, json_object, read_json_object
from ocibuild.secrets import public_url

RECORD_PATH = "var/lib/ocibuild/packages.json"
RECORD_VERSION = 1


@dataclass(frozen=True)
class PackageRecord:
    type: str  # "rpm" or "deb"
    name: str
    evr: str
    arch: str
    repo: str
    skipped_scripts: tuple[str, ...] = ()
    verified_by: str = ""  # fingerprint of the key its repository was verified by, or "trusted"

    def __post_init__(self) -> None:
        object.__setattr__(self, "repo", public_url(self.repo))  # an image is shared

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.type, self.name, self.arch)


def load_record(data: bytes | None, what: str = "/" + RECORD_PATH) -> list[PackageRecord]:
    if not data:
        return []
    try:
        records = []
        for item in json_list(read_json_object(data, what).get("packages"), "packages"):
            p = json_object(item, "a package")
            scripts = json_list(p.get("skipped_scripts", []), "skipped_scripts")
            records.append(
                PackageRecord(
                    str(p["type"]),
                    str(p["name"]),
                    str(p["evr"]),
                    str(p["arch"]),
                    str(p.get("repo", "")),
                    tuple(str(s) for s in scripts),
                    str(p.get("verified_by", "")),
                )
            )
        return records
    except (ValueError, KeyError, TypeError) as e:
        raise SourceError(f"{what} of the base image is malformed ({e})") from None


def record_bytes(base: Iterable[PackageRecord], added: Iterable[PackageRecord]) -> bytes:
    """The record of `base` with `added` (replacing entries of the same type, name and arch)."""
    merged = {r.key: r for r in base}
    merged.update((r.key, r) for r in added)
    packages = [
        {**asdict(r), "skipped_scripts": list(r.skipped_scripts)}
        for r in sorted(merged.values(), key=lambda r: r.key)
    ]
    return (
        json.dumps({"version": RECORD_VERSION, "packages": packages}, indent=1, sort_keys=True)
        + "\n"
    ).encode()
