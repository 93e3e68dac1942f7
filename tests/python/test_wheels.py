"""The wheels source on real wheels (fetched at CI set-up, served on 127.0.0.1): the tree
against what pip and uv install from the same wheels, the lock and offline rebuilds, the index
protocols and configuration, the three input forms (written by uv), targets and platforms."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import marshal
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import packaging.tags
import pytest

from ocibuild.errors import SourceError
from ocibuild.fetch import LockFile
from ocibuild.layer.entry import Kind
from ocibuild.progress import Message
from ocibuild.python.pipconfig import read_pip_indexes
from ocibuild.python.target import TargetPython
from ocibuild.sources import wheels
from ocibuild.sources.base import LayerPlan
from ocibuild.sources.session import LayerContext
from ocibuild.sources.specs import PythonSpec, WheelsSpec
from tests.events import Events
from tests.ospkg.helpers import write_plan
from tests.python.helpers import (
    SITE,
    as_target_tree,
    layer_files,
    pip_target,
    tree_files,
    uv_target,
)
from tests.python.pyindex import IndexServer

Ctx = Callable[..., LayerContext]
STACK = ["numpy", "awkward", "uproot", "hist", "coffea"]
SHAPES = ["tqdm", "jaraco.context", "pybind11-global", "numba"]


def _plan(spec: WheelsSpec, ctx: LayerContext) -> LayerPlan:
    (plan,) = wheels.plan(spec, ctx)
    return plan


def _resolved(ctx: LayerContext) -> list[dict[str, object]]:
    ctx.session.lock.save()
    (resolution,) = json.loads(Path(str(ctx.session.lock.path)).read_text())["resolved"].values()
    return list(resolution)


def test_tags_are_what_packaging_gives_this_host() -> None:
    """The tags for CPython 3.11 on glibc 2.36 x86_64 (Debian 12), computed from the image's
    packages, are exactly those packaging computes for this host, which is that platform."""
    glibc = os.confstr("CS_GNU_LIBC_VERSION").split()[1]
    major, minor = (int(p) for p in glibc.split("."))
    import platform

    host = TargetPython((*sys.version_info[:3],), (major, minor), platform.machine(), "/x")
    assert [str(t) for t in host.tags] == [str(t) for t in packaging.tags.sys_tags()]


def test_same_tree_as_pip(
    pyindex: IndexServer, wheel_dir: Path, make_ctx: Ctx, tmp_path: Path
) -> None:
    """Entry points (tqdm, numpy), a PEP 420 namespace (jaraco) and a pkgutil one (backports),
    .data headers and data (pybind11-global), .data scripts (numba), platlib with auditwheel's
    numpy.libs: file for file and byte for byte what Debian's pip installs from the same wheels,
    but for RECORD, INSTALLER, the pycs and the entry-point scripts' template."""
    ctx = make_ctx()
    ours = layer_files(_plan(WheelsSpec(requirements=SHAPES, index_url=pyindex.simple), ctx))
    pip_target(wheel_dir, tmp_path / "pip", SHAPES)
    theirs = tree_files(tmp_path / "pip")
    entry_points = {"bin/tqdm", "bin/f2py", "bin/numpy-config"}

    def comparable(files: dict[str, tuple[int, str]]) -> dict[str, tuple[int, str]]:
        return {
            p: v
            for p, v in files.items()
            if not p.endswith(("/RECORD", "/INSTALLER", ".pyc")) and p not in entry_points
        }

    mapped = {as_target_tree(p): v for p, v in ours.items()}
    assert comparable(mapped) == comparable(theirs)
    assert {p for p in theirs if p.endswith(".pyc")} == set()
    # what is there to compare: each shape present
    for path in (
        "numpy.libs",
        "jaraco/context/__init__.py",
        "backports/__init__.py",
        "bin/numba",
        "include/python/pybind11-global/pybind11/pybind11.h",
        "share/cmake/pybind11/pybind11Config.cmake",
    ):
        assert any(p == path or p.startswith(path + "/") for p in mapped), path
    assert set(entry_points) <= set(mapped) and set(entry_points) <= set(theirs)
    for script in entry_points:
        assert mapped[script][0] == theirs[script][0] == 0o755
    for path in mapped:
        if path.endswith(".pyc"):
            assert path.replace("/__pycache__", "").replace(".cpython-311.pyc", ".py") in mapped


