"""Package indexes verified as apt and dnf verify them, against repositories signed in the test
by the real `gpg` and `rpmsign` and served on 127.0.0.1: the good repository passes and says
who signed it (lock, package record, SBOM components); a tampered, re-signed, expired or
stripped one is refused with one line naming the repository, the key and the reason, and
nothing is stored."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ocibuild.errors import SignatureError
from ocibuild.ospkg.record import RECORD_PATH
from ocibuild.ospkg.rpmlayer import read_rpm
from ocibuild.ospkg.rpmsig import verify_package
from ocibuild.sources import deb, rpm
from ocibuild.sources.base import LayerContext
from ocibuild.sources.specs import DebSpec, RpmSpec
from ocibuild.trust.openpgp import Keys, keyring
from tests.cli import fail, run
from tests.ospkg.aptrepo import sign_release, write_release
from tests.ospkg.conftest import SPECS, AptRepo, RpmRepo, index_repo, serve
from tests.ospkg.helpers import write_plan
from tests.ospkg.signing import SigningKey, make_key

# -- deb --------------------------------------------------------------------------------------


@pytest.fixture
def apt_copy(apt_repo: AptRepo, tmp_path: Path) -> Iterator[AptRepo]:
    """A copy of the signed test repository that a test may tamper with."""
    root = tmp_path / "apt"
    shutil.copytree(apt_repo.root, root)
    served = serve(root)
    yield AptRepo(next(served), root, apt_repo.key)
    next(served, None)


@pytest.fixture
def other_key(tmp_path: Path) -> SigningKey:
    return make_key(tmp_path / "other-key", "intruder")


DEB_RECIPE = """\
images:
  - name: localhost/ocibuild-test/trust:1
    layers:
      - deb:
          repos:
            - {repo}
          packages: [libbar]
"""


class Build:
    """`ocibuild recipe` of a one-layer deb recipe in tmp_path, through the CLI in process."""

    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.tmp, self.capsys = tmp_path, capsys
        self.recipe = tmp_path / "trust.yaml"
        self.lock = tmp_path / "trust.yaml.lock"
        self.store = tmp_path / "store"

    def args(self, repo: str, *more: str) -> list[str]:
        self.recipe.write_text(DEB_RECIPE.format(repo=repo))
        return ["--store", str(self.store), "recipe", str(self.recipe), *more]

    def refused(self, repo: str, *more: str) -> str:
        """The one error line of a build that must fail, after checking it stored nothing."""
        lock_before = self.lock.read_bytes() if self.lock.exists() else None
        blobs_before = self.blobs()
        err = fail(self.capsys, *self.args(repo, *more))
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(lines) == 1, err
        assert (self.lock.read_bytes() if self.lock.exists() else None) == lock_before
        assert self.blobs() == blobs_before
        return lines[0]

    def blobs(self) -> set[str]:
        return {p.name for p in (self.store / "blobs" / "sha256").glob("*")}

    def lock_resolution(self) -> list[dict[str, object]]:
        """Every package the lock's resolutions record."""
        resolved = json.loads(self.lock.read_text())["resolved"]
        return [p for packages in resolved.values() for p in packages]


@pytest.fixture
def build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Build:
    monkeypatch.setenv("OCIBUILD_CACHE", str(tmp_path / "cache"))
    return Build(tmp_path, capsys)


def signed_by(repo: AptRepo, key: Path | None = None) -> str:
    return f"{{url: {repo.url!r}, suite: test, signed_by: {str(key or repo.key.public)!r}}}"


def test_a_signed_repository_passes_and_says_who_signed_it(
    apt_copy: AptRepo, build: Build, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, *build.args(signed_by(apt_copy)))
    assert {p["name"]: p["verified_by"] for p in build.lock_resolution()} == {
        "libbar": apt_copy.key.fingerprint
    }
    # Release + Release.gpg (no InRelease) verify the same way; an inline armored key too
    (apt_copy.root / "dists" / "test" / "InRelease").unlink()
    inline = json.dumps(apt_copy.key.public.read_text())
    repo = f"{{url: {apt_copy.url!r}, suite: test, signed_by: {inline}}}"
    run(capsys, *build.args(repo, "--update-lock"))
    resolved = build.lock_resolution()
    assert len(resolved) == 2  # another key: resolved (and verified) anew
    assert {p["verified_by"] for p in resolved} == {apt_copy.key.fingerprint}


