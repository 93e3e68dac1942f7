"""The layer-source contract: a source turns its recipe spec into layer plans.

A source is one module with a `plan(spec, ctx)` function (`ctx` a `LayerContext`) returning
`LayerPlan`s, registered with its spec type in `ocibuild.sources.SOURCES`; its spec type
(decoded from the recipe, unknown keys refused) lives in `specs`, so recipes are read without
loading sources.

A plan is one shape. It names the layer by a cache key (a hash of everything its content
depends on), yields the layer's entries lazily, only when the builder has to write it, and may
change the image's runtime config (user, env) through its `runtime_config` hook, which sees the
image's files once every layer is written. Work a plan waits on (a source's downloads) is
begun by its `start` hook, which the builder calls in layer order; a key known only once that
work is done is given as a function that waits for it (`key=lambda: ...`): the builder calls it
in one of its workers, so the layers before are written meanwhile. A plan whose key is known
at once (a lock file pins its downloads) and that is in the cache is never started: it
downloads nothing. Sources never touch the store, never print: they report through
`ctx.report` and raise `SourceError` naming the file, URL or recipe line at fault.

A heavy layer may also be made `apart`: its entries made and written in a process of its own
(`ocibuild.layer.apart`), so that the Python work of several heavy layers runs on several
cores. The builder decides; the layer's bytes are the same either way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ocibuild.errors import Origin
from ocibuild.layer.apart import ApartJob
from ocibuild.layer.entry import Entry
from ocibuild.oci import RuntimeConfig
from ocibuild.sbom import Component
from ocibuild.sources.session import ImageFiles, LayerContext

if TYPE_CHECKING:
    from ocibuild.fetch import Fetcher

RuntimeHook = Callable[[RuntimeConfig, ImageFiles], RuntimeConfig]
"""What a layer does to the image's runtime config, given the config so far (base image, then
the layers below in order) and the image's files (whole, and below the source)."""


Apart = Callable[[], tuple[ApartJob, Callable[[object], None]]]
"""How a layer is made in a process of its own: called in the build, once what `start` began
is done, it gives the picklable job and where the job's outcome, or the error that ended it,
goes back. When it raises, nothing was begun."""


@dataclass(frozen=True)
class LayerPlan:
    # the layer cache's key of the layer's inputs; a function when it waits on `start`'s work
    key: str | Callable[[], str]
    description: str
    entries: Callable[[], Iterable[Entry]]
    created_by: str
    size_hint: int | None = None  # about how many tar bytes, for progress bars
    # about how much work writing the layer is, in a unit the source uses for all its layers
    # (bytes to read): of one source's layers, the heaviest are written first
    weight: int = 0
    # its entries come from threads on every core (bzip2 decoders): such layers read them one
    # at a time, as two would only compete for the cores (and cost more CPU for it)
    every_core: bool = False
    # begins, in the background, what `key` and `entries` wait on (downloads); called in layer
    # order for each layer whose key waits or that the builder writes, never for a cache hit
    start: Callable[[], None] | None = None
    runtime_config: RuntimeHook | None = None
    # what the layer holds, for the image's SBOM; asked once the layer is built or found in
    # the cache (its key resolved), so it may read what `start` fetched
    components: Callable[[], Sequence[Component]] | None = None
    apart: Apart | None = None


def content_key(files: dict[str, bytes]) -> dict[str, str]:
    """What a layer depends on of the base image's files: their sha256 by path."""
    return {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())}


def input_key(*parts: object) -> str:
    """A stable hash of JSON-able parts: the cache key of a layer's inputs."""
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()


def fetcher_for(
    ctx: LayerContext, origin: Origin | None = None, hint: str = "", mirror: str | None = None
) -> Fetcher:
    """The downloader of a source: its failures name the recipe line (`origin`, else the
    context's) and, when the server cannot be reached, `hint` (how to use another mirror).
    Downloads below `mirror` are pinned relative to it."""
    from ocibuild.fetch import Fetcher

    session = ctx.session
    return Fetcher(
        session.cache_dir,
        lock=session.lock,
        network=session.settings.network,
        update_lock=session.settings.update_lock,
        report=session.report,
        mirror=mirror,
        origin=origin or ctx.origin,
        hint=hint,
        cancel=session.cancel,
    )
