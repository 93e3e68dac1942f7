"""The rpm source against a real yum repository (rpmbuild + createrepo_c, served on 127.0.0.1):
resolution compared with dnf's, the unpacked tree with `rpm2cpio | cpio -t` and `rpm --dump`."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from ocibuild.errors import DigestMismatchError, FetchError, SourceError
from ocibuild.fetch import LockFile
from ocibuild.ospkg.compress import decompressed
from ocibuild.ospkg.record import RECORD_PATH, PackageRecord, record_bytes
from ocibuild.ospkg.repomd import parse_primary, parse_repomd
from ocibuild.ospkg.rpmresolve import InstalledRpm, RpmResolver
from ocibuild.sources import rpm
from ocibuild.sources.session import LayerContext
from ocibuild.sources.specs import RpmSpec
from tests.events import Events
from tests.ospkg.conftest import RpmRepo, serve
from tests.ospkg.helpers import dnf_resolution, write_plan

PASSWD = b"root:x:0:0:root:/root:/bin/sh\ndaemon:x:2:2:daemon:/sbin:/sbin/nologin\n"
GROUP = b"root:x:0:\ndaemon:x:2:\nadm:x:4:daemon\n"
BASE = {"etc/passwd": PASSWD, "etc/group": GROUP}


def resolver(repo: RpmRepo, **kwargs: object) -> RpmResolver:
    files = parse_repomd((repo.root / "repodata" / "repomd.xml").read_bytes(), "repomd")
    path = repo.root / files["primary"].href
    with open(path, "rb") as f, decompressed(f, "gzip", str(path)) as xml:
        packages = list(parse_primary(xml, repo.url, str(path)))
    return RpmResolver(packages, **kwargs)  # type: ignore[arg-type]


def nevras(packages: list) -> set[str]:  # type: ignore[type-arg]
    return {p.nevra for p in packages}


@pytest.mark.parametrize(
    "requests",
    [
        ["alpha"],  # versioned, file and virtual requires; the epoch build of beta is newest
        ["legacy"],  # beta < 2.0: an older beta than the newest
        ["multi"],  # x86_64 over i686
        ["multi.i686"],
        ["multi", "multi.i686"],  # dnf: the plain name is satisfied by the i686 one
        ["multi.x86_64", "multi.i686"],
        ["delta-api >= 3"],  # a capability: the newer delta-old provides only delta-api = 2
        ["/usr/bin/gamma-tool"],  # a file path
        ["share-a", "share-b", "setup"],
    ],
)
def test_resolution_is_what_dnf_picks(
    rpm_repo: RpmRepo, tmp_path: Path, requests: list[str]
) -> None:
    ours = nevras(resolver(rpm_repo).resolve(requests))
    assert ours == dnf_resolution(rpm_repo.url, tmp_path / "dnf", requests)


def test_resolution_details(rpm_repo: RpmRepo) -> None:
    chosen = {p.name: p for p in resolver(rpm_repo).resolve(["alpha", "legacy"][:1])}
    assert str(chosen["beta"].evr) == "1:0.5-1"  # epoch 1 beats version 2.0
    assert "delta-old" not in chosen and "delta" in chosen
    assert "minishell" in chosen  # alpha's %post needs /bin/sh: a file provide
    legacy = {p.name: p for p in resolver(rpm_repo).resolve(["legacy"])}
    assert str(legacy["beta"].evr) == "1.0-1"


def test_unresolvable_dependency_prints_the_chain(rpm_repo: RpmRepo) -> None:
    with pytest.raises(SourceError) as e:
        resolver(rpm_repo).resolve(["top"])
    assert str(e.value) == (
        "top-1.0-1.noarch -> middle-1.0-1.noarch: nothing provides nothing-provides-this >= 1"
    )


def test_unknown_package_suggests_a_name(rpm_repo: RpmRepo) -> None:
    with pytest.raises(SourceError, match=r"no package provides 'alpah'.*did you mean 'alpha'"):
        resolver(rpm_repo).resolve(["alpah"])
    with pytest.raises(SourceError, match="it is excluded"):
        resolver(rpm_repo, exclude=["gam*"]).resolve(["gamma"])


def test_two_versions_of_one_package_are_refused(rpm_repo: RpmRepo) -> None:
    with pytest.raises(
        SourceError, match=r"cannot install both beta-1:0.5-1.noarch and beta-1.0-1"
    ):
        resolver(rpm_repo).resolve(["alpha", "legacy"])


def test_packages_of_the_base_image_are_not_installed_again(rpm_repo: RpmRepo) -> None:
    installed = [
        InstalledRpm("beta", "1:0.5-1", "noarch"),
        InstalledRpm("minishell", "1.0-1", "noarch"),
    ]
    chosen = nevras(resolver(rpm_repo, installed=installed).resolve(["alpha"]))
    assert chosen == {"alpha-1.0-1.x86_64", "gamma-3.1-2.noarch", "delta-1.0-1.noarch"}


# -- the layer ----------------------------------------------------------------------------------


def _plan(repo: RpmRepo, packages: list[str], ctx: LayerContext) -> rpm.LayerPlan:  # type: ignore[name-defined]
    (plan,) = rpm.plan(RpmSpec(repos=[repo.repo()], packages=packages), ctx)
    return plan


def _cpio_paths(path: Path) -> list[str]:
    payload = subprocess.run(["rpm2cpio", str(path)], capture_output=True, check=True).stdout
    listing = subprocess.run(
        ["cpio", "-t", "--quiet"], input=payload, capture_output=True, check=True
    )
    return [line.removeprefix("./") for line in listing.stdout.decode().splitlines()]


def _dump(path: Path) -> dict[str, list[str]]:
    """`rpm -qp --dump`: path -> [size, mtime, digest, mode, owner, group, config, doc, rdev, link]."""
    out = subprocess.run(
        ["rpm", "-qp", "--dump", str(path)], capture_output=True, check=True, text=True
    )
    return {line.split()[0].lstrip("/"): line.split()[1:] for line in out.stdout.splitlines()}


def test_unpacked_tree_matches_the_payloads(
    rpm_repo: RpmRepo, make_ctx: Callable[..., LayerContext]
) -> None:
    events = Events()
    plan = _plan(rpm_repo, ["alpha", "multi.x86_64", "multi.i686"], make_ctx(BASE, events=events))
    _, members = write_plan(plan)
    files = [
        p
        for p in rpm_repo.rpms()
        if p.name.split("-")[0] in ("alpha", "beta", "gamma", "delta", "docs", "minishell", "multi")
    ]
    files = [p for p in files if not p.name.startswith(("beta-1.0", "beta-2.0", "delta-old"))]
    assert len(files) == 8
    expected: set[str] = {RECORD_PATH}
    for path in files:
        expected |= set(_cpio_paths(path))
    parents = {str(Path(p).parent) for p in expected} - {"."}
    while parents - expected:
        expected |= parents
        parents = {str(Path(p).parent) for p in expected} - {"."}
    assert set(members) == expected

    ids = {"root": 0, "daemon": 2, "adm": 4}
    for path in files:
        for name, (size, _, digest, mode, owner, group, *_rest, link) in _dump(path).items():
            if name == "var/log/alpha.log":  # %ghost: listed, not installed
                assert name not in members
                continue
            info, content = members[name]
            assert oct(info.mode) == oct(int(mode, 8) & 0o7777), name
            assert (info.uname, info.gname) == (owner, group), name
            assert (info.uid, info.gid) == (ids.get(owner, 0), ids.get(group, 0)), name
            if info.issym():
                assert info.linkname == link
            elif info.isfile():
                assert hashlib.sha256(content).hexdigest() == digest and len(content) == int(size)
    # the hardlink set of alpha: one file, two links to it
    links = {
        n: members[n][0]
        for n in ("usr/share/alpha/one", "usr/share/alpha/two", "usr/share/alpha/three")
    }
    assert links["usr/share/alpha/one"].isfile()
    assert {links[n].linkname for n in ("usr/share/alpha/two", "usr/share/alpha/three")} == {
        "usr/share/alpha/one"
    }
    assert members["usr/share/multi/README"][1] == b"the same in every build\n"
    assert members["usr/lib/multi/arch"][1] == b"i386\n"
    assert members["usr/lib64/multi/arch"][1] == b"x86_64\n"
    # an owner no account file knows gets id 0, and the build output says so
    assert (members["var/lib/alpha"][0].uid, members["var/lib/alpha"][0].uname) == (0, "alpha")
    messages = events.messages()
    assert any("alpha (/var/lib/alpha)" in m and "id 0" in m for m in messages)


def test_scriptlets_are_recorded_not_run(
    rpm_repo: RpmRepo, make_ctx: Callable[..., LayerContext]
) -> None:
    events = Events()
    _, members = write_plan(_plan(rpm_repo, ["alpha"], make_ctx(BASE, events=events)))
    import json

    record = {p["name"]: p for p in json.loads(members[RECORD_PATH][1])["packages"]}
    assert record["alpha"]["skipped_scripts"] == ["post"]
    assert record["gamma"]["skipped_scripts"] == ["pre"]
    assert record["beta"] == {
        "type": "rpm",
        "name": "beta",
        "evr": "1:0.5-1",
        "arch": "noarch",
        "repo": rpm_repo.url,
        "skipped_scripts": [],
        "verified_by": rpm_repo.key.fingerprint,  # who signed the repository's repomd.xml
    }
    messages = events.messages()
    assert any("alpha (post)" in m and "gamma (pre)" in m for m in messages)


def test_owners_come_from_the_layers_own_account_files(
    rpm_repo: RpmRepo, make_ctx: Callable[..., LayerContext]
) -> None:
    _, members = write_plan(_plan(rpm_repo, ["alpha", "setup"], make_ctx(BASE)))
    info = members["var/lib/alpha"][0]
    assert (info.uid, info.gid, oct(info.mode)) == (321, 322, "0o750")  # from setup's /etc/passwd
    assert (members["etc/alpha.conf"][0].uid, members["etc/alpha.conf"][0].gid) == (
        2,
        4,
    )  # the base's


def test_the_base_record_is_merged_and_its_packages_skipped(
    rpm_repo: RpmRepo, make_ctx: Callable[..., LayerContext]
) -> None:
    base = record_bytes(
        [],
        [
            PackageRecord("rpm", "beta", "1:0.5-1", "noarch", "x"),
            PackageRecord("deb", "bash", "5", "amd64", "y"),
        ],
    )
    _, members = write_plan(_plan(rpm_repo, ["alpha"], make_ctx({**BASE, RECORD_PATH: base})))
    import json

    names = {p["name"] for p in json.loads(members[RECORD_PATH][1])["packages"]}
    assert {"beta", "bash", "alpha", "docs-common"} - names == {
        "docs-common"
    }  # beta's dep: not needed
    assert "usr/share/beta/version" not in members


def test_identical_files_are_shared_and_different_ones_conflict(
    rpm_repo: RpmRepo, make_ctx: Callable[..., LayerContext]
) -> None:
    _, members = write_plan(_plan(rpm_repo, ["share-a", "share-b"], make_ctx(BASE)))
    assert {
        "usr/share/shared/common.txt",
        "usr/share/shared/only-a",
        "usr/share/shared/only-b",
    } <= set(members)
    plan = _plan(rpm_repo, ["clash-a", "clash-b"], make_ctx(BASE))
    with pytest.raises(SourceError) as e:
        write_plan(plan)
    assert str(e.value) == (
        "file conflict: /etc/clash.conf is in both clash-a-1.0-1.noarch and clash-b-1.0-1.noarch "
        "(different content)"
    )


def test_errors_name_the_recipe_line(
    rpm_repo: RpmRepo, make_ctx: Callable[..., LayerContext]
) -> None:
    ctx = make_ctx(BASE)
    with pytest.raises(SourceError, match=r"recipe.yaml:3:7: rpm: top-1.0-1.noarch -> middle"):
        _plan(rpm_repo, ["top"], ctx)
    with pytest.raises(SourceError, match=r"recipe.yaml:3:7: .*\$\{NO_SUCH_MIRROR\}"):
        rpm.plan(RpmSpec(repos=["${NO_SUCH_MIRROR}/os"], packages=["alpha"]), ctx)
    with pytest.raises(
        SourceError, match=r"recipe.yaml:3:7: rpm repository http://x/os: no gpgkey"
    ):
        rpm.plan(RpmSpec(repos=["http://x/os"], packages=["alpha"]), ctx)


@pytest.fixture
def repo_copy(rpm_repo: RpmRepo, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A copy of the test repository that a test may break, served on its own port."""
    root = tmp_path / "repo"
    shutil.copytree(rpm_repo.root, root)
    served = serve(root)
    yield RpmRepo(next(served), root, rpm_repo.key)
    next(served, None)


