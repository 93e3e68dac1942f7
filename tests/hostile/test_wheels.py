"""Hostile input to the wheels source, through the CLI: wheels made from a real one (tqdm, from
the test wheel cache) with an escaping member, a RECORD that lies, a zip bomb; a file that
changed under its lock; requirements that conflict, do not parse, fit no wheel or have only an
sdist; an index that answers 404 or broken JSON. Each: one error line naming the requirement
or file, the store unchanged."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hostile.conftest import Hostile
from tests.python.conftest import PIP_VARIABLES, WHEELS
from tests.python.pyindex import IndexServer, serve_index

TQDM = "tqdm-4.70.1-py3-none-any.whl"
PYTHON = '{version: "3.11", platform: manylinux_2_36_x86_64}'


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("OCIBUILD_CACHE", str(tmp_path / "cache"))
    for name in PIP_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def index() -> Iterator[IndexServer]:
    assert (WHEELS / TQDM).exists(), (
        f"no test wheels in {WHEELS}: scripts/setup-test-env fetches them"
    )
    with serve_index(WHEELS) as server:
        yield server


def _recipe(h: Hostile, wheels: str, name: str = "recipe.yaml") -> Path:
    return h.recipe(f"images:\n  - name: a/wheels\n    layers:\n      - wheels: {wheels}\n", name)


def _local(h: Hostile, requirements: str, *wheels: Path, extra: str = "") -> Path:
    """A recipe installing `requirements` from a directory holding only `wheels`."""
    directory = h.root / "wheels"
    directory.mkdir(exist_ok=True)
    for wheel in wheels:
        shutil.copy(wheel, directory / wheel.name)
    return _recipe(
        h,
        f"{{requirements: {requirements}, find_links: [wheels], no_index: true, "
        f"python: {PYTHON}{extra}}}",
    )


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")


def _rewrite(
    tmp: Path,
    change: dict[str, bytes] | None = None,
    add: dict[str, bytes] | None = None,
    record: bool = True,
) -> Path:
    """The real tqdm wheel with members replaced (`change`) or added (`add`); RECORD lists the
    additions with their true hashes, and the changes too when `record`."""
    out = tmp / "bad" / TQDM
    out.parent.mkdir(exist_ok=True)
    change, add = change or {}, add or {}
    record_name = "tqdm-4.70.1.dist-info/RECORD"
    with (
        zipfile.ZipFile(WHEELS / TQDM) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        rows = src.read(record_name).decode().splitlines()
        if record:
            rows = [r for r in rows if r.split(",")[0] not in change]
            rows += [f"{n},{_record_hash(d)},{len(d)}" for n, d in change.items()]
        rows += [f"{n},{_record_hash(d)},{len(d)}" for n, d in add.items()]
        for info in src.infolist():
            if info.filename == record_name:
                continue
            dst.writestr(info, change.get(info.filename, src.read(info)))
        for name, data in add.items():
            dst.writestr(zipfile.ZipInfo(name), data, zipfile.ZIP_DEFLATED)
        dst.writestr(record_name, "\n".join(rows) + "\n")
    return out


def test_a_member_that_climbs_out(hostile: Hostile, tmp_path: Path) -> None:
    bad = _rewrite(tmp_path, add={"../../etc/cron.d/evil": b"x"})
    error = hostile.refused("recipe", str(_local(hostile, "[tqdm]", bad)), names=(TQDM, "'..'"))
    assert "../../etc/cron.d/evil" in error


def test_an_absolute_member(hostile: Hostile, tmp_path: Path) -> None:
    bad = _rewrite(tmp_path, add={"/etc/evil": b"x"})
    hostile.refused("recipe", str(_local(hostile, "[tqdm]", bad)), names=(TQDM, "absolute"))


def test_record_disagrees_with_the_content(hostile: Hostile, tmp_path: Path) -> None:
    bad = _rewrite(tmp_path, change={"tqdm/version.py": b"__version__ = 'evil'\n"}, record=False)
    hostile.refused(
        "recipe",
        str(_local(hostile, "[tqdm]", bad)),
        names=(TQDM, "tqdm/version.py", "RECORD"),
    )


def test_a_zip_bomb(hostile: Hostile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCIBUILD_EXPANSION_FLOOR", str(1 << 20))
    monkeypatch.setenv("OCIBUILD_MAX_EXPANSION_RATIO", "50")
    bad = _rewrite(tmp_path, add={"tqdm/zeros.bin": bytes(32 << 20)})
    assert bad.stat().st_size < 1 << 20
    hostile.refused(
        "recipe", str(_local(hostile, "[tqdm]", bad)), names=(TQDM, "decompression bomb")
    )


def test_a_wheel_that_changed_under_its_lock(hostile: Hostile, tmp_path: Path) -> None:
    recipe = _local(hostile, "[tqdm]", WHEELS / TQDM)
    assert hostile.run("recipe", str(recipe)).code == 0
    pinned = json.loads(Path(f"{recipe}.lock").read_text())["files"]
    assert [url.endswith(TQDM) for url in pinned] == [True]
    shutil.rmtree(tmp_path / "cache")
    bad = _rewrite(tmp_path, change={"tqdm/version.py": b"__version__ = 'evil'\n"})
    shutil.copy(bad, hostile.root / "wheels" / TQDM)
    hostile.refused("recipe", "--no-cache", str(recipe), names=(TQDM, "sha256"))


def test_conflicting_requirements(hostile: Hostile) -> None:
    recipe = _local(hostile, '["tqdm==4.70.1", "tqdm>=5"]', WHEELS / TQDM)
    hostile.refused("recipe", str(recipe), names=("conflicting requirements for tqdm", "tqdm>=5"))


def test_conflicting_pins_in_a_requirements_file(hostile: Hostile) -> None:
    digest = hashlib.sha256((WHEELS / TQDM).read_bytes()).hexdigest()
    (hostile.root / "requirements.txt").write_text(
        f"tqdm==4.70.1 --hash=sha256:{digest}\ntqdm==4.70.0 --hash=sha256:{digest}\n"
    )
    recipe = _recipe(hostile, f"{{requirements_file: requirements.txt, python: {PYTHON}}}")
    hostile.refused("recipe", str(recipe), names=("requirements.txt:2", "pinned twice"))


def test_a_marker_that_does_not_parse(hostile: Hostile) -> None:
    recipe = _local(hostile, "[\"tqdm; python_version >>> '3'\"]", WHEELS / TQDM)
    hostile.refused("recipe", str(recipe), names=("python_version >>> '3'", "not a requirement"))


def test_no_wheel_for_the_images_python(hostile: Hostile) -> None:
    numpy = next(WHEELS.glob("numpy-*x86_64.whl"))
    recipe = _local(hostile, "[numpy]", numpy, extra="")
    text = recipe.read_text().replace('version: "3.11"', 'version: "3.9"')
    recipe.write_text(text)
    error = hostile.refused(
        "recipe", str(recipe), names=("no wheel of numpy", "2.4.6", "CPython 3.9")
    )
    assert "cp39-cp39-manylinux_2_36_x86_64" in error and "sdist is never built" in error


def test_only_an_sdist(hostile: Hostile) -> None:
    directory = hostile.root / "wheels"
    directory.mkdir()
    (directory / "notawheel-1.0.tar.gz").write_bytes(b"not read")
    recipe = _local(hostile, "[notawheel]")
    hostile.refused("recipe", str(recipe), names=("notawheel", "never builds an sdist"))


def test_an_index_that_answers_404(hostile: Hostile, index: IndexServer) -> None:
    recipe = _recipe(
        hostile, f"{{requirements: [tqdm], index_url: '{index.url}/empty', python: {PYTHON}}}"
    )
    hostile.refused("recipe", str(recipe), names=("no project tqdm", f"{index.url}/empty"))


def test_an_index_that_answers_broken_json(hostile: Hostile, index: IndexServer) -> None:
    recipe = _recipe(
        hostile, f"{{requirements: [tqdm], index_url: '{index.url}/broken', python: {PYTHON}}}"
    )
    hostile.refused("recipe", str(recipe), names=(f"{index.url}/broken/tqdm/", "PEP 691"))
