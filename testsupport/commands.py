"""Running a real tool (podman, podman-hpc) the tests drive: its output as text, and an
AssertionError with its stderr when it must succeed and did not."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence


def tool(
    argv: Sequence[str], env: Mapping[str, str], name: str, *, check: bool, timeout: float
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(argv), env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{name} {' '.join(argv[1:])} failed ({proc.returncode}):\n{proc.stderr}"
        )
    return proc
