"""A component of an image: one thing a layer holds, named as scanners and SBOM formats name it.

Every source says what its layers hold (`LayerPlan.components`), from the inputs it keyed the
layer by, so a layer from the cache is described as well as one just written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ocibuild.secrets import public_url


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", public_url(self.url))  # whoever made it


def file_component(path: str, sha256: str, kind: str = "file") -> Component:
    """A file a layer puts at `path` (image-absolute or relative), by its content's sha256."""
    where = "/" + path.lstrip("/")
    return Component(kind=kind, name=where, sha256=sha256, path=where)


def written_file(path: str, data: bytes) -> Component:
    """A file ocibuild writes from the recipe (a profile script, the UPS setup)."""
    return file_component(path, hashlib.sha256(data).hexdigest())


def to_json(component: Component) -> dict[str, object]:
    """The component as JSON (the store keeps each layer's components so)."""
    return {
        "kind": component.kind,
        "name": component.name,
        "version": component.version,
        "purl": component.purl,
        "sha256": component.sha256,
        "url": component.url,
        "licenses": list(component.licenses),
        "path": component.path,
        "properties": [list(p) for p in component.properties],
    }


def from_json(data: dict[str, object]) -> Component:
    """A component `to_json` wrote; ValueError for anything else."""
    try:
        strings = {k: data[k] for k in ("kind", "name", "version", "purl", "sha256", "url", "path")}
        licenses, properties = data["licenses"], data["properties"]
        if not all(isinstance(v, str) for v in strings.values()):
            raise TypeError("a field is not a string")
        if not isinstance(licenses, list) or not isinstance(properties, list):
            raise TypeError("licenses and properties are lists")
        return Component(
            licenses=tuple(str(x) for x in licenses),
            properties=tuple((str(k), str(v)) for k, v in properties),
            **strings,  # type: ignore[arg-type]
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"not a component ({e})") from None
