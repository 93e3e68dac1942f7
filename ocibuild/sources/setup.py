"""`setup`: the UPS environment frozen into the image config, and the login-shell script that
does the real `setup` for interactive use.

    setup: {product: art, version: v1_18_03, qualifiers: "e9:prof"}

An image's `setup:` is its last layer: `/etc/profile.d/ups-setup.sh`, and a runtime-config hook
that computes, from the image's UPS files, the environment `setup` gives and makes it the
image's Env (the recipe's `env:` overriding it).
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
from ocibuild.sources.session import ImageFiles, LayerContext, LowerFS
from ocibuild.sources.specs import SetupSpec
from ocibuild.ups.database import ImageTree, wanted
from ocibuild.ups.environment import Frozen, Request, UpsEnvironment
from ocibuild.ups.host import host_flavors
from ocibuild.ups.notices import Notices

PROFILE_PATH = "etc/profile.d/ups-setup.sh"


def setup_command(spec: SetupSpec) -> str:
    words = ["setup", spec.product]
    if spec.version:
        words.append(spec.version)
    if quals := spec.qualifiers.strip():
        words += ["-q", quals]
    if spec.chain:
        words += chain_option(spec.chain).split()
    if spec.flavor:
        words += ["-f", spec.flavor]
    if spec.host_flavor:
        words += ["-H", spec.host_flavor]
    if spec.databases:
        words += ["-z", ":".join(spec.databases)]
    return " ".join(words)


def plan(spec: SetupSpec, ctx: LayerContext) -> list[LayerPlan]:
    """`/etc/profile.d/ups-setup.sh`: `source <into>/setup; setup <product> ...` for login
    shells; and the environment it gives, frozen into the image's config."""
    spec = spec if spec.origin else replace(spec, origin=ctx.origin)
    root = "/" + clean_path(spec.into)
    command = setup_command(spec)
    lines = f"if [ -f {root}/setup ]; then\n  . {root}/setup\n  {command}\nfi\n"
    data = profile_script(lines)

    def runtime_config(runtime: RuntimeConfig, files: ImageFiles) -> RuntimeConfig:
        frozen = frozen_environment(
            files.whole, spec, ctx.report, runtime.env_dict(), ctx.session.warned
        )
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


CHAIN_FLAGS = {"-c": "current", "-n": "new", "-t": "test", "-d": "development", "-o": "old"}


def chain_option(chain: str) -> str:
    """`setup`'s chain option for `chain:`: `-g NAME`, or one of `-c -n -t -d -o` as given
    (${UPS_REQ_CHAIN} shows which)."""
    if not chain or chain in CHAIN_FLAGS:
        return chain
    return f"-g {chain}"


def request_of(spec: SetupSpec, where: str) -> Request:
    """The setup command of the recipe."""
    chain = spec.chain
    return Request(
        spec.product,
        spec.version,
        spec.qualifiers.strip(),
        chains=(CHAIN_FLAGS.get(chain, chain),) if chain else (),
        req_chain=chain_option(chain),
        flavor=spec.flavor,
        hosts=tuple(h for h in spec.host_flavor.split(":") if h),
        databases=tuple(spec.databases),
        via=where,
    )


def frozen_environment(
    lower: LowerFS,
    spec: SetupSpec,
    report: Reporter,
    base_env: dict[str, str] | None = None,
    warned: set[str] | None = None,
) -> Frozen:
    """The environment after `source <into>/setup; setup ...` in an image whose environment
    was `base_env`, computed from the image's UPS files (read in one pass; only those the
    setup needs are parsed); warnings already in `warned` are not given again."""
    env = dict(base_env or {})
    root = "/" + clean_path(spec.into)
    where = str(spec.origin) if spec.origin else "setup"
    roots = [
        root,
        *spec.databases,
        *(p for p in env.get("PRODUCTS", "").replace(" ", ":").split(":") if p),
    ]
    match = wanted(roots)
    paths: list[str] = []

    def record(path: str) -> bool:
        paths.append(path)
        return match(path)

    files = lower.collect(record)
    tree = ImageTree(roots, files, (p for p in paths if _under(p, roots)), lower.read)
    request = request_of(spec, where)
    notices = Notices(report, warned if warned is not None else set())
    try:
        hosts = host_flavors(spec.host_flavor, env, tree, root, request, notices.warn)
    except SourceError as e:
        raise SourceError(f"{setup_command(spec)}: {e}", where) from None
    ups = UpsEnvironment(tree, env, hosts, notices, spec.missing, env.get("HOME", "/root"))
    ups.source_setup(root)
    ups.setup(request)
    report(SetupEvent(where, setup_command(spec), ups.products, len(ups.not_frozen)))
    return Frozen(ups.env, tuple(ups.not_frozen), ups.products, tuple(ups.messages))


def _under(path: str, roots: list[str]) -> bool:
    path = "/" + path.lstrip("/")
    return any(path.startswith(r.rstrip("/") + "/") for r in roots)
