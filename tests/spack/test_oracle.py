"""ocibuild's image of the fixtures' build cache against what the real Spack did with it
(tests/spack/fixtures/oracle): `spack install --cache-only` into /opt/spack padded to 64, its
database, `spack load --sh`, and an environment's view and `spack env activate --sh`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocibuild.spack import tarball as spack_tarball
from ocibuild.store import Store
from ocibuild.ups import tarball as ups_tarball
from tests.spack.conftest import (
    KEY,
    ORACLE,
    PADDED_ROOT,
    REF,
    ROOTS,
    Served,
    build,
    export_dir,
    layers_apart,
    listing,
    oracle_listing,
    recipe,
    shell_exports,
)

# Not reproducible by anyone, Spack included (fixtures/README.md): timings Spack rewrites at
# install time, the database's install times (compared spec by spec below) and its random
# verifier
NOT_COMPARED = (".spack/install_times.json", ".spack-db/index.json", ".spack-db/index_verifier")


def spack_entry(mirror: str, view: str | None = None, specs: list[str] = ROOTS) -> str:
    entry = (
        f"{{mirror: {mirror}, specs: [{', '.join(specs)}], keys: [{KEY}], "
        "into: {root: /opt/spack, padded_length: 64}"
    )
    return entry + (f", view: {view}}}" if view else "}")


@pytest.fixture(scope="module", params=["threads", "processes", "read twice"])
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, caches: Served
) -> tuple[Path, Path]:
    """The image of the five roots (view at /opt/view), and its root filesystem: its package
    layers written in the build's threads, each tarball parsed once (the first pass keeps a
    small tarball for the second), or in processes of their own, or in threads with every
    tarball read twice."""
    tmp = tmp_path_factory.mktemp("oracle")
    store = tmp / "store"
    mp = pytest.MonkeyPatch()
    mp.setenv("OCIBUILD_CACHE", str(tmp / "cache"))
    written_apart = layers_apart(mp) if request.param == "processes" else []
    if request.param == "read twice":
        mp.setattr(spack_tarball, "KEEP_MEMORY", 0)
    replays: list[object] = []
    replay = ups_tarball._Reader._replay
    mp.setattr(ups_tarball._Reader, "_replay", lambda *a: replays.append(a) or replay(*a))
    capsys = _Capture()
    try:
        build(
            capsys, recipe(tmp / "r.yaml", spack_entry(f"{caches.url}/signed", "/opt/view")), store
        )  # type: ignore[arg-type]
        rootfs = export_dir(capsys, store, REF, tmp / "rootfs")  # type: ignore[arg-type]
    finally:
        mp.undo()
    assert len(written_apart) == (6 if request.param == "processes" else 0)
    # the six tarballs replayed from what their first pass kept, here or in the writers
    assert len(replays) == (6 if request.param == "threads" else 0)
    return store, rootfs


class _Capture:
    """capsys for a module fixture: output is not checked, only the exit code."""

    def readouterr(self) -> tuple[str, str]:
        return "", ""


def test_the_relocated_tree_equals_spacks_file_for_file(built: tuple[Path, Path]) -> None:
    _, rootfs = built
    mine = listing(rootfs / "opt" / "spack")
    oracle = oracle_listing("tree.json")
    assert sorted(mine) == sorted(oracle)
    differ = [p for p in oracle if mine[p] != oracle[p] and not p.endswith(NOT_COMPARED)]
    assert differ == []
    # what is not compared is there, with Spack's modes
    assert all(mine[p]["mode"] == oracle[p]["mode"] for p in oracle if p.endswith(NOT_COMPARED))


def test_the_database_lists_the_same_specs(built: tuple[Path, Path]) -> None:
    _, rootfs = built
    mine = json.loads((rootfs / PADDED_ROOT.lstrip("/") / ".spack-db" / "index.json").read_text())
    oracle = json.loads((ORACLE / "spack-db-index.json").read_text())

    def records(doc: dict[str, dict[str, dict[str, dict[str, object]]]]) -> dict[str, object]:
        installs = doc["database"]["installs"]
        return {
            h: {k: v for k, v in r.items() if k != "installation_time"} for h, r in installs.items()
        }

    assert mine["database"]["version"] == oracle["database"]["version"]
    assert records(mine) == records(oracle)


def test_the_view_equals_spacks(built: tuple[Path, Path]) -> None:
    _, rootfs = built
    mine = listing(rootfs / "opt" / "view")
    assert mine == oracle_listing("view-tree.json")


def test_the_frozen_environment_is_what_env_activate_printed(built: tuple[Path, Path]) -> None:
    store, _ = built
    env = Store.open(store).image(REF).config.config.env_dict()
    printed = shell_exports(ORACLE / "env-activate.sh")
    # the environment directory of the machine that ran Spack means nothing in an image
    for name in ("SPACK_ENV", "SPACK_ENV_VIEW"):
        printed.pop(name)
    # `specs:` lists the roots in the order Spack's first run wrote its lock; MANPATH's order
    # follows the roots' (fixtures/README.md): this recipe's order is the second run's
    second = shell_exports(ORACLE / "second-run" / "env-activate.sh")
    assert {k: env.get(k) for k in printed} in (
        printed,
        {k: v for k, v in second.items() if k in printed},
    )


@pytest.mark.parametrize("root", [*(r.split("@")[0] for r in ROOTS), "all-roots"])
def test_the_frozen_environment_is_what_spack_load_printed(
    root: str, tmp_path: Path, caches: Served, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = ROOTS if root == "all-roots" else [r for r in ROOTS if r.startswith(root + "@")]
    store = tmp_path / "store"
    build(
        capsys, recipe(tmp_path / "r.yaml", spack_entry(f"{caches.url}/signed", specs=specs)), store
    )
    env = Store.open(store).image(REF).config.config.env_dict()
    printed = shell_exports(ORACLE / "load" / f"{root}.sh")
    assert {k: env.get(k) for k in printed} == printed


def test_the_frozen_environment_is_the_same_from_the_layer_cache(
    tmp_path: Path, caches: Served, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The directories the environment asks about come from the tarballs' scans when the
    layers are written, from the image's layers when they are cache hits: the same Env."""
    store = tmp_path / "store"
    entry = recipe(tmp_path / "r.yaml", spack_entry(f"{caches.url}/signed"))
    build(capsys, entry, store)
    first = Store.open(store).image(REF).config
    build(capsys, entry, store)  # every layer from the cache: no tarball read
    assert Store.open(store).image(REF).config == first
    printed = shell_exports(ORACLE / "load" / "all-roots.sh")
    assert {k: first.config.env_dict().get(k) for k in printed} == printed