def test_the_record_and_the_sbom_components_say_how_the_repository_was_checked(
    apt_repo: AptRepo, make_ctx: Callable[..., LayerContext]
) -> None:
    spec = DebSpec(repos=[apt_repo.repo()], packages=["libbar"])
    (plan,) = deb.plan(spec, make_ctx())
    _, members = write_plan(plan)
    (record,) = json.loads(members[RECORD_PATH][1])["packages"]
    assert record["verified_by"] == apt_repo.key.fingerprint
    assert plan.components is not None
    (component,) = plan.components()
    deb_file = apt_repo.root / "pool" / "main" / "libbar_1.0_amd64.deb"
    assert (
        component.purl
        == "pkg:deb/ocibuild%20tests/libbar@1.0?arch=amd64&distro=ocibuild%20tests-test"
    )
    assert component.url == f"{apt_repo.url}/pool/main/libbar_1.0_amd64.deb"
    assert component.sha256 == __import__("hashlib").sha256(deb_file.read_bytes()).hexdigest()
    assert ("verified-by", apt_repo.key.fingerprint) in component.properties

    trusted = DebSpec(repos=[apt_repo.repo(signed_by=None, trusted=True)], packages=["libbar"])
    (plan,) = deb.plan(trusted, make_ctx(cache_dir=make_ctx().session.cache_dir.parent / "c2"))
    _, members = write_plan(plan)
    (record,) = json.loads(members[RECORD_PATH][1])["packages"]
    assert record["verified_by"] == "trusted"
    assert plan.components is not None
    assert ("trusted", "opt-out") in plan.components()[0].properties


def test_a_changed_packages_index_under_the_old_signature_is_refused(
    apt_copy: AptRepo, build: Build, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, *build.args(signed_by(apt_copy)))  # the lock and store hold the good build
    suite = apt_copy.root / "dists" / "test"
    index = suite / "main" / "binary-amd64"
    for name in ("Packages", "Packages.gz", "Packages.xz"):
        (index / name).write_bytes(b"Package: libbar\nVersion: 9.9\n")  # the attacker's index
    write_release(suite)  # re-hashed, but the attacker cannot sign it
    # the Release's text swapped into InRelease, the old signature kept
    signed = (suite / "InRelease").read_text()
    head, _, rest = signed.partition("\n\n")
    signature = rest[rest.index("-----BEGIN PGP SIGNATURE-----") :]
    body = (suite / "Release").read_text().replace("\n-", "\n- -")
    (suite / "InRelease").write_text(f"{head}\n\n{body}{signature}")
    line = build.refused(signed_by(apt_copy), "--update-lock")
    assert line.startswith(
        f"error: {build.recipe}:6:15: deb repository {apt_copy.url} test: InRelease: bad signature by key "
    )
    assert "the signed content was changed" in line
    # and Release + the old Release.gpg: refused the same way
    (suite / "InRelease").unlink()
    line = build.refused(signed_by(apt_copy), "--update-lock")
    assert f"deb repository {apt_copy.url} test: Release.gpg: bad signature by key" in line


def test_an_index_signed_by_another_key_is_refused(
    apt_copy: AptRepo, other_key: SigningKey, build: Build
) -> None:
    sign_release(apt_copy.root / "dists" / "test", other_key)
    line = build.refused(signed_by(apt_copy))
    assert line == (
        f"error: {build.recipe}:6:15: deb repository {apt_copy.url} test: InRelease: signed by "
        f"unknown key {other_key.fingerprint} (not in {apt_copy.key.public})"
    )


def test_an_expired_release_is_refused(apt_copy: AptRepo, build: Build) -> None:
    suite = apt_copy.root / "dists" / "test"
    write_release(suite, "Valid-Until: Sat, 08 Jan 2022 00:00:00 UTC\n")
    sign_release(suite, apt_copy.key)
    line = build.refused(signed_by(apt_copy))
    assert line == (
        f"error: {build.recipe}:6:15: deb repository {apt_copy.url} test: Release (signed by "
        f"{apt_copy.key.fingerprint}): expired: Valid-Until Sat, 08 Jan 2022 00:00:00 UTC is past"
    )
    repo = f"{{url: {apt_copy.url!r}, suite: test, signed_by: {str(apt_copy.key.public)!r}, check_valid_until: false}}"
    run(build.capsys, *build.args(repo))  # apt's Check-Valid-Until off (archive.debian.org)
    write_release(suite, "Valid-Until: Fri, 01 Jan 2100 00:00:00 UTC\n")  # not yet: taken
    sign_release(suite, apt_copy.key)
    run(build.capsys, *build.args(signed_by(apt_copy), "--update-lock"))


