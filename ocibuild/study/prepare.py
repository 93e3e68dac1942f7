"""Make the image available where the target runs it, before any job starts.

- podman, docker: `load -i` an archive (given, or exported from the ocibuild store when the
  image is there), else `pull` unless the runtime has it already;
- podman-hpc: the image written from the ocibuild store straight into podman-hpc's squash store
  (`ocibuild export --format podman-hpc`: no load, no migrate, no static mksquashfs); an archive
  given is `load`ed and `migrate`d; else `podman-hpc pull` (which migrates) unless it has it;
- shifter, `--via pull`: the image pushed from the ocibuild store when it is there, in Docker
  v2 schema 2 (what the gateway reads), then `shifterimg -v pull docker:IMAGE`;
- shifter, `--via import`: the image exported as a squashfs and posted to the gateway's import
  (bench/shifter.py);
- apptainer: build a SIF in the run directory, from the archive or `docker://IMAGE`;
- charliecloud: export the image from the ocibuild store as a squashfs in the run directory
  (`ocibuild export --format squashfs`), which `ch-run` mounts with squashfuse;
- native: nothing (the workload runs from the host).
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ocibuild.errors import BenchError, NotFoundError
from ocibuild.progress import Message, Reporter, silent
from ocibuild.store import Store
from ocibuild.study.shifter import (
    ShifterRoute,
    export_argv,
    plan_route,
    request_import,
    route_commands,
)
from ocibuild.study.targets import ShifterOptions, Target


@dataclass(frozen=True)
class PreparedImage:
    ref: str | None  # as the user named it
    runtime_image: str | None  # as the job scripts name it
    digest: str | None = None  # manifest digest, when the image came from the ocibuild store
    image_id: str | None = None  # the runtime's id for it
    commands: list[str] = field(default_factory=list)
    pushed_digest: str | None = None  # the manifest as pushed for the target (Docker form)
    run_options: tuple[str, ...] = ()  # what the runs need here before the target's (study/fit.py)


SQUASHFS = "image.sqfs"


def podman_hpc_squash_dir(target: Target, env: Mapping[str, str] | None = None) -> Path:
    """The squash store podman-hpc uses: its `--squash-dir` in the target's command, else
    $SQUASH_DIR, else $SCRATCH/storage, else /tmp/storage (podman-hpc's SiteConfig)."""
    command = target.runtime_command
    for i, word in enumerate(command):
        if word == "--squash-dir" and i + 1 < len(command):
            return Path(command[i + 1])
        if word.startswith("--squash-dir="):
            return Path(word.split("=", 1)[1])
    env = env if env is not None else {**os.environ, **target.env}
    if "SQUASH_DIR" in env:
        return Path(env["SQUASH_DIR"])
    return Path(f"{env.get('SCRATCH', '/tmp')}/storage")


def run_command(
    argv: list[str], env: dict[str, str], what: str, timeout: float | None = None
) -> str:
    try:
        proc = subprocess.run(
            argv, env=env, check=False, capture_output=True, text=True, timeout=timeout
        )
    except FileNotFoundError:
        raise BenchError(f"{what}: command {argv[0]!r} not found") from None
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what}: {shlex.join(argv)} did not finish in {timeout:.0f}s") from None
    if proc.returncode != 0:
        raise BenchError(
            f"{what}: {shlex.join(argv)} failed ({proc.returncode}):\n{proc.stderr.strip()}"
        )
    return proc.stdout


def _store_image(store: Store | None, ref: str) -> str | None:
    if store is None:
        return None
    try:
        return str(store.image(ref).descriptor.digest)
    except NotFoundError:
        return None


def shifter_route(
    target: Target,
    ref: str,
    store: Store | None,
    workdir: Path,
    via: str = "pull",
    required: bool = True,
) -> ShifterRoute:
    return plan_route(target, ref, via, bool(_store_image(store, ref)), workdir.parent, required)


