"""Bad build caches and recipes: each a clear error naming what is at fault, and nothing stored."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ocibuild.cli import main
from tests.spack.conftest import BASE_REF, FIXTURES, KEY, REF, Served, fail, layers_apart, recipe
from tests.ups.conftest import store_snapshot

ZLIB = "linux-debian12-x86_64-gcc-12.2.0-zlib-1.2.13-vptum3ymiatmgooaso2x3hoyzlmb6exq"
ZLIB_TARBALL = f"build_cache/linux-debian12-x86_64/gcc-12.2.0/zlib-1.2.13/{ZLIB}.spack"
GCC_RUNTIME = "linux-debian12-x86_64-gcc-12.2.0-gcc-runtime-12.2.0-tchodvtaqxzufupz6ljb42ud3pbs6vew"


def signed(url: str, specs: str = "[zlib@1.2.13]", into: str = "{root: /opt/spack}") -> str:
    return f"{{mirror: {url}/signed, specs: {specs}, keys: [{KEY}], into: {into}}}"


def unsigned(url: str, specs: str = "[zlib@1.2.13]") -> str:
    return f"{{mirror: {url}/unsigned, specs: {specs}, trusted: true}}"


def refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: str) -> str:
    store = tmp_path / "store"
    recipe_file = recipe(tmp_path / "r.yaml", entry)
    assert main(["--store", str(store), "-q", "recipe", str(recipe_file), "--image", BASE_REF]) == 0
    capsys.readouterr()
    before = {p: d for p, d in store_snapshot(store).items() if p.startswith("blobs/")}
    err = fail(capsys, recipe_file, store)
    blobs = {p: d for p, d in store_snapshot(store).items() if p.startswith("blobs/")}
    index = (
        json.loads((store / "index.json").read_text()) if (store / "index.json").exists() else {}
    )
    assert [m for m in index.get("manifests", []) if REF in json.dumps(m)] == []
    # the base image (built first) stays; nothing of the spack image is stored
    assert blobs == before
    assert len(err.strip().splitlines()) == 1, err
    return err


@dataclass(frozen=True)
class Written:
    apart: bool
    jobs: list[object]  # the layers' jobs sent to processes of their own

    def check(self) -> None:
        """The refusal came from a layer written where it was meant to be."""
        assert bool(self.jobs) == self.apart


@pytest.fixture(params=["threads", "processes"])
def written(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Written:
    """The package layers written in the build's threads, or each in a process of its own:
    a bad tarball is refused the same way."""
    if request.param == "processes":
        return Written(True, layers_apart(monkeypatch))
    return Written(False, [])


def rewrite_tarball(site: Path, change: Callable[[tarfile.TarFile, tarfile.TarFile], None]) -> None:
    """Rewrite zlib's tarball (members through `change(old, new)`), and the unsigned spec
    file's checksum to match, as a cache whose maker put that tarball there would."""
    path = site / "unsigned" / ZLIB_TARBALL
    raw = io.BytesIO()
    with (
        tarfile.open(path) as old,
        tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as new,
    ):
        change(old, new)
    data = gzip.compress(raw.getvalue(), mtime=0)
    path.write_bytes(data)
    spec = site / "unsigned" / "build_cache" / f"{ZLIB}.spec.json"
    doc = json.loads(spec.read_text())
    doc["binary_cache_checksum"]["hash"] = hashlib.sha256(data).hexdigest()
    spec.write_text(json.dumps(doc, indent=0, separators=(",", ":")))


def copy_members(
    old: tarfile.TarFile,
    new: tarfile.TarFile,
    extra: tarfile.TarInfo | None = None,
    buildinfo: bytes | None = None,
) -> None:
    """`old`'s members, with `extra` just before the buildinfo (the last member), and the
    buildinfo's content replaced by `buildinfo`."""
    *members, last = old.getmembers()
    for member in members:
        new.addfile(member, old.extractfile(member) if member.isreg() else None)
    if extra is not None:
        new.addfile(extra, io.BytesIO(b"x") if extra.isreg() else None)
    if buildinfo is None:
        new.addfile(last, old.extractfile(last))
    else:
        last.size = len(buildinfo)
        new.addfile(last, io.BytesIO(buildinfo))


def test_a_tarball_whose_checksum_is_wrong(
    tmp_path: Path,
    own_cache: Served,
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
    written: Written,
) -> None:
    path = own_cache.root / "signed" / ZLIB_TARBALL
    path.write_bytes(path.read_bytes() + b"\0")
    err = refused(tmp_path, capsys, signed(own_cache.url))
    assert f"zlib@1.2.13/vptum3y: tarball {own_cache.url}/signed/{ZLIB_TARBALL} has sha256" in err
    assert "its spec file says" in err


