"""Fixtures of the OS package tests: a real yum repository (rpmbuild + createrepo_c) served on
127.0.0.1, a stand-in for the base image's filesystem, and source contexts."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ocibuild.errors import Origin
from ocibuild.fetch import LockFile
from ocibuild.sources.session import LayerContext
from ocibuild.sources.specs import DebRepo
from ocibuild.sources.specs import RpmRepo as SpecRpmRepo
from tests.contexts import layer_context
from tests.events import Events
from tests.loopback import LoopbackServer
from tests.ospkg.signing import SigningKey, make_key

SPECS = Path(__file__).parent / "specs"

# (spec, macros, target): what the test repository holds. Payload compressions vary so every
# decompressor is used: gzip (rpm's default), bzip2, xz, zstd.
BUILDS: list[tuple[str, dict[str, str], str | None]] = [
    ("alpha", {}, None),
    ("beta", {"ver": "1.0", "_binary_payload": "w9.bzdio"}, None),
    ("beta", {"ver": "2.0", "_binary_payload": "w6.xzdio"}, None),
    ("beta", {"ver": "0.5", "ep": "1", "_binary_payload": "w19.zstdio"}, None),
    ("gamma", {"_binary_payload": "w2.xzdio"}, None),
    ("delta", {}, None),
    ("delta-old", {}, None),
    ("docs-common", {"_binary_payload": "w3.zstdio"}, None),
    ("minishell", {}, None),
    ("legacy", {}, None),
    ("multi", {}, None),
    ("multi", {}, "i686"),
    ("setup", {}, None),
    ("clash-a", {}, None),
    ("clash-b", {}, None),
    ("share-a", {}, None),
    ("share-b", {}, None),
    ("top", {}, None),
    ("middle", {}, None),
]


@dataclass(frozen=True)
class RpmRepo:
    url: str
    root: Path
    key: SigningKey  # signs its packages and its repomd.xml

    def repo(self, **changes: object) -> SpecRpmRepo:
        """The recipe's entry for it: its key, packages and index checked."""
        fields: dict[str, object] = {"gpgkey": str(self.key.public), "repo_gpgcheck": True}
        fields.update(changes)
        return SpecRpmRepo(url=self.url, **fields)  # type: ignore[arg-type]

    def rpm(self, filename: str) -> Path:
        return self.root / "Packages" / filename

    def rpms(self) -> list[Path]:
        return sorted((self.root / "Packages").glob("*.rpm"))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(root: Path) -> Iterator[str]:
    """Serve `root` over HTTP on a free port of 127.0.0.1; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = LoopbackServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def build_rpms(out: Path, key: SigningKey) -> None:
    """The test packages, signed by `key` (`rpmsign --addsign`), in a yum repository whose
    repomd.xml `key` signs too (`repodata/repomd.xml.asc`)."""
    assert shutil.which("rpmbuild"), "rpmbuild is missing: .ci/run installs Debian's rpm"
    top = out.parent / "rpmbuild"
    packages = out / "Packages"
    packages.mkdir(parents=True)
    for spec, macros, target in BUILDS:
        args = ["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {top}"]
        args += ["--define", "debug_package %{nil}", "--define", "_build_id_links none"]
        for name, value in macros.items():
            args += ["--define", f"{name} {value}"]
        if target:
            args += ["--target", target]
        subprocess.run([*args, str(SPECS / f"{spec}.spec")], check=True, capture_output=True)
    for rpm in (top / "RPMS").rglob("*.rpm"):
        shutil.move(rpm, packages / rpm.name)
    key.sign_rpms(sorted(packages.glob("*.rpm")))
    index_repo(out, key)


def index_repo(root: Path, key: SigningKey | None) -> None:
    """createrepo_c over `root`, and the new repomd.xml signed by `key` (unless None)."""
    subprocess.run(["createrepo_c", "--quiet", str(root)], check=True, capture_output=True)
    if key is not None:
        key.detach_sign(root / "repodata" / "repomd.xml", root / "repodata" / "repomd.xml.asc")


@pytest.fixture(scope="session")
def rpm_key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    """The test yum repository's key: RSA, as distributions sign rpms (RSAHEADER)."""
    return make_key(tmp_path_factory.mktemp("keys") / "rpm", "rpm-repo", algo="rsa2048")


@pytest.fixture(scope="session")
def rpm_repo(tmp_path_factory: pytest.TempPathFactory, rpm_key: SigningKey) -> Iterator[RpmRepo]:
    root = tmp_path_factory.mktemp("yum") / "repo"
    build_rpms(root, rpm_key)
    served = serve(root)
    url = next(served)
    yield RpmRepo(url, root, rpm_key)
    next(served, None)


class LowerStandIn:
    """A stand-in for the base image's filesystem (`LowerFS`): files given as a mapping."""

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files = dict(files or {})

    def read(self, path: str) -> bytes | None:
        return self.files.get(path.lstrip("/"))

    def collect(self, match: Callable[[str], bool]) -> dict[str, bytes]:
        return {p: data for p, data in self.files.items() if match(p)}


@pytest.fixture
def make_ctx(tmp_path: Path) -> Callable[..., LayerContext]:
    """A layer context: lock file and download cache in tmp_path, progress to `events`."""

    def make(
        lower: dict[str, bytes] | None = None,
        lock: LockFile | None = None,
        events: Events | None = None,
        **changes: object,
    ) -> LayerContext:
        return layer_context(
            tmp_path,
            origin=Origin(str(tmp_path / "recipe.yaml"), 3, 7),
            source_date_epoch=1451606400,
            lower=LowerStandIn(lower),
            lock=lock if lock is not None else LockFile(tmp_path / "recipe.yaml.lock"),
            report=events if events is not None else Events(),
            **changes,  # type: ignore[arg-type]
        )

    return make


@dataclass(frozen=True)
class AptRepo:
    url: str
    root: Path
    key: SigningKey  # signs its Release

    def repo(self, **changes: object) -> DebRepo:
        """The recipe's entry for it: verified by its key."""
        fields: dict[str, object] = {"signed_by": str(self.key.public)}
        fields.update(changes)
        return DebRepo(url=self.url, suite="test", **fields)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    """The test repositories' key (ed25519, made by gpg)."""
    return make_key(tmp_path_factory.mktemp("keys") / "repo", "repo")


@pytest.fixture(scope="session")
def apt_repo(
    tmp_path_factory: pytest.TempPathFactory, signing_key: SigningKey
) -> Iterator[AptRepo]:
    from tests.ospkg.aptrepo import make_apt_repo

    root = tmp_path_factory.mktemp("apt") / "repo"
    make_apt_repo(root, signing_key)
    served = serve(root)
    yield AptRepo(next(served), root, signing_key)
    next(served, None)