def runtime_image(
    target: Target,
    ref: str | None,
    workdir: Path,
    store: Store | None = None,
    via: str = "pull",
    required: bool = True,
) -> str | None:
    """How job scripts name the image on this target (Shifter's with its type: docker:, custom:)."""
    if not target.uses_image:
        return None
    if target.runtime == "shifter" and ref:
        return shifter_route(target, ref, store, workdir, via, required).image
    if target.runtime == "charliecloud":
        return str(workdir / SQUASHFS)
    return str(workdir / "image.sif") if target.runtime == "apptainer" else ref


def plan_prepare(
    target: Target,
    ref: str | None,
    archive: Path | None,
    store: Store | None,
    workdir: Path,
    via: str = "pull",
    insecure: bool = False,
    required: bool = True,
) -> list[str]:
    """What `prepare_image` will do, as shell lines (for --dry-run and the run's metadata)."""
    if not target.uses_image:
        return []
    if target.runtime == "shifter":
        if not ref:
            return []
        route = shifter_route(target, ref, store, workdir, via, required)
        return route_commands(target, route, store.root if store else None, insecure)
    if target.runtime == "charliecloud":
        squashfs = shlex.quote(str(workdir / SQUASHFS))
        return [f"ocibuild export {shlex.quote(ref or '')} --format squashfs -o {squashfs}"]
    runtime = shlex.join(target.runtime_command)
    if target.runtime == "podman-hpc" and archive is None and ref and _store_image(store, ref):
        squash = shlex.quote(str(podman_hpc_squash_dir(target)))
        return [f"ocibuild export {shlex.quote(ref)} --format podman-hpc -o {squash}"]
    if archive is None and ref and _store_image(store, ref):
        archive = workdir / "image.tar"
        steps = [
            f"ocibuild export {shlex.quote(ref)} --format docker-archive -o {shlex.quote(str(archive))}"
        ]
    else:
        steps = []
    if target.runtime == "apptainer":
        source = f"docker-archive:{archive}" if archive else f"docker://{ref}"
        return [
            *steps,
            f"{runtime} build --force {shlex.quote(str(workdir / 'image.sif'))} {shlex.quote(source)}",
        ]
    if archive:
        steps.append(f"{runtime} load -i {shlex.quote(str(archive))}")
        if target.runtime == "podman-hpc":
            steps.append(f"{runtime} migrate {shlex.quote(ref or '')}")
        return steps
    return [
        f"{runtime} image inspect {shlex.quote(ref or '')} || {runtime} pull {shlex.quote(ref or '')}"
    ]


def prepare_image(
    target: Target,
    ref: str | None,
    env: dict[str, str],
    workdir: Path,
    archive: Path | None = None,
    store: Store | None = None,
    report: Reporter = silent,
    via: str = "pull",
    insecure: bool = False,
) -> PreparedImage:
    if not target.uses_image:
        return PreparedImage(None, None)
    if not ref:
        raise BenchError(f"target {target.name} runs a container: give the image (--image REF)")
    commands = plan_prepare(target, ref, archive, store, workdir, via, insecure)
    digest = _store_image(store, ref)
    if target.runtime == "charliecloud":
        return _prepare_squashfs(target, ref, archive, store, digest, workdir, commands, report)
    if target.runtime == "podman-hpc" and archive is None and digest and store is not None:
        return _prepare_podman_hpc(target, ref, store, digest, env, commands, report)
    runtime = target.runtime_command
    what = f"preparing {ref} for {target.name}"
    if target.runtime == "shifter":
        route = shifter_route(target, ref, store, workdir, via)
        prepared = PreparedImage(ref, route.image, digest, None, commands)
        return _prepare_shifter(target, route, prepared, env, store, report, insecure)
    exported = None
    if archive is None and digest and store is not None:
        from ocibuild.store.export import export_image

        archive = exported = workdir / "image.tar"
        report(Message(f"exporting {ref} from the store for {target.runtime}"))
        export_image(store, ref, "docker-archive", archive)
    try:
        if target.runtime == "apptainer":
            sif = Path(runtime_image(target, ref, workdir) or "")
            source = f"docker-archive:{archive}" if archive else f"docker://{ref}"
            report(Message(f"building {sif.name} from {source}"))
            run_command([*runtime, "build", "--force", str(sif), source], env, what)
            return PreparedImage(ref, str(sif), digest, None, commands)
        if archive:
            report(Message(f"loading {archive.name} into {target.runtime}"))
            run_command([*runtime, "load", "-i", str(archive)], env, what)
            if target.runtime == "podman-hpc":
                report(Message(f"podman-hpc migrate {ref}"))
                run_command([*runtime, "migrate", ref], env, what)
        elif (
            subprocess.run(
                [*runtime, "image", "inspect", ref], env=env, check=False, capture_output=True
            ).returncode
            != 0
        ):
            report(Message(f"pulling {ref} with {target.runtime}"))
            reason = f"not in the store {store.root}" if store is not None else "no ocibuild store"
            run_command(
                [*runtime, "pull", ref], env, f"{what} ({reason}; {target.runtime} pulls it)"
            )
        image_id = run_command(
            [*runtime, "image", "inspect", "--format", "{{.Id}}", ref], env, what
        ).strip()
        return PreparedImage(ref, ref, digest, image_id, commands)
    finally:
        if exported is not None:
            exported.unlink(missing_ok=True)


