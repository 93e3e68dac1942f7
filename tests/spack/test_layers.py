"""How many layers, and which are shared: the synthetic environments (2 x 300 packages sharing
150, fixtures/synthetic) under `layering: auto`, and the other layerings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ocibuild.store import Store
from tests.spack.conftest import BASE_REF, FIXTURES, KEY, REF, SIGNED, Served, build, recipe

SYNTHETIC = FIXTURES / "synthetic"


def layers(store: Path, ref: str) -> list[str]:
    """The digests of the image's layers above the base image's."""
    s = Store.open(store)
    below = len(s.image(BASE_REF).manifest.layers)
    return [d.digest for d in s.image(ref).manifest.layers[below:]]


def lock_entry(cache: Path, env: str, extra: str = "") -> str:
    lock = SYNTHETIC / f"env-{env}-spack.lock"
    return f"{{mirror: {cache.as_uri()}, lock: {lock}, trusted: true{extra}}}"


def test_two_environments_of_300_share_layers_within_the_budget(
    tmp_path: Path, synthetic: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    a, b = "localhost/ocibuild-spack/env-a:1", "localhost/ocibuild-spack/env-b:1"
    build(capsys, recipe(tmp_path / "a.yaml", lock_entry(synthetic, "a"), ref=a), store)
    build(capsys, recipe(tmp_path / "b.yaml", lock_entry(synthetic, "b"), ref=b), store)
    in_a, in_b = layers(store, a), layers(store, b)
    assert 10 <= len(in_a) <= 32 and 10 <= len(in_b) <= 32
    shared = set(in_a) & set(in_b)
    # 150 of each image's 300 packages (and gcc-runtime) are the same: most of their layers
    # are identical blobs, the rest (and the database layer) are each image's own
    assert len(shared) >= len(in_a) // 4, (len(in_a), len(in_b), len(shared))
    assert in_a[-1] != in_b[-1]


def test_the_budget_holds_for_a_small_one(
    tmp_path: Path, synthetic: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    build(capsys, recipe(tmp_path / "a.yaml", lock_entry(synthetic, "a", ", max_layers: 5")), store)
    from tests.spack.conftest import REF

    assert len(layers(store, REF)) <= 5


@pytest.mark.parametrize(("layering", "count"), [("single", 2), ("per-package", 7), ("auto", 7)])
def test_layerings(
    layering: str,
    count: int,
    tmp_path: Path,
    caches: Served,
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.spack.conftest import REF

    entry = (
        f"{{mirror: {caches.url}/unsigned, trusted: true, layering: {layering}, "
        "specs: [zlib@1.2.13, bzip2@1.0.8, xz@5.4.1, gmake@4.3, ocibuild-zpipe@1.0]}"
    )
    store = tmp_path / "store"
    build(capsys, recipe(tmp_path / "r.yaml", entry), store)
    # six packages (gcc-runtime with the five roots) and the database layer
    assert len(layers(store, REF)) == count
    history = [h.created_by for h in Store.open(store).image(REF).config.history]
    assert any("sbang, .spack-db" in h for h in history)


def test_synthetic_fixture_is_small() -> None:
    """The committed synthetic cache is text only (its tarballs are made by the tests)."""
    files = [p for p in SYNTHETIC.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix == ".spack"]
    assert max(p.stat().st_size for p in files) < 2 << 20
    locks = [json.loads(p.read_text()) for p in SYNTHETIC.glob("env-*-spack.lock")]
    assert [len(lock["roots"]) for lock in locks] == [300, 300]


def test_a_cache_on_disk_is_read_without_loading_requests(tmp_path: Path) -> None:
    """requests takes a tenth of a second to import, a fifth of a small build: a mirror on
    disk (a path or a file:// URL) is read without it, into the same layers."""
    program = (
        "import sys\n"
        "from ocibuild.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "assert code == 0, code\n"
        "print('requests' in sys.modules, 'urllib3' in sys.modules)\n"
    )
    digests = set()
    for n, mirror in enumerate((str(SIGNED), SIGNED.as_uri())):
        path = recipe(
            tmp_path / f"r{n}.yaml", f"{{mirror: {mirror}, specs: [zlib], keys: [{KEY}]}}"
        )
        env = {**os.environ, "OCIBUILD_CACHE": str(tmp_path / f"cache{n}")}
        store = tmp_path / f"store{n}"
        ran = subprocess.run(
            [sys.executable, "-c", program, "--store", str(store), "-q", "recipe", str(path)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        assert ran.stdout.splitlines()[-1] == "False False", ran.stdout + ran.stderr
        digests.add(tuple(d.digest for d in Store.open(store).image(REF).manifest.layers))
    assert len(digests) == 1