def test_a_spec_signed_by_an_unknown_key(
    tmp_path: Path, own_cache: Served, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = FIXTURES / "bad" / f"{ZLIB}.spec.json.sig"
    (own_cache.root / "signed" / "build_cache" / bad.name).write_bytes(bad.read_bytes())
    err = refused(tmp_path, capsys, signed(own_cache.url))
    unknown = (FIXTURES / "keys" / "unknown-signer.fingerprint").read_text().strip()
    assert (
        f"{ZLIB}.spec.json.sig: signed by unknown key {unknown} (not in the recipe's keys)" in err
    )


def test_a_stripped_signature(
    tmp_path: Path, own_cache: Served, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = (own_cache.root / "unsigned" / "build_cache" / f"{ZLIB}.spec.json").read_bytes()
    (own_cache.root / "signed" / "build_cache" / f"{ZLIB}.spec.json.sig").write_bytes(plain)
    err = refused(tmp_path, capsys, signed(own_cache.url))
    assert f"{ZLIB}.spec.json.sig: unsigned (no clearsigned message)" in err


def test_a_changed_signed_spec(
    tmp_path: Path, own_cache: Served, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sig = own_cache.root / "signed" / "build_cache" / f"{ZLIB}.spec.json.sig"
    sig.write_bytes(sig.read_bytes().replace(b'"version":"1.2.13"', b'"version":"1.2.14"', 1))
    err = refused(tmp_path, capsys, signed(own_cache.url))
    assert "bad signature" in err


def test_relocation_into_a_longer_prefix_than_the_padding_allows(
    tmp_path: Path,
    caches: Served,
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
    written: Written,
) -> None:
    long_root = "/opt/" + "x" * 195
    err = refused(tmp_path, capsys, signed(caches.url, into=f"{{root: {long_root}}}"))
    written.check()
    # the first layer written fails: zlib's or gcc-runtime's, each naming both lengths
    assert re.search(
        r"(zlib@1.2.13/vptum3y: cannot relocate from its 206-character build prefix .* into the "
        r"278-character|gcc-runtime@12.2.0/tchodvt: cannot relocate from its 213-character "
        r"build prefix .* into the 285-character)",
        err,
    ), err


def test_a_member_outside_the_prefix(
    tmp_path: Path,
    own_cache: Served,
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
    written: Written,
) -> None:
    def change(old: tarfile.TarFile, new: tarfile.TarFile) -> None:
        extra = tarfile.TarInfo("etc/profile.d/evil.sh")
        extra.size = 1
        copy_members(old, new, extra)

    rewrite_tarball(own_cache.root, change)
    err = refused(tmp_path, capsys, unsigned(own_cache.url))
    written.check()
    assert f"{ZLIB}.spack: member etc/profile.d/evil.sh is outside the package prefix" in err


@pytest.mark.parametrize(
    "target", ["/etc/shadow", "../../../../../../../../../../../../../../etc/shadow"]
)
def test_a_symlink_escaping_the_install_tree(
    target: str,
    tmp_path: Path,
    own_cache: Served,
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
    written: Written,
) -> None:
    def change(old: tarfile.TarFile, new: tarfile.TarFile) -> None:
        prefix = old.getmembers()[-1].name.removesuffix("/.spack/binary_distribution")
        extra = tarfile.TarInfo(f"{prefix}/lib/evil")
        extra.type = tarfile.SYMTYPE
        extra.linkname = target
        copy_members(old, new, extra)

    rewrite_tarball(own_cache.root, change)
    err = refused(tmp_path, capsys, unsigned(own_cache.url))
    written.check()
    assert "lib/evil -> " in err
    assert "outside /opt/spack" in err or "climbs above the image root" in err


@pytest.mark.parametrize(
    ("buildinfo", "message"),
    [
        (b"relocate_textfiles: " + b"[" * 300_000, "nested deeper than 100 levels"),
        (
            b"a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
            + b"".join(
                f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n".encode() for i in range(1, 8)
            )
            + b"hash_to_prefix: {h: *a7}\n",
            "values with its aliases expanded",
        ),
        (b"buildpath: [/opt]\nrelative_prefix: p\nhash_to_prefix: {}\n", "not a string"),
        (b"buildpath: /opt\nrelative_prefix: p\nhash_to_prefix: {h: [p]}\n", "maps hashes"),
    ],
    ids=["deep", "aliases", "not-a-string", "not-a-prefix"],
)
def test_a_hostile_buildinfo(
    buildinfo: bytes,
    message: str,
    tmp_path: Path,
    own_cache: Served,
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
    written: Written,
) -> None:
    """The buildinfo is YAML from the cache: read by the reader of YAML written by others
    (without it, the deep one crashed the process and the aliases made billions of values)."""

    rewrite_tarball(own_cache.root, lambda old, new: copy_members(old, new, buildinfo=buildinfo))
    err = refused(tmp_path, capsys, unsigned(own_cache.url))
    written.check()
    assert f"{ZLIB}.spack: .spack/binary_distribution" in err and message in err, err


def test_a_spec_whose_dependency_is_not_in_the_cache(
    tmp_path: Path, own_cache: Served, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (own_cache.root / "unsigned" / "build_cache" / f"{GCC_RUNTIME}.spec.json").unlink()
    err = refused(tmp_path, capsys, unsigned(own_cache.url))
    assert (
        "zlib@1.2.13/vptum3y needs gcc-runtime@12.2.0/tchodvt (link), which is not in the "
        f"build cache {own_cache.url}/unsigned"
    ) in err


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ("[zlib@9.9]", "zlib@9.9: no such spec in the build cache"),
        ("[nosuch]", "nosuch: no such spec in the build cache"),
        ("[zlib@1.2.13/vptum3y, /q]", "/q: no such spec in the build cache"),
    ],
)
def test_roots_that_match_no_spec(
    specs: str,
    message: str,
    tmp_path: Path,
    caches: Served,
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = refused(tmp_path, capsys, unsigned(caches.url, specs))
    assert message in err


def test_a_root_matching_two_specs(
    tmp_path: Path, synthetic: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hashes = json.loads((synthetic / "build_cache" / "index.json").read_text())["database"][
        "installs"
    ]
    first = sorted(h[0] for h in hashes)
    common = next(c for c in first if first.count(c) > 1)
    entry = f"{{mirror: {synthetic.as_uri()}, specs: [/{common}], trusted: true}}"
    err = refused(tmp_path, capsys, entry)
    assert f"/{common} matches {first.count(common)} specs in the build cache" in err
    assert "name one by its version or hash" in err