def _prepare_shifter(
    target: Target,
    route: ShifterRoute,
    prepared: PreparedImage,
    env: dict[str, str],
    store: Store | None,
    report: Reporter,
    insecure: bool,
) -> PreparedImage:
    what = f"preparing {route.ref} for {target.name}"
    if route.via == "import":
        assert store is not None and route.squashfs is not None and route.gateway is not None
        route.squashfs.parent.mkdir(parents=True, exist_ok=True)
        report(Message(f"exporting {route.ref} to {route.squashfs}"))
        run_command(export_argv(store.root, route.ref, route.squashfs), env, what)
        report(Message(f"importing {route.image} through {route.gateway.url}"))
        munge = (target.shifter or ShifterOptions()).munge
        credential = run_command(munge, env, f"{what}: a munge credential").strip()
        record = request_import(route, credential)
        return dataclasses.replace(prepared, image_id=str(record.get("id") or "") or None)
    pushed = None
    if route.push:
        assert store is not None
        from ocibuild.remote import RemoteOptions, push_image

        report(Message(f"pushing {route.ref} (Docker v2 schema 2) for Shifter's gateway"))
        options = RemoteOptions(insecure=insecure, format="docker")
        pushed = str(push_image(store, route.ref, options, report).digest)
    report(Message(f"shifterimg -v pull {route.image}"))
    run_command([f"{target.runtime_command[0]}img", "-v", "pull", route.image], env, what)
    return dataclasses.replace(prepared, pushed_digest=pushed)


def _prepare_squashfs(
    target: Target,
    ref: str,
    archive: Path | None,
    store: Store | None,
    digest: str | None,
    workdir: Path,
    commands: list[str],
    report: Reporter,
) -> PreparedImage:
    if archive is not None:
        raise BenchError(
            f"target {target.name} runs a squashfs exported from the ocibuild store: "
            "give --image REF, not --archive"
        )
    if digest is None or store is None:
        raise BenchError(
            f"target {target.name} runs a squashfs exported from the ocibuild store, "
            f"which has no {ref} (build it, or `ocibuild pull {ref}`)"
        )
    from ocibuild.store.export import export_image

    squashfs = workdir / SQUASHFS
    report(Message(f"exporting {ref} from the store as {squashfs}"))
    export_image(store, ref, "squashfs", squashfs)
    return PreparedImage(ref, str(squashfs), digest, None, commands)


def _prepare_podman_hpc(
    target: Target,
    ref: str,
    store: Store,
    digest: str,
    env: dict[str, str],
    commands: list[str],
    report: Reporter,
) -> PreparedImage:
    from ocibuild.store.export import export_image

    squash = podman_hpc_squash_dir(target, env)
    report(Message(f"exporting {ref} into podman-hpc's squash store {squash}"))
    export_image(store, ref, "podman-hpc", squash, report=report)
    image_id = store.image(ref).manifest.config.digest.hex
    return PreparedImage(ref, ref, digest, image_id, commands)
