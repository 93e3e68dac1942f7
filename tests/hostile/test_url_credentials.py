"""Credentials never leave the process: a deb repository and a scisoft mirror given as
`http://user:password@host/...` are fetched with them, but the lock file, the image's package
records, its SBOM, the messages and the progress (at -vv) hold neither the password nor the
user info, and one warning points at ~/.netrc."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocibuild.cli import main
from tests.hostile.conftest import Hostile
from tests.hostile.debrepo import apt_repo, deb_bytes, deb_recipe
from tests.hostile.test_sizes_and_depth import DEB
from tests.ups.conftest import Mirror, serve
from tests.ups.test_build import write_recipe

PASSWORD = "s3cret-Pa55word"
USER = "builder"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Mirror]:
    (tmp_path / "site" / "scisoft").mkdir(parents=True)
    yield from serve(tmp_path / "site")


def with_credentials(url: str) -> str:
    return url.replace("http://", f"http://{USER}:{PASSWORD}@", 1)


def run_verbose(hostile: Hostile, *args: str) -> tuple[int, str]:
    hostile.capsys.readouterr()
    code = main(["--store", str(hostile.store), "-vv", "--progress", "plain", *args])
    out, err = hostile.capsys.readouterr()
    return code, out + err


def written_with(root: Path, secret: str, but: Path) -> list[str]:
    """The files under `root` (the store, the lock file, an export) holding `secret`, but the
    recipe `but` that holds it."""
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and p != but]
    return [str(p) for p in files if secret.encode() in p.read_bytes()]


def test_a_deb_repository_password_stays_in_the_process(
    hostile: Hostile, served: Mirror, cache_dir: Path
) -> None:
    deb = deb_bytes({"Package": "hostile"}, [])
    apt_repo(served.root / "scisoft" / "apt", {DEB: deb}, {DEB: {"Package": "hostile"}})
    url = with_credentials(f"{served.url}/apt")
    recipe = hostile.recipe(deb_recipe(url, "hostile"), "deb.yaml")
    code, output = run_verbose(hostile, "recipe", str(recipe))
    assert code == 0, output
    assert PASSWORD not in output and f"{USER}:" not in output
    assert output.count("holds credentials") == 1 and "~/.netrc" in output
    lock = Path(f"{recipe}.lock").read_text()
    assert PASSWORD not in lock and "@127.0.0.1" not in lock and served.url in lock
    export = hostile.root / "rootfs"
    assert hostile.run("export", "a/deb", "--format", "dir", "-o", str(export)).code == 0
    records = json.loads((export / "var/lib/ocibuild/packages.json").read_text())
    assert [p["repo"] for p in records["packages"]] == [f"{served.url}/apt test"]
    sbom = hostile.run("sbom", "a/deb").out
    assert PASSWORD not in sbom and f"{USER}:" not in sbom
    assert written_with(hostile.root, PASSWORD, recipe) == []
    assert served.requests  # it was fetched, with them


def test_a_mirror_password_stays_in_the_process(
    hostile: Hostile, served: Mirror, mirror_files: Path, cache_dir: Path
) -> None:
    import shutil

    shutil.copytree(mirror_files / "scisoft", served.root / "scisoft", dirs_exist_ok=True)
    recipe = write_recipe(hostile.root / "art.yaml", None, layering="bundle", setup=False)
    code, output = run_verbose(
        hostile, "recipe", "--mirror", with_credentials(served.url), str(recipe)
    )
    assert code == 0, output
    assert "Traceback" not in output and PASSWORD not in output and f"{USER}:" not in output
    assert written_with(hostile.root, PASSWORD, recipe) == []
