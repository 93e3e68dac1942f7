"""What a newcomer types: YAML numbers as written, compression levels as gzip knows them, a
misspelt command, a short image name, output in a pipe, and counts in the right number."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from ocibuild.compression import Compression
from ocibuild.store import Store
from tests.core.conftest import ocibuild


def layer_modes(store: Path, ref: str) -> dict[str, int]:
    s = Store.open(store)
    modes = {}
    for layer in s.image(ref).manifest.layers:
        with s.open_blob(layer.digest) as blob, tarfile.open(fileobj=blob, mode="r:*") as tar:
            modes.update({m.name: m.mode for m in tar.getmembers()})
    return modes


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real `ocibuild` in a pipe (no terminal), as a script or CI job runs it."""
    return subprocess.run(
        [sys.executable, "-m", "ocibuild", *args],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        timeout=120,
    )


def test_an_unquoted_mode_is_the_octal_written(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "images:\n  - name: a/modes\n    layers:\n      - files:\n"
        "          - {content: x, dest: /a, mode: 0755}\n"
        "          - {content: x, dest: /b, mode: 644}\n"
        '          - {content: x, dest: /c, mode: "0600"}\n'
    )
    assert ocibuild("--store", str(tmp_path / "s"), "recipe", str(tmp_path / "r.yaml")) == 0
    modes = layer_modes(tmp_path / "s", "a/modes")
    assert (modes["a"], modes["b"], modes["c"]) == (0o755, 0o644, 0o600)


def test_gzip_levels_are_gzips_and_map_onto_isal() -> None:
    assert [Compression("gzip", n).effective_level for n in range(1, 10)] == [
        0, 1, 1, 2, 2, 2, 3, 3, 3,
    ]  # fmt: skip
    assert Compression("gzip").effective_level == Compression("gzip", 6).effective_level == 2
    assert Compression("zstd", 19).effective_level == 19


LEVEL_ERRORS = {
    "recipe-99": ("compression_level: 99\n", (), "r.yaml:1:20: compression_level: gzip compression level 99 is not one of 1-9"),
    "image-zstd-22": ("", ("compression: zstd", "compression_level: 22"), "r.yaml:7:24: compression_level: zstd compression level 22 is not one of 1-19"),
    "cli-0": ("", (), "--level: gzip compression level 0 is not one of 1-9"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(LEVEL_ERRORS))
def test_a_level_out_of_range_is_one_line(case: str, tmp_path: Path) -> None:
    head, image_keys, message = LEVEL_ERRORS[case]
    extra = "".join(f"    {k}\n" for k in image_keys)
    (tmp_path / "r.yaml").write_text(
        f"{head}images:\n  - name: a/b\n    layers:\n      - files: [{{content: x, dest: /x}}]\n"
        + ("\n" if not head else "")
        + extra
    )
    args = ("--level", "0") if case == "cli-0" else ()
    proc = run("--store", "s", "recipe", *args, "r.yaml", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == f"error: {message}\n"
    assert (
        not (tmp_path / "s" / "index.json").exists()
        or "a/b" not in (tmp_path / "s" / "index.json").read_text()
    )


def test_gzip_level_9_builds(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "compression_level: 9\nimages:\n  - name: a/nine\n"
        "    layers:\n      - files: [{content: x, dest: /x}]\n"
    )
    proc = run("--store", "s", "recipe", "r.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("docker.io/a/nine:latest@sha256:")


def test_an_unknown_command_suggests_the_close_one(tmp_path: Path) -> None:
    proc = run("build", "recipes/demo.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Error: No such command 'build'. Did you mean 'ocibuild recipe'?" in proc.stderr
    proc = run("imgaes", cwd=tmp_path)
    assert "Did you mean 'ocibuild images'?" in proc.stderr


def test_no_such_image_names_the_full_reference_and_close_ones(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "images:\n  - name: localhost/ocibuild/demo-art_1_18_03_e9-prof:latest\n"
        "    layers:\n      - files: [{content: x, dest: /x}]\n"
    )
    assert run("--store", "s", "recipe", "r.yaml", cwd=tmp_path).returncode == 0
    proc = run("--store", "s", "inspect", "demo-art_1_18_03_e9-prof", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == (
        "error: no such image demo-art_1_18_03_e9-prof "
        "(as docker.io/library/demo-art_1_18_03_e9-prof:latest) in the store s; "
        "the store has localhost/ocibuild/demo-art_1_18_03_e9-prof:latest\n"
    )


def test_in_a_pipe_only_results_and_errors_appear(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "images:\n  - name: a/one\n    layers:\n      - files: [{content: x, dest: /x}]\n"
    )
    proc = run("--store", "s", "recipe", "r.yaml", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stderr == ""
    assert proc.stdout.count("\n") == 1 and proc.stdout.startswith("docker.io/a/one:latest@")
    # -v asks for the status lines, with counts in the right number
    proc = run("--store", "s", "-v", "recipe", "r.yaml", cwd=tmp_path)
    assert "(1 layer, 1 cached, " in proc.stderr
    assert "files: 1 file, 1 B -> /x" in proc.stderr
