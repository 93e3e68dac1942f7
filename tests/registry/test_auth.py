"""Auth against real registries: htpasswd basic auth, bearer tokens from a token issuer, TLS
with a test CA, plain HTTP; and no secret in any output."""

from __future__ import annotations

import json
import logging
import secrets
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest

from ocibuild.cli import main
from ocibuild.errors import AuthError, RegistryError
from ocibuild.remote import Credentials, find_credentials, login, pull_image, push_image
from ocibuild.remote.credentials import store_credentials
from ocibuild.store import Store
from tests.registry.conftest import (
    PASSWORD,
    USER,
    Events,
    Registry,
    TlsSetup,
    TokenSetup,
    fast_options,
)
from tests.registry.images import make_image, random_layer


def secret(label: str) -> str:
    """A password made at run time, so that no source line quoted in a traceback holds it."""
    return f"{label}-{secrets.token_hex(8)}"


def small_image(store: Store, ref: str) -> None:
    make_image(store, [ref], [random_layer("a", 2000), random_layer("b", 3000)])


def all_text(error: BaseException) -> str:
    return str(error) + "".join(traceback.format_exception(error))


# -- basic auth -------------------------------------------------------------------------------


def test_basic_auth_right_and_wrong_password(
    store: Store,
    basic_registry: Registry,
    repo: Callable[[str], str],
    events: Events,
    docker_config: Path,
) -> None:
    ref = f"{basic_registry.host}/{repo()}:1"
    small_image(store, ref)
    with pytest.raises(
        AuthError,
        match=f"requires a user name and password: run `ocibuild login {basic_registry.host}`",
    ):
        push_image(store, ref, fast_options(), events)

    wrong = secret("wrong")
    with pytest.raises(AuthError, match="refused the credentials") as refused:
        login(basic_registry.host, Credentials(USER, wrong), fast_options(), events)
    assert wrong not in all_text(refused.value)
    assert find_credentials(basic_registry.host) is None

    login(basic_registry.host, Credentials(USER, PASSWORD), fast_options(), events)
    assert find_credentials(basic_registry.host) == Credentials(USER, PASSWORD)
    result = push_image(store, ref, fast_options(), events)
    assert len(result.uploaded) == 3
    pull_image(Store.open(docker_config.parent / "other"), ref, fast_options(), events)

    stale = secret("stale")
    store_credentials(basic_registry.host, Credentials(USER, stale))
    with pytest.raises(AuthError, match="HTTP 401") as refused_again:
        push_image(store, ref, fast_options(), events)
    assert stale not in all_text(refused_again.value)
    assert stale not in events.text()


# -- bearer tokens ----------------------------------------------------------------------------


def test_token_auth_push_pull_and_token_reuse(
    store: Store,
    other_store: Store,
    token_setup: TokenSetup,
    repo: Callable[[str], str],
    events: Events,
) -> None:
    registry, issuer = token_setup.registry, token_setup.issuer
    ref = f"{registry.host}/alice/{repo().replace('/', '-')}:1"
    small_image(store, ref)
    store_credentials(registry.host, Credentials(USER, PASSWORD))
    issuer.requests.clear()

    result = push_image(store, ref, fast_options(), events)

    assert len(result.uploaded) == 3
    scopes = [q.get("scope") for q in issuer.requests]
    assert scopes == [[f"repository:{ref.split('/', 1)[1].rsplit(':', 1)[0]}:pull,push"]]
    assert issuer.requests[0]["account"] == [USER]
    pulled = pull_image(other_store, ref, fast_options(), events)
    assert pulled.digest == result.digest


def test_token_refused_scope_and_anonymous_access(
    store: Store,
    other_store: Store,
    token_setup: TokenSetup,
    repo: Callable[[str], str],
    events: Events,
    docker_config: Path,
) -> None:
    registry = token_setup.registry
    ref = f"{registry.host}/alice/{repo().replace('/', '-')}:1"
    small_image(store, ref)
    store_credentials(registry.host, Credentials(USER, PASSWORD))
    push_image(store, ref, fast_options(), events)

    store_credentials(registry.host, Credentials("reader", "reader-pw"))
    assert pull_image(other_store, ref, fast_options(), events)  # reader may pull
    with pytest.raises(
        AuthError, match=r"HTTP 401 .*reader.* do not grant repository:alice/.*:pull,push"
    ) as refused:  # a new tag: the registry holds no such manifest, so it must be written
        push_image(store, ref, fast_options(), events, to=ref.rsplit(":", 1)[0] + ":2")
    assert "reader-pw" not in all_text(refused.value)

    wrong = secret("wrong")
    store_credentials(registry.host, Credentials("reader", wrong))
    with pytest.raises(
        AuthError, match=r"token service 127.0.0.1:\d+ of .* refused user 'reader'"
    ) as bad:
        pull_image(other_store, ref, fast_options(), events)
    assert wrong not in all_text(bad.value)

    (docker_config / "config.json").write_text("{}")
    anonymous = Store.open(other_store.root.parent / "anonymous")
    with pytest.raises(AuthError, match=r"HTTP 401 .*run `ocibuild login"):
        pull_image(anonymous, ref, fast_options(), events)
    assert anonymous.refs() == {}


