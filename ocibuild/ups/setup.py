"""An image's `setup:` — the UPS environment frozen into the image config, and the login-shell
script that does the real `setup` for interactive use.

The builder calls `setup_profile_plan` for the image's last layer and, once every layer is
built, `frozen_environment` with the merged filesystem of the image, and puts the result into
the image's Env (the recipe's `env:` overriding it).
"""

from __future__ import annotations

from ocibuild.errors import SourceError
from ocibuild.layer.entry import bytes_entry, clean_path
from ocibuild.recipe.model import SetupSpec
from ocibuild.report import Reporter
from ocibuild.sources.base import LayerPlan, LowerFS, SourceContext, input_key
from ocibuild.sources.profile import profile_script
from ocibuild.ups.database import Database, host_flavor, wanted
from ocibuild.ups.environment import Request, UpsEnvironment
from ocibuild.ups.names import colon_qualifiers

PROFILE_PATH = "etc/profile.d/ups-setup.sh"


def setup_command(spec: SetupSpec) -> str:
    words = ["setup", spec.product]
    if spec.version:
        words.append(spec.version)
    if quals := colon_qualifiers(spec.qualifiers):
        words += ["-q", quals]
    return " ".join(words)


def setup_profile_plan(spec: SetupSpec, ctx: SourceContext) -> LayerPlan:
    """`/etc/profile.d/ups-setup.sh`: `source <into>/setup; setup <product> ...` for login
    shells."""
    root = "/" + clean_path(spec.into)
    command = setup_command(spec)
    lines = f"if [ -f {root}/setup ]; then\n  . {root}/setup\n  {command}\nfi\n"
    data = profile_script(lines)
    return LayerPlan(
        key=input_key("ups-setup-profile", PROFILE_PATH, data.decode()),
        description=f"setup: /{PROFILE_PATH} ({command})",
        entries=lambda: [bytes_entry(PROFILE_PATH, data)],
        created_by=f"ocibuild setup /{PROFILE_PATH}: . {root}/setup; {command}",
    )


def frozen_environment(
    lower: LowerFS,
    spec: SetupSpec,
    report: Reporter,
    base_env: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment after `source <into>/setup; setup ...` in an image whose environment
    was `base_env`, computed from the `.version` and `.table` files of the image."""
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
    env = UpsEnvironment(db, base_env or {}, flavor, report)
    env.source_setup()
    quals = colon_qualifiers(spec.qualifiers)
    env.setup(Request(spec.product, spec.version, quals, via=where))
    report("message", message=f"{where}: {setup_command(spec)}: {len(env.active)} products set up")
    return env.env