def test_an_expired_key_is_refused(apt_copy: AptRepo, tmp_path: Path, build: Build) -> None:
    old = make_key(tmp_path / "old", "old", expire="1y", faked_time="20200101T000000")
    suite = apt_copy.root / "dists" / "test"
    old.clearsign(suite / "Release", suite / "InRelease", faked_time="20200601T000000")
    line = build.refused(signed_by(apt_copy, old.public))
    assert line.endswith(f"test: InRelease: signed by the expired key {old.fingerprint}")


def test_a_stripped_signature_is_refused(apt_copy: AptRepo, build: Build) -> None:
    suite = apt_copy.root / "dists" / "test"
    shutil.copy(suite / "Release", suite / "InRelease")  # the signed text without its signature
    line = build.refused(signed_by(apt_copy))
    assert line.endswith(
        f"deb repository {apt_copy.url} test: InRelease: unsigned (no clearsigned message)"
    )
    (suite / "InRelease").unlink()
    (suite / "Release.gpg").unlink()
    line = build.refused(signed_by(apt_copy))
    assert line.endswith(
        f"deb repository {apt_copy.url} test: unsigned: no InRelease, and no Release.gpg beside Release"
    )


def test_an_unsigned_repository_needs_trusted(
    apt_copy: AptRepo, build: Build, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = apt_copy.root / "dists" / "test"
    (suite / "InRelease").unlink()
    (suite / "Release.gpg").unlink()
    line = build.refused(f"{{url: {apt_copy.url!r}, suite: test}}")
    assert line == (
        f"error: {build.recipe}:6:15: deb repository {apt_copy.url} test: no key to verify it "
        "with: give signed_by (a keyring file or an armored key block, as deb822's Signed-By), "
        "or trusted: true to use it unverified"
    )
    run(capsys, *build.args(f"{{url: {apt_copy.url!r}, suite: test, trusted: true}}"))
    assert build.lock_resolution()[0]["verified_by"] == "trusted"


def test_debian_archive_urls_default_to_the_debian_keyring(
    apt_copy: AptRepo, build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a mirror in place of Debian's archive is held to Debian's keys: our test key is not one
    monkeypatch.setenv("TEST_MIRROR", apt_copy.url)
    repo = "{url: '${TEST_MIRROR:-http://deb.debian.org/debian}', suite: test}"
    line = build.refused(repo)
    assert "InRelease: signed by unknown key" in line
    assert "(not in /usr/share/keyrings/debian-archive-keyring.gpg)" in line


# -- rpm --------------------------------------------------------------------------------------


@pytest.fixture
def yum_copy(rpm_repo: RpmRepo, tmp_path: Path) -> Iterator[RpmRepo]:
    root = tmp_path / "yum"
    shutil.copytree(rpm_repo.root, root)
    served = serve(root)
    yield RpmRepo(next(served), root, rpm_repo.key)
    next(served, None)


def _rpm_plan(repo: RpmRepo, ctx: LayerContext, **changes: object) -> rpm.LayerPlan:  # type: ignore[name-defined]
    (plan,) = rpm.plan(RpmSpec(repos=[repo.repo(**changes)], packages=["alpha"]), ctx)
    return plan


def _unsigned_alpha(repo: RpmRepo, tmp_path: Path) -> None:
    """alpha rebuilt (another release, same file name) without a signature, in place."""
    top = tmp_path / "rebuild"
    subprocess.run(
        ["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {top}", "--define", "debug_package %{nil}",
         "--define", "_build_id_links none", "--define", "_buildhost swapped", str(SPECS / "alpha.spec")],
        check=True, capture_output=True,
    )  # fmt: skip
    (built,) = (top / "RPMS").rglob("alpha-*.rpm")
    (target,) = (repo.root / "Packages").glob("alpha-*.rpm")
    shutil.copy(built, target)


def test_a_signed_yum_repository_passes(
    rpm_repo: RpmRepo, make_ctx: Callable[..., LayerContext]
) -> None:
    plan = _rpm_plan(rpm_repo, make_ctx())
    write_plan(plan)
    assert plan.components is not None
    alpha = next(c for c in plan.components() if c.name == "alpha")
    assert alpha.purl == "pkg:rpm/alpha@1.0-1?arch=x86_64" and alpha.licenses == ("BSD",)
    assert ("verified-by", rpm_repo.key.fingerprint) in alpha.properties
    assert ("gpgcheck", "on") in alpha.properties
    beta = next(c for c in plan.components() if c.name == "beta")
    assert beta.purl == "pkg:rpm/beta@0.5-1?arch=noarch&epoch=1"


def test_a_swapped_package_is_refused(
    yum_copy: RpmRepo, make_ctx: Callable[..., LayerContext], tmp_path: Path
) -> None:
    _unsigned_alpha(yum_copy, tmp_path)
    index_repo(yum_copy.root, None)  # re-indexed: the old repomd.xml.asc no longer matches
    with pytest.raises(
        SignatureError,
        match=r"recipe.yaml:3:7: rpm repository http://127.0.0.1:\d+: repomd.xml: bad signature by key",
    ):
        _rpm_plan(yum_copy, make_ctx())
    # without repo_gpgcheck the index is taken, and the package's own signature is missing
    plan = _rpm_plan(yum_copy, make_ctx(), repo_gpgcheck=False)
    with pytest.raises(
        SignatureError,
        match=r"rpm repository http://127.0.0.1:\d+: rpm alpha-1.0-1.x86_64: unsigned package \(no header signature\)",
    ):
        write_plan(plan)
    (yum_copy.root / "repodata" / "repomd.xml.asc").unlink()  # a stripped index signature
    with pytest.raises(SignatureError, match=r"repomd.xml: unsigned \(no repodata/repomd.xml.asc"):
        _rpm_plan(yum_copy, make_ctx(cache_dir=tmp_path / "c2"))


def test_a_package_signed_by_another_key_or_with_a_changed_payload_is_refused(
    rpm_repo: RpmRepo,
    yum_copy: RpmRepo,
    make_ctx: Callable[..., LayerContext],
    tmp_path: Path,
    other_key: SigningKey,
) -> None:
    _unsigned_alpha(yum_copy, tmp_path)
    (alpha,) = (yum_copy.root / "Packages").glob("alpha-*.rpm")
    other_key.sign_rpms([alpha])
    index_repo(yum_copy.root, yum_copy.key)  # the index is the repository's own, signed
    plan = _rpm_plan(yum_copy, make_ctx())
    with pytest.raises(
        SignatureError,
        match=rf"rpm alpha-1.0-1.x86_64: header signature: signed by unknown key {other_key.fingerprint}",
    ):
        write_plan(plan)
    # the repository's signature on the header, another payload under it
    data = bytearray((rpm_repo.root / "Packages" / alpha.name).read_bytes())
    data[-20] ^= 0xFF
    alpha.write_bytes(bytes(data))
    index_repo(yum_copy.root, yum_copy.key)
    plan = _rpm_plan(yum_copy, make_ctx(cache_dir=tmp_path / "c3"))
    with pytest.raises(
        SignatureError,
        match=r"rpm alpha-1.0-1.x86_64: the payload does not match the signed header's digest",
    ):
        write_plan(plan)


def test_package_signatures_agree_with_rpmkeys(
    rpm_repo: RpmRepo, tmp_path: Path, other_key: SigningKey
) -> None:
    """Our verdict on every package of the test repository equals `rpmkeys -K`'s with the
    repository's key imported into an empty rpm database, and with another key."""
    for key in (rpm_repo.key, other_key):
        db = tmp_path / f"rpmdb-{key.fingerprint}"
        subprocess.run(["rpmkeys", "--dbpath", str(db), "--import", str(key.public)], check=True)
        ring = keyring(Keys("test", files=(key.public,)))
        for path in rpm_repo.rpms():
            checked = subprocess.run(
                ["rpmkeys", "--dbpath", str(db), "-K", str(path)],
                capture_output=True,
                text=True,
                check=False,
            )
            ours = True
            try:
                verify_package(path, read_rpm(path, path.name).header, ring, path.name)
            except SignatureError:
                ours = False
            assert ours == (checked.returncode == 0), (path.name, checked.stdout)
