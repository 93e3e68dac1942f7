"""A component of an image: one thing a layer holds, named as scanners and SBOM formats name it.

Every source says what its layers hold (`LayerPlan.components`), from the inputs it keyed the
layer by, so a layer from the cache is described as well as one just written.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Component:
    kind: str  # the source's word: "ups", "deb", "rpm", "file", "wheel", "spack"
    name: str
    version: str = ""
    purl: str = ""  # package URL (`pkg:deb/debian/bash@5.2.15-2?arch=amd64`), "" when none fits
    sha256: str = ""  # of the artifact it came from (tarball, package file, wheel, local file)
    url: str = ""  # where the artifact came from, credentials removed
    licenses: tuple[str, ...] = ()  # as the source declares them (SPDX ids where it uses them)
    path: str = ""  # where it lands in the image, when it is one place (a file, a prefix)
    properties: tuple[tuple[str, str], ...] = ()  # flavor, qualifiers, arch, ...
