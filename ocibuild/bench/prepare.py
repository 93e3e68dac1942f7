"""Make the image available where the target runs it, before any job starts.

- podman, docker, podman-hpc: `load -i` an archive (given, or exported from the ocibuild store
  when the image is there), else `pull` unless the runtime has it already;
- shifter: `shifterimg -v pull docker:IMAGE` (the image must be in a registry Shifter reaches);
- apptainer: build a SIF in the run directory, from the archive or `docker://IMAGE`;
- native: nothing (the workload runs from the host).
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ocibuild.bench.targets import Target
from ocibuild.errors import BenchError, NotFoundError
from ocibuild.progress import Message, Reporter, silent
from ocibuild.store import Store


@dataclass(frozen=True)
class PreparedImage:
    ref: str | None  # as the user named it
    runtime_image: str | None  # as the job scripts name it
    digest: str | None = None  # manifest digest, when the image came from the ocibuild store
    image_id: str | None = None  # the runtime's id for it
    commands: list[str] = field(default_factory=list)


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


def runtime_image(target: Target, ref: str | None, workdir: Path) -> str | None:
    """How job scripts name the image on this target."""
    if not target.uses_image:
        return None
    return str(workdir / "image.sif") if target.runtime == "apptainer" else ref


def plan_prepare(
    target: Target, ref: str | None, archive: Path | None, store: Store | None, workdir: Path
) -> list[str]:
    """What `prepare_image` will do, as shell lines (for --dry-run and the run's metadata)."""
    if not target.uses_image:
        return []
    runtime = shlex.join(target.runtime_command)
    if archive is None and ref and target.runtime != "shifter" and _store_image(store, ref):
        archive = workdir / "image.tar"
        steps = [
            f"ocibuild export {shlex.quote(ref)} --format docker-archive -o {shlex.quote(str(archive))}"
        ]
    else:
        steps = []
    if target.runtime == "shifter":
        return [f"{shlex.quote(target.runtime_command[0] + 'img')} -v pull docker:{ref}"]
    if target.runtime == "apptainer":
        source = f"docker-archive:{archive}" if archive else f"docker://{ref}"
        return [
            *steps,
            f"{runtime} build --force {shlex.quote(str(workdir / 'image.sif'))} {shlex.quote(source)}",
        ]
    if archive:
        return [*steps, f"{runtime} load -i {shlex.quote(str(archive))}"]
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
) -> PreparedImage:
    if not target.uses_image:
        return PreparedImage(None, None)
    if not ref:
        raise BenchError(f"target {target.name} runs a container: give the image (--image REF)")
    commands = plan_prepare(target, ref, archive, store, workdir)
    digest = _store_image(store, ref)
    runtime = target.runtime_command
    what = f"preparing {ref} for {target.name}"
    exported = None
    if archive is None and digest and store is not None and target.runtime != "shifter":
        from ocibuild.store.export import export_image

        archive = exported = workdir / "image.tar"
        report(Message(f"exporting {ref} from the store for {target.runtime}"))
        export_image(store, ref, "docker-archive", archive)
    try:
        if target.runtime == "shifter":
            report(Message(f"shifterimg -v pull docker:{ref}"))
            run_command([f"{runtime[0]}img", "-v", "pull", f"docker:{ref}"], env, what)
            return PreparedImage(ref, ref, digest, None, commands)
        if target.runtime == "apptainer":
            sif = Path(runtime_image(target, ref, workdir) or "")
            source = f"docker-archive:{archive}" if archive else f"docker://{ref}"
            report(Message(f"building {sif.name} from {source}"))
            run_command([*runtime, "build", "--force", str(sif), source], env, what)
            return PreparedImage(ref, str(sif), digest, None, commands)
        if archive:
            report(Message(f"loading {archive.name} into {target.runtime}"))
            run_command([*runtime, "load", "-i", str(archive)], env, what)
        elif (
            subprocess.run(
                [*runtime, "image", "inspect", ref], env=env, check=False, capture_output=True
            ).returncode
            != 0
        ):
            report(Message(f"pulling {ref} with {target.runtime}"))
            run_command([*runtime, "pull", ref], env, what)
        image_id = run_command(
            [*runtime, "image", "inspect", "--format", "{{.Id}}", ref], env, what
        ).strip()
        return PreparedImage(ref, ref, digest, image_id, commands)
    finally:
        if exported is not None:
            exported.unlink(missing_ok=True)
