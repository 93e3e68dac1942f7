"""Shifter's two routes without running anything: what `--via pull` and `--via import` plan, the
dry-run scripts of the shipped cori and perlmutter targets line by line, and bad input."""

from __future__ import annotations

import dataclasses
import json
import shlex
import socket
import sys
from pathlib import Path

import pytest

from ocibuild.cli import main
from ocibuild.errors import BenchError
from ocibuild.store import Store
from ocibuild.study.prepare import plan_prepare, runtime_image
from ocibuild.study.run import BenchRequest
from ocibuild.study.shifter import (
    Gateway,
    ShifterRoute,
    custom_name,
    export_argv,
    find_gateway,
    read_udiroot,
    request_import,
)
from ocibuild.study.targets import BUILTIN_DIR, ShifterOptions, find_target
from tests.registry.images import make_image, random_layer

REF = "registry.example.org:5000/me/bench-study:1"
STUDY = "art-study --events 7 --ints 250000 --modules 10 --output-dir ."


@pytest.fixture
def study_store(store: Store) -> Store:
    make_image(store, [REF], [random_layer("a", 100)])
    return store


def site_target(tmp_path: Path, name: str) -> Path:
    """The shipped target unchanged, plus a site's udiRoot.conf naming its gateway and system."""
    udiroot = tmp_path / "udiRoot.conf"
    udiroot.write_text(
        "# a site's Shifter configuration\n"
        "imageGateway=http://imagegw.example.org:5000 http://imagegw2.example.org:5000\n"
        f"system={name}\n"
        "etcPath=/etc/shifter/shifter_etc_files\n"
    )
    target = tmp_path / f"{name}.yaml"
    target.write_text(
        (BUILTIN_DIR / f"{name}.yaml").read_text() + f"shifter: {{udiroot_conf: {udiroot}}}\n"
    )
    return target