def test_the_lock_pins_the_packages(
    repo_copy: RpmRepo, make_ctx: Callable[..., LayerContext], tmp_path: Path
) -> None:
    lock = LockFile(tmp_path / "recipe.yaml.lock")
    first = _plan(repo_copy, ["alpha"], make_ctx(BASE, lock=lock))
    blob1, _ = write_plan(first)
    lock.save()
    shutil.rmtree(repo_copy.root / "repodata")  # the repository moves on: no index at all
    again = LockFile.load(tmp_path / "recipe.yaml.lock")
    second = _plan(
        repo_copy, ["alpha"], make_ctx(BASE, lock=again, cache_dir=tmp_path / "other-cache")
    )
    blob2, _ = write_plan(second)
    assert (first.key, blob1.digest) == (second.key, blob2.digest)
    with pytest.raises(FetchError, match=r"repomd\.xml"):
        _plan(repo_copy, ["alpha"], make_ctx(BASE, lock=again, update_lock=True))


def test_a_package_that_differs_from_its_index_is_refused(
    repo_copy: RpmRepo, make_ctx: Callable[..., LayerContext]
) -> None:
    plan = _plan(repo_copy, ["gamma"], make_ctx(BASE))
    target = repo_copy.rpm("gamma-3.1-2.noarch.rpm")
    target.write_bytes(target.read_bytes() + b"tampered")
    with pytest.raises(
        DigestMismatchError, match=r"rpm gamma-3.1-2.noarch: .*/Packages/gamma-3.1-2.noarch.rpm"
    ):
        write_plan(plan)


def test_every_parent_comes_before_its_children(
    rpm_repo: RpmRepo, make_ctx: Callable[..., LayerContext]
) -> None:
    _, members = write_plan(_plan(rpm_repo, ["alpha", "setup"], make_ctx(BASE)))
    seen: set[str] = set()
    for name, (info, _) in members.items():
        parent = str(Path(name).parent)
        assert parent == "." or parent in seen, name
        assert info.mtime == 1451606400
        seen.add(name)
