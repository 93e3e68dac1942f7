"""Registries as docker and crane treat them, and failures that say what happened.

A plain-HTTP registry on 127.0.0.1 or `localhost` needs no flag; a TLS registry is trusted
through a certs.d directory or `$OCIBUILD_INSECURE_REGISTRIES`; and each way of failing (DNS,
refused, TLS verification, timeout, HTTP 500 with a message) is one line naming its cause."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ocibuild.cli import main
from ocibuild.errors import NetworkError, RegistryError
from ocibuild.net.tls import CERTS_DIRS_ENV, INSECURE_ENV
from ocibuild.progress import RetryEvent
from ocibuild.remote import push_image
from ocibuild.store import Store
from tests.registry.conftest import Events, Registry, TlsSetup, fast_options
from tests.registry.images import make_image, random_layer
from tests.registry.pki import make_ca
from tests.registry.proxy import Fault, FaultProxy


def one_image(store: Store, ref: str) -> None:
    make_image(store, [ref], [random_layer("a", 2000)])


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def no_site_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No certs.d of the machine, no insecure list of the user."""
    certs = tmp_path / "certs.d"
    certs.mkdir()
    monkeypatch.setenv(CERTS_DIRS_ENV, str(certs))
    monkeypatch.delenv(INSECURE_ENV, raising=False)
    return certs


# -- which registries are plain HTTP ---------------------------------------------------------


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
def test_push_to_a_loopback_plain_http_registry_needs_no_flag(
    name: str,
    tmp_path: Path,
    registry: Registry,
    repo: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = registry.host.rsplit(":", 1)[1]
    ref = f"{name}:{port}/{repo()}:1"
    one_image(Store.open(tmp_path / "s"), ref)

    code, out, err = cli(capsys, "--store", str(tmp_path / "s"), "push", ref)

    assert code == 0, err
    assert out.startswith(f"{ref}@sha256:")
    code, out, err = cli(capsys, "--store", str(tmp_path / "pulled"), "pull", ref)
    assert code == 0, err


def test_a_tls_registry_is_trusted_through_certs_d(
    tmp_path: Path,
    tls_setup: TlsSetup,
    no_site_settings: Path,
    repo: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    host = tls_setup.registry.host
    ref = f"{host}/{repo()}:1"
    store = str(tmp_path / "s")
    one_image(Store.open(Path(store)), ref)

    code, _, err = cli(capsys, "--store", store, "push", ref)
    assert code == 1
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    assert line.startswith(
        f"error: GET https://{host}/v2/: TLS verification failed (unable to get local issuer "
        f"certificate); give the registry's CA with --ca-cert or as "
        f"/etc/containers/certs.d/{host}/ca.crt"
    )

    (no_site_settings / host).mkdir()
    other_ca, _ = make_ca().write(tmp_path, "other-ca")
    (no_site_settings / host / "ca.crt").write_bytes(other_ca.read_bytes())
    code, _, err = cli(capsys, "--store", store, "push", ref)
    assert code == 1
    last = err.splitlines()[-1]
    assert last.startswith(f"error: GET https://{host}/v2/: TLS verification failed (")
    assert last.endswith(f"); the CAs trusted for {host}: {no_site_settings / host / 'ca.crt'}")

    (no_site_settings / host / "ca.crt").write_bytes(tls_setup.ca_cert.read_bytes())
    code, out, err = cli(capsys, "--store", store, "push", ref)
    assert code == 0, err
    assert out.startswith(f"{ref}@sha256:")


def test_the_insecure_list_allows_an_unverified_registry(
    tmp_path: Path,
    tls_setup: TlsSetup,
    repo: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    host = tls_setup.registry.host
    ref = f"{host}/{repo()}:1"
    store = str(tmp_path / "s")
    one_image(Store.open(Path(store)), ref)
    monkeypatch.setenv(INSECURE_ENV, f"example.org, {host}")

    code, out, err = cli(capsys, "--store", store, "push", ref)

    assert code == 0, err
    assert out.startswith(f"{ref}@sha256:")


# -- failures, each named ------------------------------------------------------------------


def test_a_bare_push_to_a_registry_nobody_runs_says_how_to_give_one(
    tmp_path: Path, repo: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"images:\n  - name: 127.0.0.1:{port}/{repo()}:1\n    layers:\n"
        "      - files: [{content: 'x', dest: /x}]\n"
    )
    store = str(tmp_path / "s")
    assert cli(capsys, "--store", store, "recipe", str(recipe))[0] == 0

    code, _, err = cli(capsys, "--store", store, "push")

    assert code == 1
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    assert line.startswith(
        f"error: cannot reach the registry 127.0.0.1:{port}: GET https://127.0.0.1:{port}/v2/: "
        f"connection refused (nothing listens on 127.0.0.1:{port}); to push elsewhere, give "
        "--to REGISTRY/REPO[:TAG]"
    )
    assert "retry" not in err


def test_a_registry_name_that_does_not_resolve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = "registry.ocibuild-test.invalid/hep/art:1"
    store = str(tmp_path / "s")
    one_image(Store.open(Path(store)), ref)

    code, _, err = cli(capsys, "--store", store, "push", ref, "--to", ref)

    assert code == 1
    assert err.splitlines()[-1] == (
        "error: cannot reach the registry registry.ocibuild-test.invalid: GET "
        "https://registry.ocibuild-test.invalid/v2/: the host name "
        "registry.ocibuild-test.invalid could not be resolved (DNS)"
    )
    assert "retry" not in err


@pytest.fixture
def silent_registry() -> Iterator[str]:
    """`127.0.0.1:PORT` that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    for conn in held:
        conn.close()


def test_a_registry_that_never_answers_times_out(
    store: Store, silent_registry: str, events: Events
) -> None:
    ref = f"{silent_registry}/hep/art:1"
    one_image(store, ref)
    with pytest.raises(RegistryError) as raised:
        push_image(store, ref, fast_options(insecure=False, read_timeout=0.3, retries=1), events)
    assert str(raised.value) == (
        f"cannot reach the registry {silent_registry}: GET http://{silent_registry}/v2/: "
        "timed out: no answer within 0.3 s (read timeout) (gave up after 2 attempts); "
        f"GET https://{silent_registry}/v2/: timed out: no answer within 0.3 s (read timeout)"
    )


def test_a_server_error_gives_the_status_and_the_registry_message(
    store: Store, proxy: FaultProxy, repo: Callable[[str], str], events: Events
) -> None:
    ref = f"{proxy.address}/{repo()}:1"
    one_image(store, ref)
    proxy.add(Fault(r"^PUT .*/manifests/", "status", status=500, times=-1))
    with pytest.raises(NetworkError) as raised:
        push_image(store, ref, fast_options(retries=2), events)
    assert str(raised.value).endswith(
        "/manifests/1: HTTP 500 INJECTED: injected 500 (gave up after 3 attempts)"
    )
    assert len(events.of(RetryEvent)) == 2
