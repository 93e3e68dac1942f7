"""UPS bundles built into images end to end (the `ocibuild recipe` command against a mirror on
127.0.0.1), checked with the real umoci and podman."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest

from ocibuild.builder import BuildSettings, build_recipe
from ocibuild.errors import FetchError
from ocibuild.progress import Event, FetchEvent, LayerEvent
from ocibuild.store import Store
from ocibuild.store.export import export_image
from tests.events import Events
from tests.podman import Podman
from tests.ups.conftest import Mirror, ocibuild, store_snapshot

SLF6 = "Linux64bit+2.6-2.12"
ART_REF = "example.org/hep/art_1_18_03_e9-prof:1"
ART_TARBALL = "packages/art/v1_18_03/art-1.18.03-slf6-x86_64-e9-prof.tar.bz2"
UPS_TARBALL = "packages/ups/v5_1_4/ups-5.1.4-Linux64bit+2.6-2.12.tar.bz2"

RECIPE = """\
source_date_epoch: 1451606400
images:
  - name: {ref}
    layers:
{shell}      - ups: {{bundle: {bundle}, os: slf6, qualifiers: e9, build: prof, layering: {layering}}}
{setup}"""
SHELL = """\
      - files:
          - {{src: {busybox}, dest: /bin/sh, mode: "0755"}}
"""
SETUP = '    setup: {product: art, version: v1_18_03, qualifiers: "e9:prof"}\n'


def write_recipe(
    path: Path,
    busybox: Path | None,
    ref: str = ART_REF,
    bundle: str = "art-v1_18_03",
    layering: str = "auto",
    setup: bool = True,
) -> Path:
    """A recipe of the bundle's image (with busybox as /bin/sh when given)."""
    shell = SHELL.format(busybox=busybox) if busybox else ""
    text = RECIPE.format(
        ref=ref, shell=shell, bundle=bundle, layering=layering, setup=SETUP if setup else ""
    )
    path.write_text(text)
    return path


