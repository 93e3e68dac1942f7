"""Real registries for the registry tests, started with `registry/start.py`: plain HTTP, htpasswd
basic auth, bearer tokens from a test token issuer, TLS from a test CA; and a fault proxy."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ocibuild.remote import RemoteOptions
from ocibuild.store import Store
from tests.events import Events
from tests.registry.pki import KeyPair, make_ca, make_server_cert, make_signer
from tests.registry.proxy import FaultProxy
from tests.registry.token_issuer import ISSUER, SERVICE, TokenIssuer

ROOT = Path(__file__).resolve().parents[2]
START = ROOT / "registry" / "start.py"
USER, PASSWORD = "alice", "Tr0ub4dor-and-3-horses"


@dataclass
class Registry:
    """A running docker-registry: `host` is what references name (`127.0.0.1:PORT`)."""

    url: str
    process: subprocess.Popen[str]
    storage: Path
    log: Path

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1]

    def blob_digests(self) -> set[str]:
        """Every blob the registry stores (layers, configs and manifests), re-hashed."""
        root = self.storage / "docker" / "registry" / "v2" / "blobs" / "sha256"
        found = set()
        for data in root.glob("*/*/data"):
            digest = "sha256:" + data.parent.name
            assert "sha256:" + hashlib.sha256(data.read_bytes()).hexdigest() == digest
            found.add(digest)
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=20)


def start_registry(directory: Path, *args: str) -> Registry:
    directory.mkdir(parents=True, exist_ok=True)
    storage, log = directory / "storage", directory / "registry.log"
    process = subprocess.Popen(
        [
            sys.executable,
            str(START),
            "--stop-with-parent",
            "--storage",
            str(storage),
            "--log",
            str(log),
            *args,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    assert url.startswith(("http://", "https://")), f"registry/start.py failed; see {log}"
    return Registry(url, process, storage, log)


@pytest.fixture(autouse=True)
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty credentials directory, never the user's."""
    directory = tmp_path / "docker-config"
    directory.mkdir()
    (directory / "config.json").write_text('{"auths": {}}\n')  # podman wants it to exist
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    return directory


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    running = start_registry(tmp_path_factory.mktemp("registry-plain"))
    yield running
    running.stop()


@pytest.fixture
def fresh_registry(tmp_path: Path) -> Iterator[Registry]:
    """A registry of this test alone, so that its storage can be compared exactly."""
    running = start_registry(tmp_path / "registry")
    yield running
    running.stop()


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    directory = tmp_path_factory.mktemp("registry-htpasswd")
    htpasswd = directory / "htpasswd"
    out = subprocess.run(
        ["htpasswd", "-Bbn", USER, PASSWORD], check=True, capture_output=True, text=True
    ).stdout
    htpasswd.write_text(out)
    running = start_registry(directory, "--config", "htpasswd", "--htpasswd", str(htpasswd))
    yield running
    running.stop()


@dataclass
class TokenSetup:
    registry: Registry
    issuer: TokenIssuer


@pytest.fixture(scope="session")
def token_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenSetup]:
    directory = tmp_path_factory.mktemp("registry-token")
    signer = make_signer()
    cert, _ = signer.write(directory, "signer")
    issuer = TokenIssuer(
        signer,
        passwords={USER: PASSWORD, "reader": "reader-pw"},
        rules={
            USER: [("alice/*", {"pull", "push"}), ("shared/*", {"pull"})],
            "reader": [("alice/*", {"pull"})],
            "": [("public/*", {"pull"})],
        },
    )
    issuer.start()
    running = start_registry(
        directory,
        "--config", "token",
        "--token-realm", issuer.realm,
        "--token-service", SERVICE,
        "--token-issuer", ISSUER,
        "--token-certs", str(cert),
    )  # fmt: skip
    yield TokenSetup(running, issuer)
    running.stop()
    issuer.close()


@dataclass
class TlsSetup:
    registry: Registry
    ca_cert: Path
    ca: KeyPair = field(repr=False)


@pytest.fixture(scope="session")
def tls_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsSetup]:
    directory = tmp_path_factory.mktemp("registry-tls")
    ca = make_ca()
    ca_cert, _ = ca.write(directory, "ca")
    cert, key = make_server_cert(ca).write(directory, "server")
    running = start_registry(directory, "--config", "tls", "--cert", str(cert), "--key", str(key))
    yield TlsSetup(running, ca_cert, ca)
    running.stop()


@pytest.fixture
def proxy(registry: Registry) -> Iterator[FaultProxy]:
    running = FaultProxy(registry.host)
    yield running
    running.close()


@pytest.fixture
def fresh_proxy(fresh_registry: Registry) -> Iterator[FaultProxy]:
    running = FaultProxy(fresh_registry.host)
    yield running
    running.close()


def fast_options(**overrides: Any) -> RemoteOptions:
    """Options for tests: plain HTTP allowed, small chunks, short backoffs."""
    settings: dict[str, Any] = {
        "insecure": True,
        "backoff": 0.01,
        "max_backoff": 0.05,
        "max_retry_after": 2.0,
        "retries": 6,
        "connect_timeout": 5.0,
        "read_timeout": 20.0,
    }
    settings.update(overrides)
    return RemoteOptions(**settings)


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def repo(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """A repository name unique to the test: repo("a") -> "t/<test name>/a"."""
    name = request.node.name.lower()
    safe = "".join(c if c.isalnum() else "-" for c in name).strip("-")
    while "--" in safe:
        safe = safe.replace("--", "-")
    return lambda suffix="img": f"t/{safe[:60].strip('-')}/{suffix}"


@pytest.fixture
def other_store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "other-store")
