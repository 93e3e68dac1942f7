"""Recipe format v1 as typed data (see docs/recipe.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ocibuild.errors import Origin
from ocibuild.oci.formats import ManifestFormat
from ocibuild.oci.model import Platform
from ocibuild.sources.registry import LayerSpec

SCRATCH = "scratch"
MAX_SOURCE_DATE_EPOCH = 253402300799  # 9999-12-31T23:59:59Z: the last time an image config holds


def check_source_date_epoch(value: int) -> int:
    """`value` if it is a time an image can carry, else ValueError."""
    if not 0 <= value <= MAX_SOURCE_DATE_EPOCH:
        raise ValueError(
            f"{value} is outside 0..{MAX_SOURCE_DATE_EPOCH} (up to 9999-12-31T23:59:59Z)"
        )
    return value


def _control(text: str) -> str | None:
    return next((c for c in text if ord(c) < 0x20 or ord(c) == 0x7F), None)


def _env(env: dict[str, str]) -> dict[str, str]:
    for name in env:
        if not name or "=" in name or _control(name):
            raise ValueError(
                f"{name!r} is not an environment variable name (empty, or has '=' or a control "
                "character)"
            )
    return env


def _user(user: str | None) -> str | None:
    if user is not None and (not user or _control(user)):
        raise ValueError(f"{user!r} is not a user (name or uid, optionally :group)")
    return user


def _workdir(path: str | None) -> str | None:
    if path is not None and (not path or _control(path)):
        raise ValueError(f"{path!r} is not a working directory (empty, or a control character)")
    return path


def _platform(text: str) -> str:
    Platform.parse(text)
    return text


def check_platforms(values: list[str] | None) -> list[str] | None:
    if values is not None:
        if not values:
            raise ValueError("must not be empty")
        for text in values:
            Platform.parse(text)
        if len(set(values)) != len(values):
            raise ValueError("names a platform twice")
    return values


@dataclass(frozen=True)
class ImageSpec:
    name: str
    from_: str = field(default=SCRATCH, metadata={"key": "from"})
    tags: list[str] = field(default_factory=list)
    layers: list[LayerSpec] = field(default_factory=list)
    # text the image's runtime reads: recipe variables stay as written ($ is the image's)
    env: dict[str, str] = field(default_factory=dict, metadata={"verbatim": True, "check": _env})
    cmd: list[str] | str | None = field(default=None, metadata={"verbatim": True})
    entrypoint: list[str] | str | None = field(default=None, metadata={"verbatim": True})
    workdir: str | None = field(default=None, metadata={"check": _workdir})
    user: str | None = field(default=None, metadata={"check": _user})
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    compression: str | None = None
    compression_level: int | None = None
    format: ManifestFormat | None = None  # the manifest's family [default: the recipe's]
    platform: str = field(default="linux/amd64", metadata={"check": _platform})
    # one image per platform and an index over them [default: the recipe's, else `platform`]
    platforms: list[str] | None = field(default=None, metadata={"check": check_platforms})
    origin: Origin | None = None


@dataclass(frozen=True)
class Recipe:
    images: list[ImageSpec]
    mirror: str | None = None
    source_date_epoch: int | None = None
    compression: str = "gzip"
    compression_level: int | None = None
    format: ManifestFormat = "auto"
    platforms: list[str] | None = field(default=None, metadata={"check": check_platforms})
    path: Path = field(default=Path(), metadata={"internal": True})
    origin: Origin | None = None

    def image(self, name: str) -> ImageSpec | None:
        return next((i for i in self.images if name in (i.name, *i.tags)), None)