def dry_run(
    capsys: pytest.CaptureFixture[str], store: Store, target: Path, tmp_path: Path, *more: str
) -> list[str]:
    args = ["--store", str(store.root), "bench", "--target", str(target), "--image", REF]
    args += ["--events", "7", "--results", str(tmp_path / "results"), "--dry-run", *more]
    assert main(args) == 0, capsys.readouterr().err
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("name", ["cori", "perlmutter"])
def test_import_route_dry_run_line_by_line(
    name: str,
    study_store: Store,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SCRATCH", raising=False)
    out = dry_run(capsys, study_store, site_target(tmp_path, name), tmp_path, "--via", "import")

    squashfs = "$SCRATCH/ocibuild-bench/images/bench-study-1.squashfs"
    body = json.dumps({"filepath": squashfs, "format": "squashfs"})
    assert out[0] == (
        f"# prepare: ocibuild --store {study_store.root} export {REF} "
        f"--format squashfs --all-root -o {squashfs}"
    )
    assert out[1] == (
        f"# prepare: curl -sS -d {shlex.quote(body)} "
        '-H "authentication: $(munge -n)" '
        f"http://imagegw.example.org:5000/api/doimport/{name}/custom/bench-study:1/"
    )
    assert out[2].startswith(f"# script: {tmp_path / 'results'}/{name}-")
    run_id = Path(out[2].split()[-1]).parent.name
    work = f"$SCRATCH/ocibuild-bench/{run_id}/r01"
    batch = {
        "cori": ["#SBATCH --partition=debug", "#SBATCH --nodes=1", "#SBATCH --time=00:30:00",
                 "#SBATCH --constraint=haswell"],
        "perlmutter": ["#SBATCH --nodes=1", "#SBATCH --time=00:30:00", "#SBATCH --constraint=cpu",
                       "#SBATCH --qos=debug"],
    }[name]  # fmt: skip
    assert out[3:] == [
        "#!/bin/bash -l",
        "",
        "#SBATCH --image=custom:bench-study:1",
        *batch,
        f"#SBATCH --job-name=ocibench-{run_id}",
        "",
        "set -e",
        f"mkdir -p {work}",
        f'shifter --volume={work}:/mnt /bin/bash -cl "cd /mnt; {STUDY} >out.txt 2>&1"',
    ]
    assert not (tmp_path / "results").exists()


def test_pull_route_pushes_docker_form_from_the_store(
    study_store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = dry_run(capsys, study_store, site_target(tmp_path, "cori"), tmp_path, "--insecure")
    assert out[:2] == [
        f"# prepare: ocibuild push {REF} --format docker --insecure",
        f"# prepare: shifterimg -v pull docker:{REF}",
    ]
    assert out[5] == f"#SBATCH --image=docker:{REF}"


def test_pull_route_of_an_image_not_in_the_store_only_pulls(tmp_path: Path) -> None:
    cori = find_target("cori")
    assert plan_prepare(cori, REF, None, None, tmp_path / "run") == [
        f"shifterimg -v pull docker:{REF}"
    ]
    assert runtime_image(cori, REF, tmp_path / "run") == f"docker:{REF}"


def test_import_route_with_images_dir_and_munge_of_the_target(
    study_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHARED", str(tmp_path / "shared"))
    target = dataclasses.replace(
        find_target("perlmutter"),
        shifter=ShifterOptions(
            gateway="http://127.0.0.1:5999/",
            system="pm",
            images="$SHARED/images",
            munge=["munge", "-n", "--socket=/run/m.socket"],
        ),
    )
    lines = plan_prepare(target, REF, None, study_store, tmp_path / "run", via="import")
    squashfs = tmp_path / "shared" / "images" / "bench-study-1.squashfs"
    assert lines[0].endswith(f" -o {squashfs}")
    assert lines[1].endswith(
        '-H "authentication: $(munge -n --socket=/run/m.socket)" '
        "http://127.0.0.1:5999/api/doimport/pm/custom/bench-study:1/"
    )
    assert runtime_image(target, REF, tmp_path / "run", study_store, "import") == (
        "custom:bench-study:1"
    )
    # the export runs as the CLI does, with this Python
    assert export_argv(study_store.root, REF, squashfs) == [
        sys.executable, "-m", "ocibuild", "--store", str(study_store.root), "export", REF,
        "--format", "squashfs", "--all-root", "-o", str(squashfs),
    ]  # fmt: skip


def test_custom_names() -> None:
    assert custom_name(REF) == "bench-study:1"
    assert custom_name("docker.io/paterno/centos67base") == "centos67base:latest"
    digest = "sha256:" + "ab" * 32
    assert custom_name(f"example.org/hep/art@{digest}") == "art:abababababab"


def test_gateway_from_udiroot_conf_or_the_target(tmp_path: Path) -> None:
    conf = tmp_path / "udiRoot.conf"
    conf.write_text(
        "#imageGateway=http://old:5000\nimageGateway = http://gw:5000 http://gw2:5000\n"
    )
    assert read_udiroot(conf) == {"imageGateway": "http://gw:5000 http://gw2:5000"}
    assert read_udiroot(tmp_path / "none.conf") == {}
    cori = find_target("cori")
    from_site = dataclasses.replace(cori, shifter=ShifterOptions(udiroot_conf=str(conf)))
    gateway = find_gateway(from_site)
    assert (gateway.url, gateway.system) == ("http://gw:5000", "cori")  # no system=: the target's
    nowhere = dataclasses.replace(
        cori, shifter=ShifterOptions(udiroot_conf=str(tmp_path / "none.conf"))
    )
    with pytest.raises(BenchError, match=r"--via import needs the image gateway's URL"):
        find_gateway(nowhere)
    assert find_gateway(nowhere, required=False).url.startswith("<imageGateway of ")


def test_bad_routes(study_store: Store, tmp_path: Path) -> None:
    with pytest.raises(BenchError, match=r"--via import is a route of Shifter targets; podman"):
        BenchRequest(find_target("podman"), image=REF, via="import")
    with pytest.raises(BenchError, match=r"unknown route --via scp"):
        BenchRequest(find_target("cori"), image=REF, via="scp")
    with pytest.raises(BenchError, match=r"exports the image from the ocibuild store, which does"):
        plan_prepare(
            find_target("cori"), "example.org/not/here:1", None, study_store, tmp_path, "import"
        )


def test_shifter_section_only_for_shifter_targets(tmp_path: Path) -> None:
    target = tmp_path / "t.yaml"
    target.write_text("name: t\nruntime: podman\nshifter: {system: x}\n")
    with pytest.raises(BenchError, match=r"t\.yaml.*shifter: section is for runtime shifter"):
        find_target(str(target))
    target.write_text(
        "name: t\nruntime: shifter\nscheduler: slurm\nshifter: {gateway: http://gw:5000, nosuch: 1}\n"
    )
    with pytest.raises(BenchError, match=r"t\.yaml:4.*unknown key 'nosuch'"):
        find_target(str(target))


def test_an_unreachable_gateway_is_named(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gateway = Gateway(f"http://127.0.0.1:{port}", "cori")
    route = ShifterRoute(
        "import", REF, "custom:bench-study:1", squashfs=tmp_path / "x.sqfs", gateway=gateway
    )
    with pytest.raises(
        BenchError,
        match=rf"cannot reach Shifter's image gateway at http://127.0.0.1:{port}/api/doimport/cori/custom/bench-study:1/",
    ):
        request_import(route, "credential")
