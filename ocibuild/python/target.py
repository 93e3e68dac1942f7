"""The Python a layer installs for: its version, platform (libc and machine) and interpreter
path, the wheel tags it accepts in order of preference, and its marker environment.

Everything comes from the image (its python3.X and libc6 packages) or the recipe, never from
the host running the build: `packaging.tags` computes tags for an explicit version, ABI and
platform list, which is built here from the image's glibc (the manylinux rule, PEP 600: a
`manylinux_2_M` wheel runs on glibc 2.N for every N >= M).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from packaging.tags import Tag, compatible_tags, cpython_tags

MACHINES = ("x86_64", "aarch64")
DEBIAN_MACHINES = {"amd64": "x86_64", "arm64": "aarch64"}
# the oldest manylinux each machine has wheels for, and PEP 599's legacy aliases
MANYLINUX_FLOOR = {"x86_64": 5, "aarch64": 17}
LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
PLATFORM = re.compile(r"manylinux_(\d+)_(\d+)_(\w+)")
VERSION = re.compile(r"(3)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> tuple[int, int, int]:
    """`3.11` or `3.11.2` as numbers (a missing micro version is 0)."""
    match = VERSION.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a Python 3 version like 3.11 or 3.11.2")
    return int(match[1]), int(match[2]), int(match[3] or 0)


def parse_platform(text: str) -> tuple[tuple[int, int], str]:
    """`manylinux_2_36_x86_64` -> ((2, 36), "x86_64"): the glibc version and machine."""
    match = PLATFORM.fullmatch(text.strip())
    if not match or match[3] not in MACHINES:
        raise ValueError(
            f"{text!r} is not a platform like manylinux_2_36_x86_64 "
            f"(glibc 2.36; machines: {', '.join(MACHINES)})"
        )
    return (int(match[1]), int(match[2])), match[3]


@dataclass(frozen=True)
class TargetPython:
    """The image's Python: `version` (major, minor, micro), the glibc it links against, the
    machine, and the interpreter path its scripts name in their shebang."""

    version: tuple[int, int, int]
    glibc: tuple[int, int]
    machine: str
    interpreter: str

    @property
    def short(self) -> str:
        """`3.11`"""
        return f"{self.version[0]}.{self.version[1]}"

    @property
    def abi(self) -> str:
        """`cp311`"""
        return f"cp{self.version[0]}{self.version[1]}"

    @property
    def platform(self) -> str:
        return f"manylinux_{self.glibc[0]}_{self.glibc[1]}_{self.machine}"

    def describe(self) -> str:
        return f"CPython {self.short} ({self.platform})"

    def platforms(self) -> list[str]:
        """The platform tags the image runs, best first: manylinux down to the oldest, then
        the plain `linux_<machine>` (wheels built on and for this very platform)."""
        major, minor = self.glibc
        out = []
        for m in range(minor, MANYLINUX_FLOOR[self.machine] - 1, -1):
            out.append(f"manylinux_{major}_{m}_{self.machine}")
            if m in LEGACY_MANYLINUX:
                out.append(f"{LEGACY_MANYLINUX[m]}_{self.machine}")
        out.append(f"linux_{self.machine}")
        return out

    @cached_property
    def tags(self) -> list[Tag]:
        """Every tag a wheel for this Python may carry, best first (as pip orders them)."""
        version = self.version[:2]
        platforms = self.platforms()
        return [
            *cpython_tags(version, [self.abi, "abi3", "none"], platforms),
            *compatible_tags(version, self.abi, platforms),
        ]

    @cached_property
    def tag_rank(self) -> dict[Tag, int]:
        return {tag: rank for rank, tag in enumerate(self.tags)}

    def marker_environment(self) -> dict[str, str]:
        """PEP 508's environment markers for this Python on Linux."""
        full = ".".join(map(str, self.version))
        return {
            "implementation_name": "cpython",
            "implementation_version": full,
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": full,
            "python_version": self.short,
            "sys_platform": "linux",
        }
