"""No credential in any output, whatever echoes it: a registry (through the fault proxy) that
quotes our Authorization header in its error bodies, and a failing credential helper whose
`get` prints the secret. The CLI runs as a user runs it, at default verbosity and at -vv."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ocibuild.remote import Credentials
from ocibuild.secrets import RedactingFilter, clear, redact, register
from ocibuild.store import Store
from tests.registry.conftest import PASSWORD, ROOT, USER, Registry, TokenSetup
from tests.registry.images import make_image, random_layer
from tests.registry.proxy import Fault, FaultProxy


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def forms(user: str, password: str) -> list[str]:
    """Every form of a password that must not appear."""
    return [password, b64(f"{user}:{password}"), b64(password)]


def ocibuild(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocibuild", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(autouse=True)
def forget_secrets() -> Iterator[None]:
    yield
    clear()


def test_redaction_covers_every_form() -> None:
    password = f"pw-{secrets.token_hex(6)}"
    Credentials("alice", password)  # registered as it is made
    register("tok.en.value-123456")
    text = (
        f"a {password} b Basic {b64('alice:' + password)} c {b64(password)} "
        f"d {json.dumps(b64('alice:' + password).replace('/', chr(92) + '/'))} "
        "e Bearer tok.en.value-123456"
    )
    assert redact(text) == 'a *** b Basic *** c *** d "***" e Bearer ***'
    register("pw")  # short: only where it stands alone
    assert redact("pw, not pwd or upward") == "***, not pwd or upward"


def test_the_logging_filter_redacts_messages_arguments_and_tracebacks() -> None:
    import logging

    register("hunter2-hunter2")
    record = logging.LogRecord(
        "x", logging.DEBUG, __file__, 1, "got %s", ("hunter2-hunter2",), None
    )
    try:
        raise ValueError("boom hunter2-hunter2")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "got ***"
    assert record.exc_text is not None and "hunter2" not in record.exc_text


@pytest.fixture(params=["basic", "token"])
def echoing(
    request: pytest.FixtureRequest,
    basic_registry: Registry,
    token_setup: TokenSetup,
    docker_config: Path,
) -> Iterator[FaultProxy]:
    """A proxy before a registry that wants credentials (htpasswd, or bearer tokens for them),
    with the credentials stored for the proxy's address."""
    upstream = basic_registry if request.param == "basic" else token_setup.registry
    proxy = FaultProxy(upstream.host)
    config = {"auths": {proxy.address: {"auth": b64(f"{USER}:{PASSWORD}")}}}
    (docker_config / "config.json").write_text(json.dumps(config))
    yield proxy
    proxy.close()


@pytest.mark.parametrize("verbosity", [[], ["-vv"]])
def test_an_echoed_authorization_header_never_shows(
    verbosity: list[str],
    tmp_path: Path,
    echoing: FaultProxy,
    repo: Callable[[str], str],
) -> None:
    ref = f"{echoing.address}/alice/{repo().replace('/', '-')}:1"
    make_image(Store.open(tmp_path / "s"), [ref], [random_layer("a", 3000)])
    # two 500s quoting the header (retried, and reported), then a 400 quoting it (the error)
    echo = ("Authorization",)
    upload = echoing.add(
        Fault(r"^POST .*/blobs/uploads/", "status", status=500, times=2, echo=echo)
    )
    manifest = echoing.add(Fault(r"^PUT .*/manifests/", "status", status=400, times=-1, echo=echo))

    done = ocibuild("--store", str(tmp_path / "s"), *verbosity, "push", ref)

    assert done.returncode == 1
    assert upload.hits == 2 and manifest.hits == 1
    output = done.stdout + done.stderr
    assert output.count("Authorization: ") >= 3  # the echoes reached the output, masked
    assert output.count("Authorization: Basic ***") + output.count("Authorization: Bearer ***") >= 3
    assert done.stderr.splitlines()[-1].startswith("error: PUT ")
    for form in forms(USER, PASSWORD):
        assert form not in output
    if verbosity:
        assert "DEBUG" in output


LEAKY_HELPER = """\
#!{python}
# docker-credential-leaky: a helper that fails, printing its answer (and the secret) anyway
import json, sys
sys.stdin.read()
print(json.dumps({{"ServerURL": "x", "Username": "alice", "Secret": "{secret}"}}))
print("the secret was {secret}")
sys.exit(3)
"""


def test_a_failing_credential_helper_never_shows_its_secret(
    tmp_path: Path, basic_registry: Registry, docker_config: Path, repo: Callable[[str], str]
) -> None:
    registry = basic_registry
    secret = f"helper-{secrets.token_hex(8)}"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-leaky"
    helper.write_text(LEAKY_HELPER.format(python=sys.executable, secret=secret))
    helper.chmod(0o755)
    (docker_config / "config.json").write_text(
        json.dumps({"credHelpers": {registry.host: "leaky"}})
    )
    ref = f"{registry.host}/{repo()}:1"
    make_image(Store.open(tmp_path / "s"), [ref], [random_layer("a", 3000)])

    done = ocibuild(
        "--store", str(tmp_path / "s"), "-vv", "push", ref,
        env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
    )  # fmt: skip

    assert done.returncode == 1  # no credentials: the registry refuses the push
    assert "run `ocibuild login" in done.stderr.splitlines()[-1]
    assert "docker-credential-leaky get failed (exit 3)" in done.stderr  # -vv logged the failure
    for form in forms("alice", secret):
        assert form not in done.stdout + done.stderr
