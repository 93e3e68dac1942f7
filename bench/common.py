"""Shared by the benchmarks: timing commands with peak memory, and printing ratio tables."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


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
