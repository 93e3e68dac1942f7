"""Run the real podman-hpc (PyPI `podman-hpc` 1.2.2) the way it works on these machines, each
test in its own directory: its graph root, run root, squash store, site config and
containers.conf, nothing read from /etc/podman_hpc or ~/.config. docs/podman-hpc-layout.md
explains every setting.

    hpc = PodmanHPC.create(tmp_path / "phpc", mksquashfs=build_static_mksquashfs())
    hpc("load", "-i", "demo.tar")               # into the user's graph root
    hpc.migrate("localhost/ocibuild/demo:latest")  # into the squash store (SQUASH_DIR)
    hpc.run("localhost/ocibuild/demo:latest", "art")
    hpc.cleanup()                                # squashfuse mounts left by a killed run

What it needs here: podman (runc; crun refuses this machine's hybrid cgroups), fuse-overlayfs,
squashfuse, inotify-tools (fuse-overlayfs-wrap waits with inotifywait to unmount the squash;
without it squashfuse mounts are left behind), podman-hpc and its fuse-overlayfs-wrap on PATH
(they are installed beside the Python that installed them), and USER set.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testsupport.commands import tool

PODMAN_HPC_VERSION = "1.2.2"

# podman as root raises RLIMIT_NOFILE and RLIMIT_NPROC to 1048576 unless containers.conf holds
# an empty default_ulimits list (then it sets no rlimits and the container inherits ours); crun
# also refuses hybrid cgroup v1 + v2 mounts. podman-hpc passes --cgroup-manager cgroupfs itself.
CONTAINERS_CONF = """\
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""

BUILD_STATIC_MKSQUASHFS = Path(__file__).with_name("build-static-mksquashfs")
CAP_SYS_RESOURCE = 24
PODMAN_ROOT_RLIMIT = 1048576  # what rootful podman sets RLIMIT_NOFILE and RLIMIT_NPROC to


def podman_hpc_bindir() -> Path | None:
    """The directory holding podman-hpc and fuse-overlayfs-wrap: on PATH, or beside this
    Python (a venv's bin, pyenv's bin), where pip puts console scripts and data scripts."""
    for candidate in (shutil.which("podman-hpc"), str(Path(sys.executable).parent / "podman-hpc")):
        if candidate and os.access(candidate, os.X_OK):
            bindir = Path(candidate).parent
            if (bindir / "fuse-overlayfs-wrap").exists():
                return bindir
    return None


def missing_tools() -> list[str]:
    """What podman-hpc needs here and is not installed (empty when it can run)."""
    missing = [
        t for t in ("podman", "runc", "fuse-overlayfs", "inotifywait") if not shutil.which(t)
    ]
    if not (shutil.which("squashfuse_ll") or shutil.which("squashfuse")):
        missing.append("squashfuse")
    if podman_hpc_bindir() is None:
        missing.append(f"podman-hpc=={PODMAN_HPC_VERSION} (pip)")
    if not os.path.exists("/dev/fuse"):
        missing.append("/dev/fuse")
    return missing


def build_static_mksquashfs(cache: Path | None = None) -> Path:
    """testsupport/build-static-mksquashfs: a cached static mksquashfs >= 4.6 for `migrate`."""
    args = [str(BUILD_STATIC_MKSQUASHFS)] + ([str(cache)] if cache else [])
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=1800).stdout
    return Path(out.strip().splitlines()[-1])


def podman_rlimit_problem() -> str | None:
    """One line saying why rootful podman's default rlimits fail here, or None. Cheap: no
    podman run. Without CAP_SYS_RESOURCE a process cannot raise a hard limit, and podman sets
    RLIMIT_NOFILE and RLIMIT_NPROC to 1048576 unless containers.conf has `default_ulimits = []`."""
    cap_eff = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("CapEff:"):
                cap_eff = int(line.split()[1], 16)
    if cap_eff >> CAP_SYS_RESOURCE & 1:
        return None
    low = [
        f"{name} hard limit {hard}"
        for name, limit in (
            ("RLIMIT_NOFILE", resource.RLIMIT_NOFILE),
            ("RLIMIT_NPROC", resource.RLIMIT_NPROC),
        )
        for hard in [resource.getrlimit(limit)[1]]
        if hard != resource.RLIM_INFINITY and hard < PODMAN_ROOT_RLIMIT
    ]
    if not low:
        return None
    return (
        f"podman cannot set its default rlimits here ({', '.join(low)} < {PODMAN_ROOT_RLIMIT}, "
        "no CAP_SYS_RESOURCE): put `[containers] default_ulimits = []` and "
        '`[engine] runtime = "runc"` in containers.conf (CONTAINERS_CONF=...)'
    )