def test_entry_point_script_and_record(pyindex: IndexServer, make_ctx: Ctx) -> None:
    _, members = write_plan(
        _plan(WheelsSpec(requirements=["tqdm"], index_url=pyindex.simple), make_ctx())
    )
    script = members["usr/local/bin/tqdm"][1].decode()
    assert script.startswith("#!/usr/bin/python3\n") and "from tqdm.cli import main" in script
    dist_info = SITE + "tqdm-4.70.1.dist-info/"
    assert members[dist_info + "INSTALLER"][1] == b"ocibuild\n"
    assert members[dist_info + "REQUESTED"][1] == b""
    record = members[dist_info + "RECORD"][1].decode().splitlines()
    rows = {line.rsplit(",", 2)[0]: line for line in record}
    assert "../../../bin/tqdm" in rows and rows["tqdm-4.70.1.dist-info/RECORD"].endswith(",,")
    installed = {p[len(SITE) :] for p in members if p.startswith(SITE) and members[p][0].isfile()}
    installed |= {"../../../bin/tqdm"}
    assert set(rows) == installed
    assert rows["tqdm/__pycache__/std.cpython-311.pyc"].split(",")[1].startswith("sha256=")


def test_pycs_are_unchecked_hash_pycs_of_the_image_path(
    pyindex: IndexServer, make_ctx: Ctx
) -> None:
    _, members = write_plan(
        _plan(WheelsSpec(requirements=["tqdm"], index_url=pyindex.simple), make_ctx())
    )
    source = members[SITE + "tqdm/std.py"][1]
    pyc = members[SITE + "tqdm/__pycache__/std.cpython-311.pyc"][1]
    assert pyc[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # hash-based, not checked against the source
    assert pyc[8:16] == importlib.util.source_hash(source)
    code = marshal.loads(pyc[16:])
    assert code.co_filename == "/" + SITE + "tqdm/std.py"
    # the same bytes as a fresh interpreter compiling that file gives (py_compile, unchecked)
    assert pyc == _py_compile(source, "/" + SITE + "tqdm/std.py")


def _py_compile(source: bytes, name: str) -> bytes:
    script = (
        "import importlib.util, marshal, struct, sys\n"
        "src = sys.stdin.buffer.read()\n"
        f"code = compile(src, {name!r}, 'exec', dont_inherit=True)\n"
        "sys.stdout.buffer.write(importlib.util.MAGIC_NUMBER + struct.pack('<I', 1)"
        " + importlib.util.source_hash(src) + marshal.dumps(code))\n"
    )
    return subprocess.run(
        [sys.executable, "-S", "-s", "-c", script],
        input=source,
        capture_output=True,
        check=True,
        env={"PYTHONHASHSEED": "0"},
    ).stdout


def test_lock_makes_the_rebuild_offline_and_identical(
    pyindex: IndexServer, make_ctx: Ctx, tmp_path: Path
) -> None:
    spec = WheelsSpec(requirements=["tqdm", "jaraco.context"], index_url=pyindex.simple)
    first_ctx = make_ctx()
    first = _plan(spec, first_ctx)
    blob, _ = write_plan(first)
    resolved = _resolved(first_ctx)
    assert [(r["name"], r["version"], r["requested"]) for r in resolved] == [
        ("backports.tarfile", "1.2.0", False),
        ("jaraco.context", "6.1.2", True),
        ("tqdm", "4.70.1", True),
    ]
    pins = json.loads((tmp_path / "recipe.yaml.lock").read_text())["files"]
    assert {url.rsplit("/", 1)[1] for url in pins} == {r["filename"] for r in resolved}

    pyindex.requests.clear()
    again_ctx = make_ctx(lock=LockFile.load(tmp_path / "recipe.yaml.lock"), offline=True)
    again = _plan(spec, again_ctx)
    assert again.key == first.key
    assert write_plan(again)[0].diff_id == blob.diff_id
    assert pyindex.requests == []  # offline: the lock and the download cache answered


def test_update_lock_resolves_again(pyindex: IndexServer, make_ctx: Ctx, tmp_path: Path) -> None:
    spec = WheelsSpec(requirements=["tqdm"], index_url=pyindex.simple)
    ctx = make_ctx()
    _plan(spec, ctx)
    ctx.session.lock.save()
    pyindex.requests.clear()
    _plan(spec, make_ctx(lock=LockFile.load(tmp_path / "recipe.yaml.lock")))
    assert pyindex.requests == []
    _plan(spec, make_ctx(lock=LockFile.load(tmp_path / "recipe.yaml.lock"), update_lock=True))
    assert "/simple/tqdm/" in pyindex.requests


def test_html_index_and_metadata_from_the_wheel(pyindex: IndexServer, make_ctx: Ctx) -> None:
    """PEP 503 HTML (no JSON offered, no METADATA files): the wheel is read for its METADATA."""
    ctx = make_ctx()
    plan = _plan(WheelsSpec(requirements=["jaraco.context"], index_url=f"{pyindex.url}/html"), ctx)
    assert "/html/jaraco-context/" in pyindex.requests
    assert not [r for r in pyindex.requests if r.endswith(".metadata")]
    assert [r["name"] for r in _resolved(ctx)] == ["backports.tarfile", "jaraco.context"]
    assert SITE + "jaraco/context/__init__.py" in layer_files(plan)


def test_json_index_serves_metadata_apart(pyindex: IndexServer, make_ctx: Ctx) -> None:
    pyindex.requests.clear()
    _plan(WheelsSpec(requirements=["tqdm"], index_url=pyindex.simple), make_ctx())
    assert pyindex.requests == ["/simple/tqdm/", "/files/tqdm-4.70.1-py3-none-any.whl.metadata"]


def test_find_links_directory_without_an_index(wheel_dir: Path, make_ctx: Ctx) -> None:
    ctx = make_ctx()
    _plan(WheelsSpec(requirements=["tqdm"], find_links=[str(wheel_dir)], no_index=True), ctx)
    (found,) = _resolved(ctx)
    assert found["url"] == (wheel_dir / "tqdm-4.70.1-py3-none-any.whl").as_uri()
    assert len(str(found["sha256"])) == 64


def test_the_index_comes_from_pip_configuration(
    pyindex: IndexServer, make_ctx: Ctx, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--index-url over PIP_INDEX_URL over pip.conf over the recipe's index_url."""
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nindex-url = {pyindex.url}/html\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    assert read_pip_indexes().index_url == f"{pyindex.url}/html"
    spec = WheelsSpec(requirements=["tqdm"], index_url=f"{pyindex.url}/empty")

    def asked(**settings: object) -> set[str]:
        pyindex.requests.clear()
        _plan(spec, make_ctx(**settings))
        return {r.split("/")[1] for r in pyindex.requests if r.endswith("/tqdm/")}

    assert asked() == {"html"}
    monkeypatch.setenv("PIP_INDEX_URL", pyindex.simple)
    assert asked() == {"simple"}
    monkeypatch.delenv("PIP_INDEX_URL")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    with pytest.raises(SourceError, match=r"no project tqdm on http://127.0.0.1:[0-9]+/empty"):
        asked()
    assert asked(index_url=pyindex.simple) == {"simple"}


def _uv_compile(pyindex: IndexServer, tmp_path: Path, requirements: list[str], *args: str) -> Path:
    uv = shutil.which("uv")
    assert uv, "uv is not installed: scripts/setup-test-env installs it (.ci/constraints.txt)"
    (tmp_path / "requirements.in").write_text("\n".join(requirements) + "\n")
    out = tmp_path / ("pylock.toml" if "pylock.toml" in args else "requirements.txt")
    subprocess.run(
        [uv, "pip", "compile", "-q", "--no-config", "--index-url", pyindex.simple,
         "--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_36",
         *args, str(tmp_path / "requirements.in"), "-o", str(out)],
        check=True, capture_output=True, env={**os.environ, "UV_CACHE_DIR": str(tmp_path / "uv")},
    )  # fmt: skip
    return out


def test_requirements_file_with_hashes_from_uv(
    pyindex: IndexServer, make_ctx: Ctx, tmp_path: Path
) -> None:
    path = _uv_compile(pyindex, tmp_path, ["jaraco.context", "tqdm"], "--generate-hashes")
    assert "--hash=sha256:" in path.read_text()
    ctx = make_ctx()
    _plan(WheelsSpec(requirements_file=path.name, index_url=pyindex.simple), ctx)
    assert {(r["name"], r["requested"]) for r in _resolved(ctx)} == {
        ("backports.tarfile", True),
        ("jaraco.context", True),
        ("tqdm", True),
    }
    # hash-checking mode installs nothing the file does not pin
    text = path.read_text()
    start = text.index("backports-tarfile==")
    end = text.index("\n", text.index("--hash", start) + 80)
    path.write_text(text[:start] + text[end + 1 :])
    with pytest.raises(SourceError, match=r"backports-tarfile is needed .* does not pin it"):
        _plan(
            WheelsSpec(requirements_file=path.name, index_url=pyindex.simple),
            make_ctx(update_lock=True),
        )


def test_pylock_from_uv(pyindex: IndexServer, make_ctx: Ctx, tmp_path: Path) -> None:
    path = _uv_compile(pyindex, tmp_path, ["jaraco.context", "tqdm"], "--format", "pylock.toml")
    ctx = make_ctx()
    plan = _plan(WheelsSpec(lock=path.name, index_url=pyindex.simple), ctx)
    assert [r["filename"] for r in _resolved(ctx)] == [
        "backports.tarfile-1.2.0-py3-none-any.whl",
        "jaraco_context-6.1.2-py3-none-any.whl",
        "tqdm-4.70.1-py3-none-any.whl",
    ]
    assert SITE + "tqdm/std.py" in layer_files(plan)


def test_venv_target(pyindex: IndexServer, make_ctx: Ctx) -> None:
    plan = _plan(
        WheelsSpec(requirements=["tqdm"], index_url=pyindex.simple, target="/opt/venv"), make_ctx()
    )
    _, members = write_plan(plan)
    assert members["opt/venv/bin/python"][0].linkname == "/usr/bin/python3"
    assert members["opt/venv/lib64"][0].linkname == "lib"
    assert b"version = 3.11.2\n" in members["opt/venv/pyvenv.cfg"][1]
    assert members["opt/venv/bin/tqdm"][1].startswith(b"#!/opt/venv/bin/python\n")
    assert "opt/venv/lib/python3.11/site-packages/tqdm/std.py" in members


def test_aarch64_image_from_an_x86_64_host(pyindex: IndexServer, make_ctx: Ctx) -> None:
    """The platform is the image's: numpy's aarch64 wheel, its ELF files for aarch64 (e_machine
    183), its pycs compiled here all the same (bytecode does not depend on the machine)."""
    python = PythonSpec(platform="manylinux_2_36_aarch64")
    ctx = make_ctx()
    plan = _plan(WheelsSpec(requirements=["numpy"], index_url=pyindex.simple, python=python), ctx)
    (numpy,) = _resolved(ctx)
    assert str(numpy["filename"]).endswith("manylinux_2_28_aarch64.whl")
    checked = 0
    for entry in plan.entries():
        if entry.kind is Kind.FILE and ".so" in entry.path and entry.open is not None:
            with entry.open() as f:
                head = f.read(20)
            if head[:4] == b"\x7fELF":
                assert int.from_bytes(head[18:20], "little") == 183, entry.path
                checked += 1
        assert not entry.path.endswith(".pyc") or entry.path.endswith(".cpython-311.pyc")
    assert checked > 10


def test_components_for_the_sbom(pyindex: IndexServer, make_ctx: Ctx) -> None:
    url = pyindex.simple.replace("http://", "http://user:secret@")
    plan = _plan(WheelsSpec(requirements=["tqdm", "numpy"], index_url=url), make_ctx())
    assert plan.components is not None
    found = {c.name: c for c in plan.components()}
    assert found["tqdm"].purl == "pkg:pypi/tqdm@4.70.1"
    assert found["tqdm"].licenses == ("MPL-2.0 AND MIT",)
    assert found["numpy"].licenses and len(found["numpy"].sha256) == 64
    assert "secret" not in found["numpy"].url and found["numpy"].url.endswith(".whl")


def test_files_a_package_of_a_lower_layer_owns(pyindex: IndexServer, make_ctx: Ctx) -> None:
    from tests.python.conftest import BOOKWORM_STATUS

    lower = {
        "var/lib/dpkg/status": BOOKWORM_STATUS,
        "var/lib/dpkg/info/tqdm-tools.list": b"/.\n/usr\n/usr/local\n/usr/local/bin\n/usr/local/bin/tqdm\n",
    }
    spec = WheelsSpec(requirements=["tqdm"], index_url=pyindex.simple)
    with pytest.raises(
        SourceError,
        match=r"/usr/local/bin/tqdm of tqdm-4.70.1-py3-none-any.whl is a file of deb tqdm-tools",
    ):
        layer_files(_plan(spec, make_ctx(lower=lower)))
    events = Events()
    layer_files(
        _plan(dataclasses.replace(spec, overlaps="warn"), make_ctx(lower=lower, events=events))
    )
    assert [m for m in events.of(Message) if m.level == "warning" and "tqdm-tools" in m.message]


def test_distributions_a_lower_layer_installed(pyindex: IndexServer, make_ctx: Ctx) -> None:
    from tests.python.conftest import BOOKWORM_STATUS

    metadata = b"Metadata-Version: 2.1\nName: tqdm\nVersion: 4.70.1\n"
    lower = {
        "var/lib/dpkg/status": BOOKWORM_STATUS,
        SITE + "tqdm-4.70.1.dist-info/METADATA": metadata,
    }
    ctx = make_ctx(lower=lower)
    _plan(WheelsSpec(requirements=["tqdm"], index_url=pyindex.simple), ctx)
    assert _resolved(ctx) == []
    with pytest.raises(SourceError, match=r"tqdm 4\.70\.1 is installed by a lower layer"):
        _plan(WheelsSpec(requirements=["tqdm<4"], index_url=pyindex.simple), make_ctx(lower=lower))


def test_no_python_in_the_image(pyindex: IndexServer, make_ctx: Ctx) -> None:
    with pytest.raises(SourceError, match="cannot tell the image's Python version and platform"):
        _plan(WheelsSpec(requirements=["tqdm"], index_url=pyindex.simple), make_ctx(lower={}))


@pytest.mark.slow
def test_scientific_stack_same_tree_as_uv(
    pyindex: IndexServer, wheel_dir: Path, make_ctx: Ctx, tmp_path: Path
) -> None:
    """numpy, awkward, uproot, hist and coffea with everything they need (83 wheels, 0.8 GB
    installed): the same files, bytes and modes as `uv pip install --target` (which marks
    every distribution REQUESTED, pip and ocibuild those asked for, and adds its own
    `uv_cache.json` and `.lock`)."""
    ctx = make_ctx()
    ours = layer_files(
        _plan(WheelsSpec(requirements=STACK, index_url=pyindex.simple, compile=False), ctx)
    )
    uv_target(wheel_dir, tmp_path / "uv", STACK)
    theirs = tree_files(tmp_path / "uv")
    scripts = {p for p in theirs if p.startswith("bin/")}

    def comparable(files: dict[str, tuple[int, str]]) -> dict[str, tuple[int, str]]:
        return {
            p: v
            for p, v in files.items()
            if not p.endswith(("/RECORD", "/INSTALLER", "/REQUESTED", "/uv_cache.json"))
            and p not in scripts
            and p != ".lock"
        }

    mapped = {as_target_tree(p): v for p, v in ours.items()}
    assert comparable(mapped) == comparable(theirs)
    assert {p for p in mapped if p.startswith("bin/")} == scripts
    assert len(_resolved(ctx)) == 83 and len(mapped) > 15000


def test_bytecode_needs_a_host_python_of_the_images_version(
    pyindex: IndexServer, make_ctx: Ctx, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Python 3.12 image, and no python3.12 here: the error says so at planning; without
    pycs the layer is made, its scripts naming /usr/bin/python3.12 (the image has no python3
    3.12, the override says 3.12)."""
    monkeypatch.setenv("PATH", str(tmp_path))
    python = PythonSpec(version="3.12")
    spec = WheelsSpec(requirements=["tqdm"], index_url=pyindex.simple, python=python)
    with pytest.raises(
        SourceError, match=r"needs a python3\.12 on this host .* set `compile: false`"
    ):
        _plan(spec, make_ctx())
    files = layer_files(_plan(dataclasses.replace(spec, compile=False), make_ctx()))
    assert "usr/local/lib/python3.12/dist-packages/tqdm/std.py" in files
    assert not [p for p in files if p.endswith(".pyc")]
    _, members = write_plan(_plan(dataclasses.replace(spec, compile=False), make_ctx()))
    assert members["usr/local/bin/tqdm"][1].startswith(b"#!/usr/bin/python3.12\n")