def test_every_package_is_an_sbom_component(tmp_path: Path, caches: Served) -> None:
    from ocibuild.sources import spack
    from ocibuild.sources.specs import SpackInto, SpackSpec
    from tests.contexts import layer_context

    spec = SpackSpec(
        mirror=f"{caches.url}/signed",
        specs=ROOTS,
        keys=[str(KEY)],
        into=SpackInto("/opt/spack", 64),
    )
    plans = spack.plan(spec, layer_context(tmp_path))
    components = [c for p in plans if p.components for c in p.components()]
    index = json.loads((ORACLE / "spack-db-index.json").read_text())["database"]["installs"]
    installed = {h: r for h, r in index.items() if not r["spec"].get("external")}
    assert sorted(c.properties[0][1] for c in components) == sorted(installed)
    zlib = next(c for c in components if c.name == "zlib")
    assert zlib.purl == (
        "pkg:spack/zlib@1.2.13?arch=linux-debian12-x86_64&compiler=gcc-12.2.0"
        "&hash=vptum3ymiatmgooaso2x3hoyzlmb6exq"
    )
    assert zlib.path == installed["vptum3ymiatmgooaso2x3hoyzlmb6exq"]["path"]
    assert len(zlib.sha256) == 64 and zlib.url.endswith(".spack")
