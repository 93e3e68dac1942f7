"""Helpers of the OS package tests: write a layer from a source plan, read it back, ask dnf."""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
from pathlib import Path

from ocibuild.compression import Compression
from ocibuild.layer.blob import Layer
from ocibuild.layer.writer import write_layer
from ocibuild.sources.base import LayerPlan


def write_plan(plan: LayerPlan) -> tuple[Layer, dict[str, tuple[tarfile.TarInfo, bytes]]]:
    """Write the plan's layer (uncompressed) and read it back: path -> (member, content)."""
    sink = io.BytesIO()
    blob = write_layer(plan.entries(), sink, Compression("none"), mtime=1451606400)
    members: dict[str, tuple[tarfile.TarInfo, bytes]] = {}
    with tarfile.open(fileobj=io.BytesIO(sink.getvalue())) as tar:
        for info in tar:
            f = tar.extractfile(info) if info.isfile() else None
            members[info.name.rstrip("/")] = (info, f.read() if f else b"")
    return blob, members


_INSTALLING = re.compile(r"^ (\S+)\s+(\S+)\s+(\S+)\s+\S+\s+[\d.]+ \w?$")


def dnf_resolution(repo_url: str, root: Path, requests: list[str]) -> set[str]:
    """What dnf would install for `requests` into an empty root: {name-[e:]v-r.arch}."""
    root.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [
            "dnf",
            f"--installroot={root}",
            "--releasever=1",
            "--setopt=reposdir=/dev/null",
            f"--setopt=cachedir={root}/cache",
            f"--repofrompath=test,{repo_url}",
            "--nogpgcheck",
            "--assumeno",
            "install",
            *requests,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if "Dependencies resolved." not in proc.stdout:
        raise AssertionError(f"dnf could not resolve {requests}:\n{proc.stdout}\n{proc.stderr}")
    table = proc.stdout.split("Installing:", 1)[1].split("Transaction Summary", 1)[0]
    found = set()
    for line in table.splitlines():
        match = _INSTALLING.match(line)
        if match:
            name, arch, version = match.groups()
            found.add(f"{name}-{version}.{arch}")
    return found
