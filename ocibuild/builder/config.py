"""The image config and history of a built image: a function of its base, its layers' plans
and the recipe's image settings (the plans' runtime-config hooks read the image's files)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace

from ocibuild.layer.blob import Layer
from ocibuild.oci import History, ImageConfig, Platform, RuntimeConfig
from ocibuild.recipe import ImageSpec
from ocibuild.sources.base import LayerPlan
from ocibuild.sources.session import ImageFiles


def image_config(
    base: ImageConfig,
    plans: Sequence[LayerPlan],
    layers: Sequence[Layer],
    image: ImageSpec,
    created: str,
    files: Callable[[int], ImageFiles],
    platform: str,
) -> ImageConfig:
    """`base`'s config with `layers` (written from `plans`) on top, then the image's settings.
    `files(i)` is what plan i's runtime-config hook reads: the whole image's filesystem, and
    the one below the plan's source."""
    runtime = base.config
    if image.entrypoint is not None and image.cmd is None:
        runtime = replace(runtime, cmd=None)
    for index, plan in enumerate(plans):
        if plan.runtime_config is not None:
            runtime = plan.runtime_config(runtime, files(index))
    runtime = apply_image_settings(runtime, image)
    history = list(base.history)
    if len(history) != len(base.diff_ids):
        history = [h for h in history if not h.empty_layer]
    history += [History(created=created, created_by=plan.created_by) for plan in plans]
    os_arch = Platform.parse(platform)
    return ImageConfig(
        architecture=os_arch.architecture,
        os=os_arch.os,
        variant=os_arch.variant,
        created=created,
        config=runtime,
        diff_ids=(*base.diff_ids, *(layer.diff_id for layer in layers)),
        history=tuple(history),
    )


def apply_image_settings(runtime: RuntimeConfig, image: ImageSpec) -> RuntimeConfig:
    def argv(value: list[str] | str | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        return ("/bin/sh", "-c", value) if isinstance(value, str) else tuple(value)

    if image.env:
        runtime = runtime.with_env(_expand_env(image.env, runtime.env_dict()))
    if image.cmd is not None:
        runtime = replace(runtime, cmd=argv(image.cmd))
    if image.entrypoint is not None:
        runtime = replace(runtime, entrypoint=argv(image.entrypoint))
    if image.workdir is not None:
        runtime = replace(runtime, working_dir=image.workdir)
    if image.user is not None:
        runtime = replace(runtime, user=image.user)
    if image.labels:
        runtime = replace(runtime, labels={**runtime.labels, **image.labels})
    return runtime


def _expand_env(env: dict[str, str], current: dict[str, str]) -> dict[str, str]:
    """`${VAR}` and `$VAR` in recipe env values refer to the image's env so far (like ENV)."""
    out: dict[str, str] = {}

    def lookup(m: re.Match[str]) -> str:
        return {**current, **out}.get(m.group(1) or m.group(2), "")

    for key, value in env.items():
        out[key] = re.sub(r"\$\{(\w+)\}|\$(\w+)", lookup, str(value))
    return out
