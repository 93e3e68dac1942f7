"""Layer contexts for tests that plan a source directly, without the builder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ocibuild.errors import Origin
from ocibuild.fetch import LockFile
from ocibuild.net.policy import NetworkPolicy
from ocibuild.progress import Reporter, silent
from ocibuild.sources.base import LayerPlan
from ocibuild.sources.session import BuildSession, BuildSettings, LayerContext, LowerFS

NETWORK = {f.name for f in dataclasses.fields(NetworkPolicy)}


def layer_context(
    tmp_path: Path,
    *,
    recipe_file: Path | None = None,
    origin: Origin | None = None,
    index: int = 0,
    lower: LowerFS | None = None,
    lock: LockFile | None = None,
    mirror: str = "",
    source_date_epoch: int = 0,
    cache_dir: Path | None = None,
    report: Reporter = silent,
    **settings: object,
) -> LayerContext:
    """A context as the builder makes it for one layer: the recipe `recipe_file` (else
    tmp_path/recipe.yaml), its lock file, the download cache in tmp_path; `settings` are
    `BuildSettings` fields or `NetworkPolicy` ones (offline=True)."""
    recipe = recipe_file or tmp_path / "recipe.yaml"
    network = {k: settings.pop(k) for k in list(settings) if k in NETWORK}
    session = BuildSession(
        settings=BuildSettings(network=NetworkPolicy(**network), **settings),  # type: ignore[arg-type]
        recipe_file=recipe,
        lock=lock if lock is not None else LockFile.for_recipe(recipe),
        mirror=mirror,
        source_date_epoch=source_date_epoch,
        cache_dir=cache_dir or tmp_path / "cache",
        report=report,
    )
    return LayerContext(session, origin or Origin(str(recipe), 4, 9), index, lower)


def resolved(plans: list[LayerPlan]) -> list[LayerPlan]:
    """A source's plans with their inputs here: started in layer order, keys that wait for
    their downloads resolved, those keyed by the lock file's pins read through (fetching what
    they would fetch when written)."""
    for plan in plans:
        if plan.start is not None:
            plan.start()
    ready = []
    for plan in plans:
        if isinstance(plan.key, str):
            if plan.start is not None:
                for _ in plan.entries():
                    pass
            ready.append(plan)
        else:
            ready.append(dataclasses.replace(plan, key=plan.key()))
    return ready
