"""The layer-source interface: a source turns its recipe spec into layer plans.

A source is one module with a `plan(spec, ctx)` function returning `LayerPlan`s; its spec type
(decoded from the recipe, unknown keys refused) lives in `specs`, so recipes are read without
loading sources. A plan names the layer by a cache key (a hash of everything its content
depends on), yields the layer's entries lazily, only when the builder has to write it, and may
change the image's runtime config (user, env) through its `runtime_config` hook, which sees the
image's files once every layer is written. A plan that waits on work under way (a source's
downloads) is handed out as a `DeferredPlan`: the builder resolves it in one of its workers, so
the layers before it are written while it waits. A plan whose key is known before its inputs
(pinned by the lock file) gives a `prepare` hook instead: a cached layer downloads nothing. Sources never touch the store, never print: they
report through `ctx.report` and raise `SourceError` naming the file, URL or recipe line at
fault.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ocibuild.errors import Origin
from ocibuild.layer.entry import Entry
from ocibuild.oci import RuntimeConfig
from ocibuild.progress import Reporter, silent

if TYPE_CHECKING:
    from ocibuild.fetch import Fetcher


class LowerFS(Protocol):
    """Read-only view of the image below the layer being planned (base image + earlier layers)."""

    def read(self, path: str) -> bytes | None:
        """Content of a regular file at `path` (image-absolute or relative), or None."""

    def collect(self, match: Callable[[str], bool]) -> dict[str, bytes]:
        """Content of every regular file whose image-relative path matches, in one pass."""


def hash_content(entry: Entry) -> str:
    """sha256 of a file entry's content (the builder passes a cached version for local files)."""
    h = hashlib.sha256()
    if entry.open is not None:
        with entry.open() as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class SourceContext:
    recipe_file: Path
    origin: Origin
    layer_index: int
    source_date_epoch: int
    mirror: str
    cache_dir: Path
    offline: bool = False
    update_lock: bool = False
    lower: LowerFS | None = None
    report: Reporter = silent
    lock: Any = None  # ocibuild.fetch.LockFile of the recipe: pinned download digests
    insecure: bool = False  # downloads without TLS verification (`--insecure`)
    content_digest: Callable[[Entry], str] = hash_content
    variables: Mapping[str, str] = field(default_factory=dict)  # `--var NAME=VALUE`
    warned: set[str] = field(default_factory=set)  # warnings already given in this build
    cancel: threading.Event = field(default_factory=threading.Event)  # set: stop downloads

    @property
    def recipe_dir(self) -> Path:
        return self.recipe_file.parent


RuntimeHook = Callable[[RuntimeConfig, LowerFS], RuntimeConfig]
"""What a layer does to the image's runtime config, given the config so far (base image, then
the layers below in order) and the files of the whole image."""


def fetcher_for(
    ctx: SourceContext, origin: Origin | None = None, hint: str = "", mirror: str | None = None
) -> Fetcher:
    """The downloader of a source: its failures name the recipe line (`origin`, else the
    context's) and, when the server cannot be reached, `hint` (how to use another mirror).
    Downloads below `mirror` are pinned relative to it."""
    from ocibuild.fetch import Fetcher

    return Fetcher(
        ctx.cache_dir,
        lock=ctx.lock,
        offline=ctx.offline,
        update_lock=ctx.update_lock,
        report=ctx.report,
        mirror=mirror,
        origin=origin or ctx.origin,
        hint=hint,
        insecure=ctx.insecure,
        cancel=ctx.cancel,
    )


@dataclass(frozen=True)
class LayerPlan:
    key: str
    description: str
    entries: Callable[[], Iterable[Entry]]
    created_by: str
    size_hint: int | None = None  # about how many tar bytes, for progress bars
    # its entries come from threads on every core (bzip2 decoders): such layers read them one
    # at a time, as two would only compete for the cores (and cost more CPU for it)
    every_core: bool = False
    # starts, in the background, what `entries` will need (downloads); called in layer order
    # for each layer the builder has to write, never for a cache hit
    prepare: Callable[[], None] | None = None
    runtime_config: RuntimeHook | None = None


@dataclass(frozen=True)
class DeferredPlan:
    """A layer's plan once `resolve` returns it (it may block, e.g. on downloads, and raises
    what the source's planning would have)."""

    resolve: Callable[[], LayerPlan]


Planned = LayerPlan | DeferredPlan


def content_key(files: dict[str, bytes]) -> dict[str, str]:
    """What a layer depends on of the base image's files: their sha256 by path."""
    return {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())}


def input_key(*parts: Any) -> str:
    """A stable hash of JSON-able parts: the cache key of a layer's inputs."""
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()
