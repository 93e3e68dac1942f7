"""The study workload (ocibuild/study/art_study.c, shipped with the package): its size, its
command line, and its build as one static binary (gcc -static with the distribution's static
sqlite3 and zlib), so that it runs unchanged natively and in any image."""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ocibuild.errors import BenchError
from ocibuild.fetch import default_cache_dir
from ocibuild.outpath import output_name

SOURCE = Path(__file__).resolve().parent / "art_study.c"
PACKAGE_CHECKOUT = Path(__file__).resolve().parents[2]
BUILT = Path("bench") / "workloads" / "build" / "art-study"
PROGRAM = "art-study"
LIBRARIES = ["-lsqlite3", "-lz", "-lm", "-lpthread"]
PT_INTERP = 3


@dataclass(frozen=True)
class StudySize:
    """The paper's art study: 500 events of 250,000 integers, 10 worker modules."""

    events: int = 500
    ints: int = 250_000
    modules: int = 10

    def __post_init__(self) -> None:
        if self.events < 1 or self.ints < 1 or self.modules < 1:
            raise BenchError(f"the study needs at least one event, integer and module, got {self}")


def study_command(size: StudySize, program: str = PROGRAM) -> str:
    """The shell command running the study in the current directory."""
    return shlex.join(
        [
            program,
            "--events",
            str(size.events),
            "--ints",
            str(size.ints),
            "--modules",
            str(size.modules),
            "--output-dir",
            ".",
        ]
    )


def default_binary() -> Path:
    """Where recipes/bench-study.yaml takes the workload from: bench/workloads/build/ of the
    checkout, be it this package's (an editable install) or the current directory (a checkout
    after `pip install .`); outside a checkout, ocibuild's cache."""
    for root in (PACKAGE_CHECKOUT, Path.cwd()):
        if (root / "recipes" / "bench-study.yaml").is_file():
            return root / BUILT
    return default_cache_dir() / "bench" / "art-study"


def build_workload(output: Path | None = None, source: Path = SOURCE, cc: str = "gcc") -> Path:
    """Compile the workload statically to `output` (by the output-path policy: under a
    temporary name, then renamed), else to `default_binary()`."""
    if output is None:
        output = default_binary()
        output.parent.mkdir(parents=True, exist_ok=True)  # ours, not a path the user gave
    if not source.is_file():
        raise BenchError(f"workload source {source} does not exist: reinstall ocibuild")
    with output_name(output, mode=0o755) as target:
        argv = [cc, "-O2", "-static", "-o", str(target), str(source), *LIBRARIES]
        try:
            proc = subprocess.run(argv, check=False, capture_output=True, text=True)
        except FileNotFoundError:
            raise BenchError(f"cannot build the workload: compiler {cc!r} not found") from None
        if proc.returncode != 0:
            raise BenchError(
                f"building {source} failed ({shlex.join(argv)}); it needs gcc and the static libraries "
                f"of libsqlite3-dev and zlib1g-dev:\n{proc.stderr.strip()}"
            )
        if target.is_file() and not is_static(target):
            raise BenchError(f"{cc} did not produce a static binary from {source}")
    return output


def is_static(binary: Path) -> bool:
    """True for an ELF executable without a program interpreter (no dynamic loader)."""
    with open(binary, "rb") as f:
        header = f.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2:
            return False
        order: Literal["little", "big"] = "little" if header[5] == 1 else "big"
        phoff = int.from_bytes(header[32:40], order)
        phentsize = int.from_bytes(header[54:56], order)
        phnum = int.from_bytes(header[56:58], order)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    types = (int.from_bytes(table[i : i + 4], order) for i in range(0, len(table), phentsize))
    return PT_INTERP not in types


def ensure_workload(binary: Path | None = None) -> Path:
    """The built workload, building it first when it is missing or older than its source."""
    target = binary or default_binary()
    if target.is_file() and (
        not SOURCE.is_file() or target.stat().st_mtime >= SOURCE.stat().st_mtime
    ):
        return target
    return build_workload(binary)