def test_expired_token_is_refreshed_on_401(
    store: Store, token_setup: TokenSetup, repo: Callable[[str], str], events: Events
) -> None:
    registry, issuer = token_setup.registry, token_setup.issuer
    ref = f"{registry.host}/alice/{repo().replace('/', '-')}:1"
    small_image(store, ref)
    store_credentials(registry.host, Credentials(USER, PASSWORD))
    issuer.requests.clear()
    issuer.expired_tokens = 1

    result = push_image(store, ref, fast_options(), events)

    assert len(result.uploaded) == 3
    assert len(issuer.requests) == 2  # the expired one, then one that works for the whole push


# -- TLS and plain HTTP -----------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_with_test_ca(
    store: Store, tls_setup: TlsSetup, repo: Callable[[str], str], events: Events
) -> None:
    registry = tls_setup.registry
    assert registry.url.startswith("https://")
    ref = f"{registry.host}/{repo()}:1"
    small_image(store, ref)
    with pytest.raises(
        RegistryError, match=r"TLS verification failed \(unable to get local issuer .*--ca-cert"
    ):
        push_image(store, ref, fast_options(insecure=False), events)

    result = push_image(store, ref, fast_options(insecure=False, ca_cert=tls_setup.ca_cert), events)
    assert len(result.uploaded) == 3
    again = push_image(store, ref, fast_options(insecure=True), events)  # unverified TLS
    assert len(again.skipped) == 3


def test_plain_http_on_loopback_needs_no_flag(
    store: Store, registry: Registry, repo: Callable[[str], str], events: Events
) -> None:
    ref = f"{registry.host}/{repo()}:1"
    small_image(store, ref)
    assert len(push_image(store, ref, fast_options(insecure=False), events).uploaded) == 3
    assert len(push_image(store, ref, fast_options(insecure=True), events).skipped) == 3


# -- the CLI ----------------------------------------------------------------------------------


def test_cli_login_push_pull_logout_keep_secrets_out(
    tmp_path: Path,
    basic_registry: Registry,
    repo: Callable[[str], str],
    docker_config: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    store_dir = str(tmp_path / "cli-store")
    host = basic_registry.host
    ref = f"{host}/{repo()}:1"
    small_image(Store.open(Path(store_dir)), ref)
    seen: list[str] = []

    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", _Stdin(stdin))
        code = main(["-vv", *args])
        out, err = capsys.readouterr()
        seen.extend([out, err])
        return code, out, err

    wrong = secret("wrong")
    code, _, err = run(
        "login", host, "-u", USER, "--password-stdin", "--insecure", stdin=wrong + "\n"
    )
    assert code == 1 and "refused the credentials" in err
    code, out, _ = run(
        "login", host, "-u", USER, "--password-stdin", "--insecure", stdin=PASSWORD + "\n"
    )
    assert code == 0 and "Login succeeded" in out
    auths = json.loads((docker_config / "config.json").read_text())["auths"]
    assert list(auths) == [host]

    code, pushed, _ = run("--store", store_dir, "push", ref, "--insecure", "--format", "docker")
    assert code == 0 and pushed.startswith(f"{ref}@sha256:")
    code, pulled, _ = run("--store", str(tmp_path / "pulled"), "pull", ref, "--insecure")
    assert code == 0 and pulled == pushed

    code, out, _ = run("logout", host)
    assert code == 0 and "Removed credentials" in out
    assert json.loads((docker_config / "config.json").read_text())["auths"] == {}
    code, _, err = run("--store", store_dir, "push", ref, "--insecure")
    assert code == 1 and "run `ocibuild login" in err

    text = "".join(seen) + caplog.text
    assert "DEBUG" in caplog.text  # the debug log was on, and still holds no secret
    for password in (wrong, PASSWORD):
        assert password not in text


class _Stdin:
    def __init__(self, text: str) -> None:
        self.text = text

    def readline(self) -> str:
        return self.text
