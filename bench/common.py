"""Shared by the benchmarks: their command line and work directory, the payload image's recipe,
timing commands with peak memory, and printing ratio tables."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from payload import generate

PAYLOAD_RECIPE = """\
source_date_epoch: 1451606400
images:
  - name: localhost/bench/payload:latest
    layers:
      - files: [{src: payload, dest: /payload}]
"""


def argument_parser(description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def add_payload_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size-mb", type=int, default=1000)
    parser.add_argument("--files", type=int, default=12000)


def workdir(given: Path | None, prefix: str) -> Path:
    """The directory given, or a new temporary one."""
    work = given or Path(tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    return work


def payload_recipe(work: Path, size_mb: int, files: int) -> Path:
    """WORK/payload.yaml, a one-layer image of the payload WORK/payload (generated once)."""
    payload = work / "payload"
    if not payload.exists():
        print(f"generating {size_mb} MB payload in {files} files under {payload} ...", flush=True)
        generate(payload, size_mb, files)
    recipe = work / "payload.yaml"
    recipe.write_text(PAYLOAD_RECIPE)
    return recipe


def fresh(work: Path, name: str) -> Path:
    """WORK/NAME, removed if it was there."""
    path = work / name
    shutil.rmtree(path, ignore_errors=True)
    return path


@dataclass(frozen=True)
class Timing:
    name: str
    seconds: float
    peak_mb: float


def timed(
    name: str, command: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> Timing:
    """Run a shell command under GNU time; wall seconds and the peak RSS of its largest process."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        proc = subprocess.run(
            [
                "/usr/bin/time",
                "-o",
                out.name,
                "-f",
                "%e %M",
                "bash",
                "-o",
                "pipefail",
                "-c",
                command,
            ],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed ({proc.returncode}): {command}\n{proc.stderr[-2000:]}")
        seconds, peak_kb = out.read().split()[-2:]
    return Timing(name, float(seconds), int(peak_kb) / 1024)


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def table(timings: list[Timing], reference: str) -> str:
    ref = next(t for t in timings if t.name == reference)
    lines = [f"{'tool':<44} {'seconds':>8} {'peak MB':>8} {'x ' + reference:>20}"]
    for t in timings:
        lines.append(
            f"{t.name:<44} {t.seconds:>8.2f} {t.peak_mb:>8.0f} {t.seconds / ref.seconds:>20.2f}"
        )
    return "\n".join(lines)
