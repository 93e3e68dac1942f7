"""Bench targets as data: one YAML file per site (bench/targets/*.yaml; users add their own).

A target says how the workload runs there: the container runtime (or none), the scheduler
(run here, or a Slurm batch job), the runtime's command and options, where job directories go
(`scratch`), and the Slurm settings. Every error names the file and line.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ocibuild.errors import BenchError, Origin, RecipeError
from ocibuild.yamldecode import compose, decode_dataclass

RUNTIMES = ("native", "podman", "docker", "shifter", "podman-hpc", "apptainer", "charliecloud")
SCHEDULERS = ("local", "slurm")
BUILTIN_DIR = Path(__file__).resolve().parent / "targets"  # shipped in the package
TARGETS_ENV = "OCIBUILD_BENCH_TARGETS"
_DEFAULT_COMMAND = {"charliecloud": "ch-run"}
_VARIABLE = re.compile(r"\$(\w+|\{\w+\})")


def _one_of(choices: tuple[str, ...], what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(f"{what} must be one of {', '.join(choices)}, not {value!r}")
        return value

    return check


def _no_blanks(value: str) -> str:
    if any(c.isspace() for c in value):
        raise ValueError(
            f"{value!r} must not contain blanks (it is written unquoted in job scripts)"
        )
    return value


@dataclass(frozen=True)
class SlurmOptions:
    """What goes into the batch script's #SBATCH lines, and before the runs."""

    partition: str | None = None
    time: str = "00:30:00"
    constraint: str | None = None
    account: str | None = None
    qos: str | None = None
    directives: list[str] = field(default_factory=list)
    setup: list[str] = field(default_factory=list)
    origin: Origin | None = None


@dataclass(frozen=True)
class ShifterOptions:
    """Shifter's image gateway, for the import route (`--via import`, bench/shifter.py). What is
    not given comes from the site's udiRoot.conf (`imageGateway=`, `system=`)."""

    gateway: str = ""  # the gateway's URL, e.g. http://imagegw:5000
    system: str = ""  # the gateway's name for this system (udiRoot.conf `system=`)
    # Where squashfs images are exported, readable by the gateway's user; $VARIABLES as in
    # `scratch` (default: SCRATCH/images).
    images: str = field(default="", metadata={"check": _no_blanks})
    munge: list[str] = field(default_factory=lambda: ["munge", "-n"])  # prints a credential
    udiroot_conf: str = "/etc/shifter/udiRoot.conf"
    origin: Origin | None = None


@dataclass(frozen=True)
class Target:
    name: str
    runtime: str = field(metadata={"check": _one_of(RUNTIMES, "runtime")})
    description: str = ""
    scheduler: str = field(default="local", metadata={"check": _one_of(SCHEDULERS, "scheduler")})
    # The job script's interpreter: the paper's Cori script starts "#!/bin/bash -l".
    shell: str = "/bin/bash"
    # The runtime's command and global options (default: the runtime's name).
    command: list[str] = field(default_factory=list)
    # Options after `run` (podman, docker, podman-hpc), `exec` (apptainer), or of ch-run.
    run_options: list[str] = field(default_factory=list)
    # How the command starts inside the container (default: /bin/bash -cl for shifter, else /bin/sh -c).
    container_shell: list[str] = field(default_factory=list)
    mount: str = field(default="/mnt", metadata={"check": _no_blanks})
    # Where run directories are made; $VARIABLES are written as-is into job scripts.
    scratch: str = field(default="", metadata={"check": _no_blanks})
    env: dict[str, str] = field(default_factory=dict)
    slurm: SlurmOptions | None = None
    shifter: ShifterOptions | None = None
    file: str = field(default="", metadata={"internal": True})
    origin: Origin | None = None

    def __post_init__(self) -> None:
        if self.runtime == "shifter" and self.scheduler != "slurm":
            raise ValueError("shifter runs only inside Slurm jobs: set scheduler: slurm")
        if self.shifter and self.runtime != "shifter":
            raise ValueError(f"a shifter: section is for runtime shifter, not {self.runtime}")

    @property
    def runtime_command(self) -> list[str]:
        return self.command or [_DEFAULT_COMMAND.get(self.runtime, self.runtime)]

    @property
    def inner_shell(self) -> list[str]:
        if self.container_shell:
            return self.container_shell
        return ["/bin/bash", "-cl"] if self.runtime == "shifter" else ["/bin/sh", "-c"]

    @property
    def batch(self) -> SlurmOptions:
        return self.slurm or SlurmOptions()

    @property
    def uses_image(self) -> bool:
        return self.runtime != "native"


def load_target(path: Path) -> Target:
    file = str(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise BenchError(f"cannot read target file {file}: {e.strerror}") from None
    try:
        node = compose(text, file)
        if node is None:
            raise RecipeError("the target file is empty", Origin(file, 1))
        target = decode_dataclass(node, Target, file, "target")
    except RecipeError as e:
        raise BenchError(str(e)) from None
    return dataclasses.replace(target, file=file)


def target_dirs(extra: list[Path] | None = None) -> list[Path]:
    """Where targets are looked up by name: given dirs, $OCIBUILD_BENCH_TARGETS, ./bench/targets,
    then the ones shipped with ocibuild."""
    dirs = list(extra or [])
    dirs += [Path(p) for p in os.environ.get(TARGETS_ENV, "").split(os.pathsep) if p]
    dirs += [Path("bench/targets"), BUILTIN_DIR]
    return dirs


def find_target(name_or_file: str, dirs: list[Path] | None = None) -> Target:
    """A target by file path, or by name (`NAME.yaml` in the target directories)."""
    candidate = Path(name_or_file)
    if candidate.suffix in (".yaml", ".yml") or os.sep in name_or_file:
        if not candidate.is_file():
            raise BenchError(f"target file {name_or_file} does not exist")
        return load_target(candidate)
    searched = target_dirs(dirs)
    for d in searched:
        path = d / f"{name_or_file}.yaml"
        if path.is_file():
            return load_target(path)
    known = sorted({p.stem for d in searched if d.is_dir() for p in d.glob("*.yaml")})
    raise BenchError(
        f"unknown bench target {name_or_file!r}; known targets: {', '.join(known) or 'none'}"
    )


def expand_scratch(target: Target, default: Path, required: bool = True) -> Path:
    """The scratch directory as this host sees it: $VARIABLES from the environment (left as
    they are when not `required`, for showing scripts)."""
    if not target.scratch:
        return default
    return expand_path(target, "scratch", target.scratch, required)


def expand_path(target: Target, key: str, text: str, required: bool = True) -> Path:
    """A path of the target file (`key: text`) with its $VARIABLES from the environment and the
    target's `env`; left as it is when one is missing and not `required`."""
    missing = [
        m.strip("{}")
        for m in _VARIABLE.findall(text)
        if m.strip("{}") not in os.environ and m.strip("{}") not in target.env
    ]
    if missing and not required:
        return Path(text)
    if missing:
        raise BenchError(
            f"{target.file or target.name}: {key} {text!r} needs ${missing[0]}, which is not set"
        )
    env = {**os.environ, **target.env}
    return Path(_VARIABLE.sub(lambda m: env[m.group(1).strip("{}")], text))
