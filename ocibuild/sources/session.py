"""What a layer source is given: the build session (fixed for one `ocibuild recipe` run) and
the layer's own context.

A setting reaches every source that reads it through one value: the CLI (or an API caller)
fills `BuildSettings`, the builder makes one `BuildSession` of it and the recipe, and each layer
is planned with a `LayerContext` holding that session. Nothing copies a setting by hand on the
way.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ocibuild.errors import Origin
from ocibuild.fetch import LockFile
from ocibuild.layer.entry import Entry, content_sha256
from ocibuild.net.policy import NetworkPolicy
from ocibuild.progress import Reporter, silent

PULL_POLICIES = ("always", "missing", "never")


@dataclass(frozen=True)
class BuildSettings:
    """What the person running a build chose (command-line options, or an API caller's)."""

    mirror: str | None = None  # UPS scisoft root, over $OCIBUILD_SCISOFT and the recipe's
    index_url: str | None = None  # Python package index, over pip's configuration and the recipe's
    cache_dir: Path | None = None  # the download cache [default: fetch.default_cache_dir()]
    network: NetworkPolicy = field(default_factory=NetworkPolicy)  # offline, insecure, CA
    update_lock: bool = False  # accept downloads that differ from the lock file, rewrite it
    pull: str = "missing"  # when to pull registry base images: always, missing, never
    no_cache: bool = False  # rebuild every layer
    jobs: int = 2  # layers written at once
    compression: str | None = None  # over the image's and the recipe's
    compression_level: int | None = None
    manifest_format: str | None = None  # auto, oci, docker: over the image's and the recipe's
    sbom_format: str = "spdx"  # the SBOM stored with each image: spdx or cyclonedx
    images: tuple[str, ...] = ()  # build only these (and what they need); all when empty
    platforms: tuple[str, ...] = ()  # os/arch of each image: over the image's and the recipe's
    variables: Mapping[str, str] = field(default_factory=dict)  # `--var NAME=VALUE`

    def __post_init__(self) -> None:
        if self.pull not in PULL_POLICIES:
            raise ValueError(f"pull policy must be one of {', '.join(PULL_POLICIES)}")


@dataclass(frozen=True)
class BuildSession:
    """Fixed for one build: the settings, the recipe file being built (a `from:` of another
    recipe file builds that file in `for_recipe` of this session), and what every layer shares:
    progress, cancellation, warnings given once, file digests remembered."""

    settings: BuildSettings
    recipe_file: Path
    lock: LockFile  # the recipe's `.lock`: pinned download digests, package resolutions
    mirror: str  # the UPS scisoft root, resolved
    source_date_epoch: int  # the time in every layer and in the config's history
    cache_dir: Path
    report: Reporter = silent
    cancel: threading.Event = field(default_factory=threading.Event)  # set: all work stops
    warned: set[str] = field(default_factory=set)  # warnings already given in this build
    content_digest: Callable[[Entry], str] = content_sha256  # of local files, remembered

    @property
    def recipe_dir(self) -> Path:
        return self.recipe_file.parent

    def for_recipe(
        self, recipe_file: Path, lock: LockFile, mirror: str, source_date_epoch: int
    ) -> BuildSession:
        return dataclasses.replace(
            self,
            recipe_file=recipe_file,
            lock=lock,
            mirror=mirror,
            source_date_epoch=source_date_epoch,
        )


class LowerFS(Protocol):
    """Read-only view of the image below the layer being planned (base image + earlier layers)."""

    def read(self, path: str) -> bytes | None:
        """Content of a regular file at `path` (image-absolute or relative), or None."""

    def collect(self, match: Callable[[str], bool]) -> dict[str, bytes]:
        """Content of every regular file whose image-relative path matches, in one pass."""


@dataclass(frozen=True)
class ImageFiles:
    """What a runtime-config hook may read, once every layer is written: the whole image, and
    the image below the hook's own source (the base and the layers of earlier sources), which
    is cheaper to read when the source knows its own layers."""

    whole: LowerFS
    below: LowerFS


@dataclass(frozen=True)
class LayerContext:
    """One layer source of an image being planned: the session, the recipe line, the source's
    position among the image's layers, and (for sources that read it) the image below."""

    session: BuildSession
    origin: Origin
    index: int
    lower: LowerFS | None = None
    platform: str = "linux/amd64"  # os/arch[/variant] of the image being built

    @property
    def report(self) -> Reporter:
        return self.session.report