def podman_probe(podman: list[str], env: dict[str, str], rootfs: Path) -> str | None:
    """Run `true` in a container of a one-file rootfs (a static busybox), no image needed
    (0.15-0.4 s): None when podman can run containers with these args and env, else the
    runtime's error line (`crun: setrlimit RLIMIT_NOFILE: Operation not permitted`, ...)."""
    busybox = shutil.which("busybox")
    if busybox is None:
        return "no busybox to probe with"
    rootfs.mkdir(parents=True, exist_ok=True)
    if not (rootfs / "busybox").exists():
        shutil.copy2(busybox, rootfs / "busybox")
    proc = subprocess.run(
        [*podman, "run", "--rm", "--network", "none", "--rootfs", str(rootfs), "/busybox", "true"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode == 0:
        return None
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"podman exited {proc.returncode}"


@dataclass(frozen=True)
class PodmanHPC:
    root: Path
    bindir: Path
    mksquashfs: Path | None = None

    @classmethod
    def create(
        cls, root: Path, mksquashfs: Path | None = None, squash_dir: Path | None = None
    ) -> PodmanHPC:
        bindir = podman_hpc_bindir()
        if bindir is None:
            raise RuntimeError(
                f"podman-hpc not installed: pip install podman-hpc=={PODMAN_HPC_VERSION}"
            )
        root.mkdir(parents=True, exist_ok=True)
        for sub in ("modules.d", "hooks.d", "config"):
            (root / sub).mkdir(exist_ok=True)
        (root / "containers.conf").write_text(CONTAINERS_CONF)
        site = {
            "graph_root_template": str(root / "graph"),
            "run_root_template": str(root / "run"),
            "config_home_template": str(root / "config"),
            "modules_dir": str(root / "modules.d"),
            "hooks_dir": str(root / "hooks.d"),
        }
        if mksquashfs is not None:
            site["mksquashfs_bin"] = str(mksquashfs)
        # podman-hpc reads YAML; JSON is YAML.
        (root / "podman_hpc.yaml").write_text(json.dumps(site, indent=1) + "\n")
        if squash_dir is not None:
            (root / "squash_dir").write_text(str(squash_dir))
        return cls(root, bindir, mksquashfs)

    @property
    def squash_dir(self) -> Path:
        pinned = self.root / "squash_dir"
        return Path(pinned.read_text()) if pinned.exists() else self.root / "squash"

    @property
    def graph_root(self) -> Path:
        return self.root / "graph"

    @property
    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "PATH": f"{self.bindir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "USER": os.environ.get("USER") or "root",  # SiteConfig: os.getlogin() else $USER
            "CONTAINERS_CONF": str(self.root / "containers.conf"),  # rootful podman ignores XDG
            "PODMANHPC_CONFIG_FILE": str(self.root / "podman_hpc.yaml"),
            "SQUASH_DIR": str(self.squash_dir),  # not a site-config key: env or --squash-dir
        }
        env.pop("XDG_RUNTIME_DIR", None)
        return env

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return tool(
            [str(self.bindir / "podman-hpc"), *args],
            self.env,
            "podman-hpc",
            check=check,
            timeout=timeout,
        )

    def run(self, image: str, *command: str, extra: tuple[str, ...] = ()) -> str:
        """`podman-hpc run --rm --network none IMAGE COMMAND...`, returning stdout."""
        return self("run", "--rm", "--network", "none", *extra, image, *command).stdout

    def images(self) -> list[dict[str, Any]]:
        """`podman-hpc images --format json`: the graph root's and the squash store's (ReadOnly)."""
        return json.loads(self("images", "--format", "json").stdout or "[]")

    def migrate(self, image: str) -> None:
        """`podman-hpc migrate`; it exits 0 even when the squash fails, so check the store."""
        self("migrate", image)

    def rmsqi(self, image: str) -> None:
        """Remove a migrated image from the squash store (`podman-hpc rmi` cannot: R/O)."""
        self("rmsqi", image)

    def cleanup(self) -> None:
        """Unmount what podman and a killed run leave mounted under root or the squash store:
        the overlay driver's private bind mount of graph/overlay (it stays after podman exits),
        fuse-overlayfs merged dirs, squashfuse mounts of overlay/<layer>/diff."""
        unmount_under(self.root)
        unmount_under(self.squash_dir)


def unmount_under(path: Path) -> None:
    """Lazily unmount every mount point at or under path, deepest first, until none is left
    (mounts stack: podman's bind mount of graph/overlay can be there twice)."""
    prefix = str(path.resolve())
    for _ in range(20):
        with open("/proc/self/mountinfo") as mountinfo:
            points = [line.split()[4].replace("\\040", " ") for line in mountinfo]
        inside = [p for p in points if p == prefix or p.startswith(prefix + "/")]
        if not inside:
            return
        for point in sorted(inside, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def remove_tree(path: Path, attempts: int = 50) -> None:
    """Unmount and remove a podman-hpc test directory. Retries: after `run --rm` returns,
    conmon's `podman container cleanup` may still be writing under the graph root."""
    for attempt in range(attempts):
        unmount_under(path)
        try:
            shutil.rmtree(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1)