def build(recipe: Path, store: Path, mirror: Mirror, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    code = ocibuild("--store", str(store), "-q", "recipe", "--mirror", mirror.url, str(recipe))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def layer_digests(store: Path, ref: str) -> list[str]:
    return [str(d.digest) for d in Store.open(store).image(ref).manifest.layers]


def expected_art_environment() -> dict[str, str]:
    """What `source /products/setup; setup art v1_18_03 -q e9:prof` gives, by UPS's rules, for
    the synthetic chain art -> (fhiclcpp -> cetlib -> (boost -> gcc, cetpkgsupport), cetlib,
    root -> gcc): each table sets <P>_FQ_DIR, <P>_VERSION, <P>_LIB and prepends its lib (and bin
    when it has programs), then sets up its dependencies in order, each product once."""
    fq = {
        "ups": f"/products/ups/v5_1_4/{SLF6}",
        "gcc": f"/products/gcc/v4_9_3/{SLF6}",
        "cetpkgsupport": "/products/cetpkgsupport/v1_08_07",
        "boost": f"/products/boost/v1_57_0/{SLF6}-e9-prof",
        "cetlib": f"/products/cetlib/v1_15_03/{SLF6}-e9-prof",
        "fhiclcpp": f"/products/fhiclcpp/v3_12_04/{SLF6}-e9-prof",
        "root": f"/products/root/v6_04_06/{SLF6}-e9-prof",
        "art": f"/products/art/v1_18_03/{SLF6}-e9-prof",
    }
    versions = {
        "ups": "v5_1_4",
        "gcc": "v4_9_3",
        "cetpkgsupport": "v1_08_07",
        "boost": "v1_57_0",
        "cetlib": "v1_15_03",
        "fhiclcpp": "v3_12_04",
        "root": "v6_04_06",
        "art": "v1_18_03",
    }
    env = {"PRODUCTS": "/products", "UPS_SHELL": "sh"}
    for product, version in versions.items():
        name = product.upper()
        flavor = "NULL" if product == "cetpkgsupport" else SLF6
        quals = "" if product in ("ups", "gcc", "cetpkgsupport") else " -q e9:prof"
        env[f"SETUP_{name}"] = f"{product} {version} -f {flavor} -z /products{quals}"
        env[f"{name}_DIR"] = f"/products/{product}/{version}"
        env[f"{name}_FQ_DIR"] = fq[product]
        env[f"{name}_VERSION"] = version
        if product not in ("ups", "cetpkgsupport"):
            env[f"{name}_LIB"] = f"{fq[product]}/lib"
    setup_order = ["art", "fhiclcpp", "cetlib", "boost", "gcc", "root"]
    env["LD_LIBRARY_PATH"] = ":".join(f"{fq[p]}/lib" for p in reversed(setup_order))
    env["PATH"] = ":".join(f"{fq[p]}/bin" for p in ["root", "gcc", "art", "ups"])
    return env


def test_art_bundle_image(
    tmp_path: Path,
    mirror: Mirror,
    busybox: Path,
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    recipe = write_recipe(tmp_path / "art.yaml", busybox)
    store = tmp_path / "store"
    build(recipe, store, mirror, capsys)

    bundle = tmp_path / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--image", f"{store}:{ART_REF}", str(bundle)],
        check=True,
        capture_output=True,
    )
    rootfs = bundle / "rootfs"
    # the tree pullProducts leaves
    assert (rootfs / "products/setup").is_file()
    assert "VERSION_SUBDIR = 1" in (rootfs / "products/.upsfiles/dbconfig").read_text()
    products = sorted(p.name for p in (rootfs / "products").iterdir() if not p.name.startswith("."))
    assert products == [
        "art",
        "boost",
        "cetlib",
        "cetpkgsupport",
        "fhiclcpp",
        "gcc",
        "root",
        "setup",
        "ups",
    ]
    assert sorted(p.name for p in (rootfs / "products/art").iterdir()) == [
        "v1_18_03",
        "v1_18_03.version",
    ]
    assert [p.name for p in (rootfs / "products/art/v1_18_03.version").iterdir()] == [
        f"{SLF6}_e9_prof"
    ]
    assert [p.name for p in (rootfs / "products/gcc/v4_9_3.version").iterdir()] == [f"{SLF6}_"]
    assert (rootfs / "products/art/v1_18_03/ups/art.table").is_file()
    program = rootfs / f"products/art/v1_18_03/{SLF6}-e9-prof/bin/art"
    assert program.stat().st_mode & 0o777 == 0o755
    profile = (rootfs / "etc/profile.d/ups-setup.sh").read_text()
    assert ". /products/setup\n  setup art v1_18_03 -q e9:prof\n" in profile
    # the frozen environment
    env = dict(
        e.split("=", 1) for e in json.loads((bundle / "config.json").read_text())["process"]["env"]
    )
    env.pop("TERM", None)  # umoci's runtime config adds it
    assert env == expected_art_environment()
    lock = json.loads((tmp_path / "art.yaml.lock").read_text())["files"]
    assert f"{{mirror}}/{ART_TARBALL}" in lock  # pinned relative to the mirror it came from


def test_podman_runs_a_product_program_without_a_login_shell(
    tmp_path: Path,
    mirror: Mirror,
    busybox: Path,
    podman: Podman,
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = tmp_path / "store"
    build(write_recipe(tmp_path / "art.yaml", busybox), store, mirror, capsys)
    archive = tmp_path / "art.tar"
    tag = "localhost/ocibuild-ups/art:1"
    export_image(Store.open(store), ART_REF, "oci-archive", archive, [tag])
    podman("load", "-i", str(archive))
    try:
        out = podman.run(tag, "art")  # found on the image's PATH; not a login shell
        ld_path = expected_art_environment()["LD_LIBRARY_PATH"]
        assert out.splitlines() == [
            "art v1_18_03 e9:prof",
            "ART_DIR=/products/art/v1_18_03",
            f"LD_LIBRARY_PATH={ld_path}",
        ]
    finally:
        podman("rmi", tag)


def test_two_bundles_share_the_layers_of_their_common_products(
    tmp_path: Path,
    mirror: Mirror,
    busybox: Path,
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    art = write_recipe(tmp_path / "art.yaml", busybox, layering="product", setup=False)
    nu = write_recipe(
        tmp_path / "nu.yaml",
        busybox,
        ref="example.org/hep/nu:1",
        bundle="nu-v1_20_02",
        layering="product",
        setup=False,
    )
    build(art, tmp_path / "s1", mirror, capsys)
    build(nu, tmp_path / "s2", mirror, capsys)
    art_layers = layer_digests(tmp_path / "s1", ART_REF)
    nu_layers = layer_digests(tmp_path / "s2", "example.org/hep/nu:1")
    assert len(art_layers) == 1 + 8 and len(nu_layers) == 1 + 9
    assert set(art_layers) < set(nu_layers)  # built in separate stores: same bytes, same digests


def test_a_cached_rebuild_writes_and_downloads_nothing(
    tmp_path: Path,
    mirror: Mirror,
    busybox: Path,
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    recipe = write_recipe(tmp_path / "art.yaml", busybox)
    store = tmp_path / "store"
    first = build(recipe, store, mirror, capsys)
    before = store_snapshot(store)
    lock = (tmp_path / "art.yaml.lock").read_bytes()
    requests = len(mirror.requests)
    assert build(recipe, store, mirror, capsys) == first
    assert store_snapshot(store) == before
    assert (tmp_path / "art.yaml.lock").read_bytes() == lock
    assert len(mirror.requests) == requests


def bad_tarball(path: Path, members: list[tuple[str, bytes, str]]) -> None:
    """Replace a tarball by one with the given (name, type, link) members."""
    with tarfile.open(path, "w:bz2") as tar:
        for name, kind, link in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = link
            tar.addfile(info)


BROKEN = {
    "dotdot": (
        lambda root: bad_tarball(
            root / ART_TARBALL, [("art/v1_18_03/../../../etc/passwd", tarfile.REGTYPE, "")]
        ),
        "art v1_18_03: {url}/"
        + ART_TARBALL
        + ": member 'art/v1_18_03/../../../etc/passwd' contains '..'",
    ),
    "escaping-symlink": (
        lambda root: bad_tarball(
            root / ART_TARBALL, [("art/v1_18_03/lib", tarfile.SYMTYPE, "../../../../etc")]
        ),
        "art v1_18_03: {url}/"
        + ART_TARBALL
        + ": symlink /products/art/v1_18_03/lib -> ../../../../etc climbs above the image root",
    ),
    "truncated": (
        lambda root: (root / ART_TARBALL).write_bytes((root / ART_TARBALL).read_bytes()[:-200]),
        "art v1_18_03: {url}/" + ART_TARBALL + ": not a readable tarball (truncated or damaged?)",
    ),
    "manifest-missing": (
        lambda root: shutil.rmtree(root / "bundles/art"),
        "manifest of art-v1_18_03: found at neither location: {url}/bundles/art/v1_18_03/manifest/"
        f"art-1.18.03-{SLF6}-e9-prof_MANIFEST.txt: HTTP 404 File not found; "
        f"{{url}}/manifest/art/v1_18_03/art-1.18.03-{SLF6}-e9-prof_MANIFEST.txt: HTTP 404",
    ),
    "product-404": (
        lambda root: (
            root / "packages/cetlib/v1_15_03/cetlib-1.15.03-slf6-x86_64-e9-prof.tar.bz2"
        ).unlink(),
        "cetlib v1_15_03: {url}/packages/cetlib/v1_15_03/cetlib-1.15.03-slf6-x86_64-e9-prof.tar.bz2: HTTP 404",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_mirrors_give_clear_errors_and_write_nothing(
    case: str,
    tmp_path: Path,
    own_mirror: Mirror,
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = tmp_path / "store"
    good = tmp_path / "good.yaml"
    good.write_text(
        "images:\n  - name: a/good\n    layers:\n      - files: [{content: ok, dest: /ok}]\n"
    )
    assert ocibuild("--store", str(store), "-q", "recipe", str(good)) == 0
    before = store_snapshot(store)
    change, message = BROKEN[case]
    change(own_mirror.root / "scisoft")
    # one layer: an error found while streaming a tarball discards that layer, but layers
    # written alongside it stay in the store, unreferenced, until `ocibuild gc`
    recipe = write_recipe(tmp_path / "art.yaml", None, layering="bundle", setup=False)
    capsys.readouterr()
    code = ocibuild("--store", str(store), "-q", "recipe", "--mirror", own_mirror.url, str(recipe))
    err = capsys.readouterr().err
    assert code != 0
    assert message.format(url=own_mirror.url) in err, err
    assert store_snapshot(store) == before
    assert not (tmp_path / "art.yaml.lock").exists()


def test_a_tarball_changed_since_the_lock_is_refused(
    tmp_path: Path,
    own_mirror: Mirror,
    busybox: Path,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = tmp_path / "store"
    recipe = write_recipe(tmp_path / "art.yaml", busybox)
    build(recipe, store, own_mirror, capsys)
    before = store_snapshot(store)
    lock = (tmp_path / "art.yaml.lock").read_bytes()
    root = own_mirror.root / "scisoft"
    (root / ART_TARBALL).write_bytes(
        (root / "packages/gcc/v4_9_3/gcc-4.9.3-slf6-x86_64.tar.bz2").read_bytes()
    )
    # here, the store holds every layer the lock pins: nothing is downloaded, the image stands
    monkeypatch.setenv("OCIBUILD_CACHE", str(tmp_path / "other-cache"))
    requests = len(own_mirror.requests)
    build(recipe, store, own_mirror, capsys)
    assert not [r for r in own_mirror.requests[requests:] if r.endswith(".tar.bz2")]
    assert store_snapshot(store) == before
    # on another machine (another store and download cache) the changed tarball is refused
    other = tmp_path / "other-store"
    monkeypatch.setenv("OCIBUILD_CACHE", str(tmp_path / "another-cache"))
    code = ocibuild("--store", str(other), "-q", "recipe", "--mirror", own_mirror.url, str(recipe))
    err = capsys.readouterr().err
    assert code != 0
    assert f"art v1_18_03: {own_mirror.url}/{ART_TARBALL} changed: got sha256" in err, err
    assert "--update-lock" in err
    assert not Store.open(other).refs()
    assert (tmp_path / "art.yaml.lock").read_bytes() == lock


def test_a_lock_made_against_one_mirror_checks_another(
    tmp_path: Path,
    mirror: Mirror,
    mirror_files: Path,
    busybox: Path,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A site mirror (here a local copy, as a file path) serves the same tarballs: the lock
    written against the first mirror applies to it, and a tarball that differs is refused."""
    recipe = write_recipe(tmp_path / "art.yaml", busybox)
    build(recipe, tmp_path / "store", mirror, capsys)
    lock = (tmp_path / "art.yaml.lock").read_bytes()
    site = tmp_path / "site-mirror"
    shutil.copytree(mirror_files / "scisoft", site)
    monkeypatch.setenv("OCIBUILD_CACHE", str(tmp_path / "site-cache"))
    code = ocibuild(
        "--store", str(tmp_path / "store2"), "-q", "recipe", "--mirror", str(site), str(recipe)
    )
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "art.yaml.lock").read_bytes() == lock
    (site / ART_TARBALL).write_bytes(
        (site / "packages/gcc/v4_9_3/gcc-4.9.3-slf6-x86_64.tar.bz2").read_bytes()
    )
    monkeypatch.setenv("OCIBUILD_CACHE", str(tmp_path / "third-cache"))
    capsys.readouterr()
    code = ocibuild(
        "--store", str(tmp_path / "store3"), "-q", "recipe", "--mirror", str(site), str(recipe)
    )
    err = capsys.readouterr().err
    assert code != 0
    assert f"{site.as_uri()}/{ART_TARBALL} changed" in err, err


def test_verbose_build_reports_cpu_seconds_per_stage(
    tmp_path: Path, mirror: Mirror, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`-v` ends with the CPU seconds each stage took (what bench/ups_bench.py prints)."""
    recipe = write_recipe(tmp_path / "art.yaml", None, setup=False)
    capsys.readouterr()
    code = ocibuild("--store", str(tmp_path / "store"), "-v", "recipe", "--mirror", mirror.url,
                    str(recipe))  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("cpu seconds: ") and err.count("cpu seconds: ") == 1
    parts = dict(p.rsplit(" ", 1) for p in line.split(": ", 1)[1].split(" (")[0].split(", "))
    assert {"download", "decode", "tar", "hash", "native threads", "compress threads", "rest"} <= (
        parts.keys()
    )
    assert all(float(v) >= 0 for v in parts.values())
    process = float(line.rsplit("(process ", 1)[1].rstrip(")").split(", child processes ")[0])
    assert process >= sum(map(float, parts.values())) - 0.05 * len(parts)  # each rounded to 0.1


def test_layers_are_written_while_later_tarballs_still_download(
    tmp_path: Path, own_mirror: Mirror
) -> None:
    """The mirror holds back the last product's tarball until the first product's layer is
    built: the build finishes only if layers are written while downloads are under way."""
    first_built = threading.Event()
    own_mirror.held["ups-5.1.4-Linux64bit+2.6-2.12.tar.bz2"] = first_built

    def report(event: Event) -> None:
        events(event)
        if (
            isinstance(event, LayerEvent)
            and event.status == "built"
            and "art v1_18_03" in (event.description)
        ):
            first_built.set()

    events = Events()
    recipe = write_recipe(tmp_path / "art.yaml", None, layering="product", setup=False)
    started = time.monotonic()
    (built,) = build_recipe(
        recipe,
        Store.open(tmp_path / "store"),
        BuildSettings(mirror=own_mirror.url, cache_dir=tmp_path / "cache", jobs=1),
        report,
    )
    assert first_built.is_set()
    assert time.monotonic() - started < 25, "the held download timed out: no overlap"
    assert len(built.layers) == 8
    seen = events.seen
    first = next(i for i, e in enumerate(seen) if isinstance(e, LayerEvent) and e.status == "built")
    last_download = next(
        i
        for i, e in enumerate(seen)
        if isinstance(e, FetchEvent) and e.status == "downloaded" and e.what == "ups v5_1_4"
    )
    assert first < last_download


def test_a_failed_download_stops_the_build_and_the_other_downloads(
    tmp_path: Path, own_mirror: Mirror
) -> None:
    """A tarball missing from the mirror fails the build at its recipe line; the downloads
    still under way stop instead of running on."""
    release = threading.Event()
    own_mirror.held["ups-5.1.4-Linux64bit+2.6-2.12.tar.bz2"] = release
    (own_mirror.root / "scisoft" / ART_TARBALL).unlink()
    recipe = write_recipe(tmp_path / "art.yaml", None, layering="product", setup=False)
    with pytest.raises(FetchError, match=r"art\.yaml:5:\d+: art v1_18_03: .*HTTP 404"):
        build_recipe(
            recipe,
            Store.open(tmp_path / "store"),
            BuildSettings(mirror=own_mirror.url, cache_dir=tmp_path / "cache"),
        )
    release.set()
    deadline = time.monotonic() + 10
    while any(t.name.startswith("fetch") for t in threading.enumerate()):
        assert time.monotonic() < deadline, "downloads still running after the build failed"
        time.sleep(0.05)
    held = own_mirror.root / "scisoft" / UPS_TARBALL
    cache = tmp_path / "cache" / "blobs" / "sha256"
    assert not (cache / hashlib.sha256(held.read_bytes()).hexdigest()).exists()


def test_with_a_lock_one_layer_reads_its_first_tarballs_while_the_last_downloads(
    tmp_path: Path, own_mirror: Mirror
) -> None:
    """Every tarball pinned: the layer's key is known before any download, so even the one
    layer of `layering: bundle` is being written while the mirror holds back its last
    tarball (released once the layer has started)."""
    recipe = write_recipe(tmp_path / "art.yaml", None, layering="bundle", setup=False)
    options = BuildSettings(mirror=own_mirror.url, cache_dir=tmp_path / "cache", jobs=1)
    build_recipe(recipe, Store.open(tmp_path / "store"), options)  # writes the lock file
    assert (tmp_path / "art.yaml.lock").exists()

    writing = threading.Event()
    own_mirror.held["ups-5.1.4-Linux64bit+2.6-2.12.tar.bz2"] = writing
    events = Events()

    def report(event: Event) -> None:
        events(event)
        if isinstance(event, LayerEvent) and event.status == "building":
            writing.set()

    fresh = BuildSettings(mirror=own_mirror.url, cache_dir=tmp_path / "cache2", jobs=1)
    started = time.monotonic()
    (built,) = build_recipe(recipe, Store.open(tmp_path / "store2"), fresh, report)
    assert time.monotonic() - started < 25, "the held download timed out: no overlap"
    seen = events.seen
    building = next(
        i for i, e in enumerate(seen) if isinstance(e, LayerEvent) and e.status == "building"
    )
    last = next(
        i
        for i, e in enumerate(seen)
        if isinstance(e, FetchEvent) and e.status == "downloaded" and e.what == "ups v5_1_4"
    )
    assert building < last
    assert [d.digest for d in built.manifest.layers] == [
        d.digest for d in Store.open(tmp_path / "store").image(ART_REF).manifest.layers
    ]
