"""Targets as data: the shipped ones load, bad ones are refused naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocibuild.errors import BenchError
from ocibuild.study.targets import BUILTIN_DIR, expand_scratch, find_target, load_target

SHIPPED = [
    "charliecloud",
    "cori",
    "docker",
    "native",
    "perlmutter",
    "perlmutter-podman-hpc",
    "podman",
    "podman-hpc",
    "slurm",
    "slurm-charliecloud",
    "slurm-podman-hpc",
]


def test_shipped_targets() -> None:
    assert sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml")) == SHIPPED
    targets = {name: find_target(name) for name in SHIPPED}
    assert {n: (t.runtime, t.scheduler) for n, t in targets.items()} == {
        "charliecloud": ("charliecloud", "local"),
        "cori": ("shifter", "slurm"),
        "docker": ("docker", "local"),
        "native": ("native", "local"),
        "perlmutter": ("shifter", "slurm"),
        "perlmutter-podman-hpc": ("podman-hpc", "slurm"),
        "podman": ("podman", "local"),
        "podman-hpc": ("podman-hpc", "local"),
        "slurm": ("apptainer", "slurm"),
        "slurm-charliecloud": ("charliecloud", "slurm"),
        "slurm-podman-hpc": ("podman-hpc", "slurm"),
    }
    assert all(t.name == n and t.description for n, t in targets.items())
    assert targets["cori"].shell == "/bin/bash -l"
    assert targets["cori"].inner_shell == ["/bin/bash", "-cl"]
    assert targets["podman"].inner_shell == ["/bin/sh", "-c"]
    assert targets["perlmutter"].batch.constraint == "cpu"
    assert targets["charliecloud"].runtime_command == ["ch-run"]


def test_target_by_file_and_from_extra_dirs(tmp_path: Path) -> None:
    site = tmp_path / "mysite.yaml"
    site.write_text("name: mysite\nruntime: podman\ncommand: [podman, --root, /x]\n")
    assert find_target(str(site)).runtime_command == ["podman", "--root", "/x"]
    assert find_target("mysite", [tmp_path]).file == str(site)
    with pytest.raises(
        BenchError,
        match=r"unknown bench target 'nosuch'; known targets: charliecloud, cori, .*mysite",
    ):
        find_target("nosuch", [tmp_path])
    with pytest.raises(BenchError, match=r"target file /no/such\.yaml does not exist"):
        find_target("/no/such.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: x\nruntime: podman\nrun_option: [a]\n",
            r"x.yaml:3:1: unknown key 'run_option' in target \(did you mean 'run_options'\?\)",
        ),
        (
            "name: x\nruntime: singularity\n",
            r"x.yaml:2:10: runtime: runtime must be one of native, podman",
        ),
        ("name: x\nruntime: shifter\n", r"x.yaml:1:1: target: shifter runs only inside Slurm jobs"),
        ("name: x\n", r"x.yaml:1:1: target: missing required key 'runtime'"),
        (
            "name: x\nruntime: podman\nscratch: /a b\n",
            r"x.yaml:3:10: scratch: '/a b' must not contain blanks",
        ),
        (
            "name: x\nruntime: podman\nslurm: {partitions: debug}\n",
            r"x.yaml:3:9: unknown key 'partitions' in slurm",
        ),
        ("name: [x\n", r"x.yaml:2:1: malformed YAML"),
        ("", r"x.yaml:1: the target file is empty"),
    ],
)
def test_bad_targets_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(BenchError, match=message):
        load_target(path)


def test_scratch_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cori = find_target("cori")
    monkeypatch.delenv("SCRATCH", raising=False)
    with pytest.raises(
        BenchError,
        match=r"cori.yaml: scratch '\$SCRATCH/ocibuild-bench' needs \$SCRATCH, which is not set",
    ):
        expand_scratch(cori, tmp_path)
    monkeypatch.setenv("SCRATCH", "/global/cscratch1/sd/me")
    assert expand_scratch(cori, tmp_path) == Path("/global/cscratch1/sd/me/ocibuild-bench")
    assert expand_scratch(find_target("podman"), tmp_path) == tmp_path
