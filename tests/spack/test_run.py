"""The relocated binaries run: the image of the fixtures' cache, on a base holding the host's
glibc (ld.so and libc.so.6, which the packages link from the external glibc) and busybox as
/bin/sh, under the real podman and ch-run, from their prefixes and from the view."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ocibuild.store import Store
from ocibuild.store.export import export_image
from tests.podman import Podman
from tests.spack.conftest import KEY, ORACLE, REF, Served, build, export_dir, recipe

GLIBC = Path("/lib/x86_64-linux-gnu")
ROOTS = "[zlib@1.2.13, bzip2@1.0.8, xz@5.4.1, gmake@4.3, ocibuild-zpipe@1.0]"
# what the oracle's run of zpipe-where printed: its compiled-in prefixes, relocated, and zlib's
# version
WHERE = (ORACLE / "run.txt").read_text().splitlines()[3:6]


def base_files(busybox: Path) -> str:
    loader = (GLIBC / "ld-linux-x86-64.so.2").resolve()
    files = [
        (busybox, "/bin/sh"),
        (loader, "/lib64/ld-linux-x86-64.so.2"),
        (loader, f"{GLIBC}/ld-linux-x86-64.so.2"),
        ((GLIBC / "libc.so.6").resolve(), f"{GLIBC}/libc.so.6"),
    ]
    return "".join(f'          - {{src: {s}, dest: {d}, mode: "0755"}}\n' for s, d in files)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory, caches: Served, busybox: Path) -> Path:
    tmp = tmp_path_factory.mktemp("run")
    mp = pytest.MonkeyPatch()
    mp.setenv("OCIBUILD_CACHE", str(tmp / "cache"))
    entry = (
        f"{{mirror: {caches.url}/signed, specs: {ROOTS}, keys: [{KEY}], "
        "into: {root: /opt/spack, padded_length: 64}, view: /usr/local}"
    )

    class Quiet:
        def readouterr(self) -> tuple[str, str]:
            return "", ""

    try:
        build(Quiet(), recipe(tmp / "r.yaml", entry, base_files=base_files(busybox)), tmp / "store")  # type: ignore[arg-type]
    finally:
        mp.undo()
    return tmp / "store"


def test_podman_runs_the_relocated_programs(image: Path, tmp_path: Path, podman: Podman) -> None:
    archive = tmp_path / "spack.tar"
    tag = "localhost/ocibuild-spack/run:1"
    export_image(Store.open(image), REF, "oci-archive", archive, [tag])
    podman("load", "-i", str(archive))
    try:
        # found on the frozen PATH, which leads to the view at /usr/local
        assert podman.run(tag, "xz", "--version").splitlines() == [
            "xz (XZ Utils) 5.4.1",
            "liblzma 5.4.1",
        ]
        assert podman.run(tag, "make", "--version").splitlines()[0] == "GNU Make 4.3"
        assert podman.run(tag, "zpipe-where").splitlines() == WHERE
        # a script whose first line was too long for the kernel, run through sbang
        assert podman.run(tag, "zpipe-roundtrip") == "ocibuild zpipe round trip\n"
        assert podman.run(tag, "sh", "-c", "echo $PATH") == "/usr/local/bin:/usr/bin:/bin\n"
        # and from the install tree itself
        prefix = podman.run(tag, "sh", "-c", "echo /opt/spack/*/*/*/*/xz-5.4.1-*").strip()
        assert podman.run(tag, f"{prefix}/bin/xz", "--version").startswith("xz (XZ Utils) 5.4.1")
        assert podman.run(tag, "sh", "-c", "/usr/local/bin/bzip2 --help 2>&1").startswith(
            "bzip2, a block-sorting file compressor.  Version 1.0.8"
        )
    finally:
        podman("rmi", tag, check=False)


def test_ch_run_runs_the_relocated_programs(
    image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rootfs = export_dir(capsys, image, REF, tmp_path / "rootfs")
    env = {**os.environ, "USER": os.environ.get("USER") or "root"}

    def ch_run(*command: str) -> str:
        done = subprocess.run(
            ["ch-run", "--set-env", str(rootfs), "--", *command],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert ch_run("xz", "--version").splitlines()[0] == "xz (XZ Utils) 5.4.1"
    assert ch_run("make", "--version").splitlines()[0] == "GNU Make 4.3"
    assert ch_run("zpipe-where").splitlines() == WHERE
    assert ch_run("sh", "-c", "printf 'ocibuild\\n' | zpipe | zpipe -d") == "ocibuild\n"
