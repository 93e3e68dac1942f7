"""A package's buildinfo, `<prefix>/.spack/binary_distribution` (YAML, the tarball's last
member; `spack/binary_distribution.py: get_buildinfo_dict`): where it was built and which of
its files hold prefixes. Paths in the lists are relative to the prefix."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

import yaml

from ocibuild.errors import SourceError

BUILDINFO = ".spack/binary_distribution"


@dataclass(frozen=True)
class BuildInfo:
    buildpath: str  # the old padded root
    relative_prefix: str
    spackprefix: str
    sbang_install_path: str
    relocate_textfiles: frozenset[str]
    relocate_binaries: frozenset[str]
    relocate_links: frozenset[str]
    hash_to_prefix: Mapping[str, str]

    @property
    def old_prefix(self) -> str:
        return posixpath.join(self.buildpath, self.relative_prefix)


def _strings(value: object, what: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SourceError(f"{what}: expected a list of paths")
    return frozenset(posixpath.normpath(v) for v in value)


def parse_buildinfo(data: bytes, what: str) -> BuildInfo:
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as e:
        raise SourceError(f"{what}: {BUILDINFO} is not YAML ({e})") from None
    if not isinstance(doc, dict):
        raise SourceError(f"{what}: {BUILDINFO} is not a mapping")
    if doc.get("relative_rpaths"):
        raise SourceError(
            f"{what}: built with relative RPATHs (an old build cache); ocibuild relocates "
            "absolute ones only"
        )
    hashes = doc.get("hash_to_prefix")
    if hashes is None and isinstance(doc.get("prefix_to_hash"), dict):
        hashes = {v: k for k, v in doc["prefix_to_hash"].items()}
    if not isinstance(hashes, dict):
        raise SourceError(f"{what}: {BUILDINFO} has no hash_to_prefix")
    for key in ("buildpath", "relative_prefix"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise SourceError(f"{what}: {BUILDINFO} has no {key}")
    return BuildInfo(
        buildpath=doc["buildpath"],
        relative_prefix=doc["relative_prefix"],
        spackprefix=str(doc.get("spackprefix", "")),
        sbang_install_path=str(doc.get("sbang_install_path") or ""),
        relocate_textfiles=frozenset(
            p for p in _strings(doc.get("relocate_textfiles"), what) if not p.endswith("~")
        ),
        relocate_binaries=_strings(doc.get("relocate_binaries"), what),
        relocate_links=_strings(doc.get("relocate_links"), what),
        hash_to_prefix={str(k): str(v) for k, v in hashes.items()},
    )
