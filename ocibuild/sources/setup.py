"""`setup`: the UPS environment frozen into the image config, and the login-shell script that
does the real `setup` for interactive use.

    setup: {product: art, version: v1_18_03, qualifiers: "e9:prof"}

An image's `setup:` is its last layer: `/etc/profile.d/ups-setup.sh`, and a runtime-config hook
that computes, from the `.version` and `.table` files of the whole image, the environment
`setup` gives and makes it the image's Env (the recipe's `env:` overriding it).
"""

from __future__ import annotations

from dataclasses import replace

from ocibuild.errors import SourceError
from ocibuild.layer.entry import bytes_entry, clean_path
from ocibuild.oci import RuntimeConfig
from ocibuild.progress import Reporter, SetupEvent
from ocibuild.sbom import written_file
from ocibuild.sources.base import LayerPlan, input_key
from ocibuild.sources.profile import profile_script
from ocibuild.sources.session import LayerContext, LowerFS
from ocibuild.sources.specs import SetupSpec
from ocibuild.ups.database import Database, host_flavor, wanted
from ocibuild.ups.environment import Frozen, Request, UpsEnvironment
from ocibuild.ups.names import colon_qualifiers

PROFILE_PATH = "etc/profile.d/ups-setup.sh"


def setup_command(spec: SetupSpec) -> str:
    words = ["setup", spec.product]
    if spec.version:
        words.append(spec.version)
    if quals := colon_qualifiers(spec.qualifiers):
        words += ["-q", quals]
    return " ".join(words)


def plan(spec: SetupSpec, ctx: LayerContext) -> list[LayerPlan]:
    """`/etc/profile.d/ups-setup.sh`: `source <into>/setup; setup <product> ...` for login
    shells; and the environment it gives, frozen into the image's config."""
    spec = spec if spec.origin else replace(spec, origin=ctx.origin)
    root = "/" + clean_path(spec.into)
    command = setup_command(spec)
    lines = f"if [ -f {root}/setup ]; then\n  . {root}/setup\n  {command}\nfi\n"
    data = profile_script(lines)

    def runtime_config(runtime: RuntimeConfig, image: LowerFS) -> RuntimeConfig:
        frozen = frozen_environment(image, spec, ctx.report, runtime.env_dict(), ctx.session.warned)
        # the whole environment after setup: what envUnset removed is gone
        return replace(runtime, env=tuple(f"{k}={v}" for k, v in frozen.env.items()))

    return [
        LayerPlan(
            key=input_key("ups-setup-profile", PROFILE_PATH, data.decode()),
            description=f"setup: /{PROFILE_PATH} ({command})",
            entries=lambda: [bytes_entry(PROFILE_PATH, data)],
            components=lambda: [written_file(PROFILE_PATH, data)],
            created_by=f"ocibuild setup /{PROFILE_PATH}: . {root}/setup; {command}",
            runtime_config=runtime_config,
        )
    ]


def frozen_environment(
    lower: LowerFS,
    spec: SetupSpec,
    report: Reporter,
    base_env: dict[str, str] | None = None,
    warned: set[str] | None = None,
) -> Frozen:
    """The environment after `source <into>/setup; setup ...` in an image whose environment
    was `base_env`, computed from the `.version` and `.table` files of the image; warnings
    already in `warned` are not given again."""
    root = clean_path(spec.into)
    where = str(spec.origin) if spec.origin else "setup"
    match = wanted(root)
    under_root: list[str] = []

    def record(path: str) -> bool:
        if not root or path.startswith(root + "/"):
            under_root.append(path)
        return match(path)

    files = lower.collect(record)
    try:
        db = Database(root, files, under_root)
        if not db.products():
            raise SourceError(f"no UPS products declared in /{root} (no .version files)")
        flavor = host_flavor(db)
    except SourceError as e:
        raise SourceError(f"{setup_command(spec)}: {e}", where) from None
    env = UpsEnvironment(db, base_env or {}, flavor, report, spec.missing, warned)
    env.source_setup()
    quals = colon_qualifiers(spec.qualifiers)
    env.setup(Request(spec.product, spec.version, quals, via=where))
    report(SetupEvent(where, setup_command(spec), len(env.active), len(env.not_frozen)))
    return Frozen(env.env, tuple(env.not_frozen), len(env.active))
