"""A package's buildinfo, `<prefix>/.spack/binary_distribution` (YAML, the tarball's last
member; `spack/binary_distribution.py: get_buildinfo_dict`): where it was built and which of
its files hold prefixes. Paths in the lists are relative to the prefix."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

from ocibuild.errors import SourceError
from ocibuild.yamlread import YAMLInputError, read_yaml

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


def _string(doc: Mapping[object, object], key: str, what: str) -> str:
    value = doc.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SourceError(f"{what}: {BUILDINFO}: {key} is not a string")
    return value


def _hash_to_prefix(doc: Mapping[object, object], what: str) -> dict[str, str]:
    hashes = doc.get("hash_to_prefix")
    prefixes = doc.get("prefix_to_hash")
    if hashes is None and isinstance(prefixes, dict):
        hashes = {v: k for k, v in prefixes.items()}
    if not isinstance(hashes, dict):
        raise SourceError(f"{what}: {BUILDINFO} has no hash_to_prefix")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in hashes.items()):
        raise SourceError(f"{what}: {BUILDINFO}: hash_to_prefix maps hashes to prefixes")
    return hashes


def parse_buildinfo(data: bytes, what: str) -> BuildInfo:
    try:
        doc = read_yaml(data, f"{what}: {BUILDINFO}")
    except YAMLInputError as e:
        raise SourceError(str(e)) from None
    if not isinstance(doc, dict):
        raise SourceError(f"{what}: {BUILDINFO} is not a mapping")
    if doc.get("relative_rpaths"):
        raise SourceError(
            f"{what}: built with relative RPATHs (an old build cache); ocibuild relocates "
            "absolute ones only"
        )
    hashes = _hash_to_prefix(doc, what)
    for key in ("buildpath", "relative_prefix"):
        if not _string(doc, key, what):
            raise SourceError(f"{what}: {BUILDINFO} has no {key}")
    return BuildInfo(
        buildpath=_string(doc, "buildpath", what),
        relative_prefix=_string(doc, "relative_prefix", what),
        spackprefix=_string(doc, "spackprefix", what),
        sbang_install_path=_string(doc, "sbang_install_path", what),
        relocate_textfiles=frozenset(
            p for p in _strings(doc.get("relocate_textfiles"), what) if not p.endswith("~")
        ),
        relocate_binaries=_strings(doc.get("relocate_binaries"), what),
        relocate_links=_strings(doc.get("relocate_links"), what),
        hash_to_prefix=hashes,
    )
