"""Run the real podman the way it works on these machines (DESIGN.md): runc, vfs storage,
no ulimits, no network. Each test session gets its own podman root under a temp directory."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from testsupport.commands import tool

CONTAINERS_CONF = """\
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_backend = "netavark"
"""


@dataclass(frozen=True)
class Podman:
    root: Path

    @classmethod
    def create(cls, root: Path) -> Podman:
        root.mkdir(parents=True, exist_ok=True)
        (root / "containers.conf").write_text(CONTAINERS_CONF)
        return cls(root)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(self.root / "containers.conf")}

    @property
    def base_args(self) -> list[str]:
        return [
            "podman",
            "--root",
            str(self.root / "storage"),
            "--runroot",
            str(self.root / "run"),
            "--storage-driver",
            "vfs",
            "--runtime",
            "runc",
            "--cgroup-manager",
            "cgroupfs",
        ]

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return tool([*self.base_args, *args], self.env, "podman", check=check, timeout=timeout)

    def run(self, image: str, *command: str, extra: tuple[str, ...] = ()) -> str:
        """`podman run --rm --network none IMAGE COMMAND...`, returning stdout."""
        return self("run", "--rm", "--network", "none", *extra, image, *command).stdout
