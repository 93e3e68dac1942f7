"""The deb source against an apt repository made in the tests (real dpkg-deb packages, served on
127.0.0.1): resolution, the unpacked tree against `dpkg-deb -c`, dpkg's database, errors."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from ocibuild.errors import DigestMismatchError, SourceError, UnsafePathError
from ocibuild.ospkg.debindex import DebPackage, parse_release, strip_clearsign
from ocibuild.ospkg.debresolve import DebResolver, InstalledDeb
from ocibuild.ospkg.debver import Relation
from ocibuild.ospkg.record import RECORD_PATH
from ocibuild.sources import deb
from ocibuild.sources.base import LayerContext, LayerPlan
from ocibuild.sources.specs import DebSpec
from tests.events import Events
from tests.ospkg.conftest import AptRepo, serve
from tests.ospkg.helpers import write_plan


def _plan(repo: AptRepo, packages: list[str], ctx: LayerContext) -> LayerPlan:
    spec = DebSpec(repos=[repo.repo()], packages=packages)
    (plan,) = deb.plan(spec, ctx)
    return plan


def _dpkg_paths(path: Path) -> set[str]:
    out = subprocess.run(["dpkg-deb", "-c", str(path)], capture_output=True, text=True, check=True)
    names = set()
    for line in out.stdout.splitlines():
        name = line.split(None, 5)[5].split(" -> ")[0].split(" link to ")[0]
        names.add(name.removeprefix("./").rstrip("/"))
    return names - {""}


def test_resolution_layer_and_dpkg_database(
    apt_repo: AptRepo, make_ctx: Callable[..., LayerContext]
) -> None:
    events = Events()
    _, members = write_plan(_plan(apt_repo, ["app"], make_ctx(events=events)))
    installed = ["app", "base-thing", "libfoo", "provider"]  # libfoo before libbar; a provider
    files = ["app_1.0", "base-thing_1.0", "libfoo_1.2", "provider_1.0"]
    expected: set[str] = set()
    for name in files:
        expected |= _dpkg_paths(apt_repo.root / "pool" / "main" / f"{name}_amd64.deb")
    assert "usr/lib/libfoo.so.1" in members and "usr/lib/libfoo.so.0" not in members  # newest
    payload = {p for p in members if not p.startswith(("var/lib/dpkg", "var/lib/ocibuild"))}
    assert payload == expected | {"var", "var/lib"}
    info = {name: members[name][0] for name in ("usr/bin/app-link", "usr/share/app/b")}
    assert info["usr/bin/app-link"].linkname == "app"
    assert info["usr/share/app/b"].islnk() and info["usr/share/app/b"].linkname == "usr/share/app/a"

    status = members["var/lib/dpkg/status"][1].decode()
    assert [line[9:] for line in status.splitlines() if line.startswith("Package: ")] == installed
    app = status.split("Package: app\n")[1].split("\n\n")[0]
    assert "Status: install ok installed" in app
    conf_md5 = hashlib.md5(b"setting=1\n").hexdigest()
    assert f"Conffiles:\n /etc/app.conf {conf_md5}\n" in app
    assert "Description: an application\n with a long description" in app
    assert members["var/lib/dpkg/info/app.list"][1].decode().splitlines()[:3] == [
        "/.",
        "/etc",
        "/etc/app.conf",
    ]
    assert members["var/lib/dpkg/info/app.postinst"][0].mode == 0o755
    assert members["var/lib/dpkg/info/format"][1] == b"1\n"

    record = {p["name"]: p for p in json.loads(members[RECORD_PATH][1])["packages"]}
    assert record["app"]["skipped_scripts"] == ["postinst"]
    assert record["base-thing"]["skipped_scripts"] == ["preinst"]
    assert record["app"]["repo"] == f"{apt_repo.url} test"
    messages = events.messages()
    assert any("app (postinst)" in m and "base-thing (preinst)" in m for m in messages)


def test_dpkg_reads_the_database(
    apt_repo: AptRepo, make_ctx: Callable[..., LayerContext], tmp_path: Path
) -> None:
    _, members = write_plan(_plan(apt_repo, ["app"], make_ctx()))
    admin = tmp_path / "dpkg"
    for name, (info, data) in members.items():
        if name.startswith("var/lib/dpkg/"):
            target = admin / name.removeprefix("var/lib/dpkg/")
            if info.isdir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
    listed = subprocess.run(
        ["dpkg-query", f"--admindir={admin}", "-W", "-f", "${db:Status-Abbrev} ${Package} ${Version}\n"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert listed == ["ii  app 1.0", "ii  base-thing 1.0", "ii  libfoo 1.2", "ii  provider 1.0"]
    files = subprocess.run(
        ["dpkg-query", f"--admindir={admin}", "-L", "app"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "/usr/share/app/b" in files.stdout.splitlines()
    audit = subprocess.run(
        ["dpkg", f"--admindir={admin}", "--audit"], capture_output=True, text=True, check=False
    )
    assert audit.returncode == 0 and audit.stdout == ""


def test_the_base_status_is_merged_and_its_packages_skipped(
    apt_repo: AptRepo, make_ctx: Callable[..., LayerContext]
) -> None:
    base = b"Package: base-thing\nStatus: install ok installed\nVersion: 0.5\nArchitecture: amd64\nDescription: old\n\nPackage: zsh\nStatus: install ok installed\nVersion: 5\nArchitecture: amd64\nProvides: virt-thing\nDescription: z\n"
    _, members = write_plan(_plan(apt_repo, ["app"], make_ctx({"var/lib/dpkg/status": base})))
    status = members["var/lib/dpkg/status"][1].decode()
    names = [line[9:] for line in status.splitlines() if line.startswith("Package: ")]
    assert names == ["app", "base-thing", "libfoo", "zsh"]  # virt-thing: zsh provides it
    assert "usr/share/base-thing" not in members and "Version: 0.5" in status


def test_identical_files_are_shared_and_different_ones_conflict(
    apt_repo: AptRepo, make_ctx: Callable[..., LayerContext]
) -> None:
    _, members = write_plan(_plan(apt_repo, ["same-x", "same-y"], make_ctx()))
    assert {"usr/share/same", "usr/share/x", "usr/share/y"} <= set(members)
    with pytest.raises(SourceError) as e:
        write_plan(_plan(apt_repo, ["clash-x", "clash-y"], make_ctx()))
    assert (
        str(e.value)
        == "file conflict: /etc/clash is in both clash-x_1.0_amd64 and clash-y_1.0_amd64 (different content)"
    )


def test_a_payload_escaping_the_root_is_refused(
    apt_repo: AptRepo, make_ctx: Callable[..., LayerContext]
) -> None:
    plan = _plan(apt_repo, ["evil"], make_ctx())
    with pytest.raises(
        UnsafePathError, match=r"deb evil_1.0_amd64 .*'\.\./escaped' contains '\.\.'"
    ):
        write_plan(plan)


def test_errors(apt_repo: AptRepo, make_ctx: Callable[..., LayerContext]) -> None:
    with pytest.raises(
        SourceError, match=r"recipe.yaml:3:7: deb: no package 'ap' .*did you mean 'app'"
    ):
        _plan(apt_repo, ["ap"], make_ctx())
    with pytest.raises(SourceError, match=r"no package 'libfoo=2.0' .*versions there: 0.9, 1.2"):
        _plan(apt_repo, ["libfoo=2.0"], make_ctx())


@pytest.fixture
def apt_copy(apt_repo: AptRepo, tmp_path: Path):  # type: ignore[no-untyped-def]
    root = tmp_path / "repo"
    shutil.copytree(apt_repo.root, root)
    served = serve(root)
    yield AptRepo(next(served), root, apt_repo.key)
    next(served, None)


def test_indexes_and_packages_are_verified(
    apt_copy: AptRepo, make_ctx: Callable[..., LayerContext]
) -> None:
    plan = _plan(apt_copy, ["libbar"], make_ctx())
    deb_file = apt_copy.root / "pool" / "main" / "libbar_1.0_amd64.deb"
    deb_file.write_bytes(deb_file.read_bytes() + b"x")
    with pytest.raises(
        DigestMismatchError, match=r"deb libbar_1.0_amd64: .*/pool/main/libbar_1.0_amd64.deb"
    ):
        write_plan(plan)
    index = apt_copy.root / "dists" / "test" / "main" / "binary-amd64" / "Packages.xz"
    index.write_bytes(index.read_bytes()[:-1] + b"!")
    with pytest.raises(DigestMismatchError, match=r"binary-amd64/Packages.xz: sha256 .*expected"):
        _plan(
            apt_copy,
            ["libbar"],
            make_ctx(cache_dir=make_ctx().session.cache_dir.parent / "fresh"),
        )


def _pkg(
    name: str,
    version: str = "1.0",
    depends: str = "",
    provides: str = "",
    priority: str = "optional",
) -> DebPackage:
    return DebPackage(
        name,
        version,
        "amd64",
        f"pool/{name}.deb",
        1,
        "0" * 64,
        "http://x",
        depends,
        provides,
        "",
        priority,
    )


def test_resolver_alternatives_versions_and_providers() -> None:
    pool = [
        _pkg("a", depends="b (>= 2) | c, mail-transport-agent, d:any"),
        _pkg("b", "1.0"),
        _pkg("b", "1.5"),
        _pkg("c"),
        _pkg("exim", provides="mail-transport-agent", priority="standard"),
        _pkg("postfix", provides="mail-transport-agent", priority="optional"),
        _pkg("d"),
        _pkg("x", depends="ghost (>= 1)"),
    ]
    chosen = [p.name for p in DebResolver(pool).resolve(["a"])]
    assert chosen == ["a", "c", "d", "exim"]  # b too old; the higher-priority provider
    with pytest.raises(SourceError, match=r"^x: nothing provides ghost \(>= 1\)$"):
        DebResolver(pool).resolve(["x"])
    installed = [
        InstalledDeb("c", "1.0", "amd64"),
        InstalledDeb("postfix", "3", "amd64", (Relation("mail-transport-agent"),)),
    ]
    assert [p.name for p in DebResolver(pool, installed=installed).resolve(["a"])] == ["a", "d"]


def test_release_files() -> None:
    signed = (
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSuite: test\nSHA256:\n"
        " " + "a" * 64 + " 12 main/binary-amd64/Packages.xz\n- -dash escaped\n"
        "-----BEGIN PGP SIGNATURE-----\nxyz\n-----END PGP SIGNATURE-----\n"
    )
    assert "- -dash" not in strip_clearsign(signed) and "-dash escaped" in strip_clearsign(signed)
    release = parse_release(strip_clearsign(signed), "InRelease")
    assert release.packages_index("main", "amd64").size == 12  # type: ignore[union-attr]
    with pytest.raises(SourceError, match="lists no SHA256"):
        parse_release("Suite: x\n", "Release")
