"""Credentials in docker's config format: auths, credHelpers, credsStore, podman's auth file."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from ocibuild.errors import AuthError
from ocibuild.oci.reference import parse_reference
from ocibuild.remote import Credentials, find_credentials
from ocibuild.remote.auth import parse_challenges, pick_challenge
from ocibuild.remote.credentials import erase_credentials, server_key, store_credentials

HELPER = """\
#!{python}
# docker-credential-{name}: keeps credentials in a JSON file beside it, speaking docker's protocol
import json, sys
from pathlib import Path
store = Path(__file__).with_suffix(".json")
data = json.loads(store.read_text()) if store.exists() else {{}}
action = sys.argv[1]
if action == "get":
    server = sys.stdin.read().strip()
    if server not in data:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps({{"ServerURL": server, "Username": data[server][0], "Secret": data[server][1]}}))
elif action == "store":
    req = json.loads(sys.stdin.read())
    data[req["ServerURL"]] = [req["Username"], req["Secret"]]
    store.write_text(json.dumps(data))
elif action == "erase":
    data.pop(sys.stdin.read().strip(), None)
    store.write_text(json.dumps(data))
"""


def install_helper(bin_dir: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir.mkdir(exist_ok=True)
    program = bin_dir / f"docker-credential-{name}"
    program.write_text(HELPER.format(python=sys.executable, name=name))
    program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return program.with_suffix(".json")


def write_config(directory: Path, config: dict) -> None:  # type: ignore[type-arg]
    (directory / "config.json").write_text(json.dumps(config))


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_references_are_normalized_like_docker() -> None:
    hub = parse_reference("centos:6.7")
    assert str(hub) == "docker.io/library/centos:6.7"
    assert hub.endpoint == "registry-1.docker.io"
    assert hub.credentials_key == "https://index.docker.io/v1/"
    local = parse_reference("localhost:5000/hep/art@sha256:" + "a" * 64)
    assert (local.registry, local.repository, local.tag) == ("localhost:5000", "hep/art", "")
    assert local.identifier == "sha256:" + "a" * 64


def test_auths_entries_in_both_forms(docker_config: Path) -> None:
    write_config(
        docker_config,
        {
            "auths": {
                "https://index.docker.io/v1/": {"auth": b64("hubuser:hub:pass")},
                "http://site.org:5000/v2/": {"username": "site", "password": "sitepw"},
            }
        },
    )
    assert find_credentials("https://index.docker.io/v1/") == Credentials("hubuser", "hub:pass")
    assert find_credentials("docker.io") == Credentials("hubuser", "hub:pass")
    assert find_credentials("site.org:5000") == Credentials("site", "sitepw")
    assert find_credentials("other.org") is None


def test_credentials_repr_hides_the_password() -> None:
    creds = Credentials("user", "very-secret")
    assert "very-secret" not in repr(creds) and "very-secret" not in str(creds)


def test_store_writes_base64_auth_private_to_the_user(docker_config: Path) -> None:
    write_config(
        docker_config, {"auths": {"https://site.org:5000": {"auth": b64("old:old")}}, "x": 1}
    )
    where = store_credentials("site.org:5000", Credentials("new", "pw"))
    path = docker_config / "config.json"
    assert where == str(path)
    config = json.loads(path.read_text())
    assert config["auths"] == {"site.org:5000": {"auth": b64("new:pw")}}
    assert config["x"] == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert erase_credentials("https://site.org:5000/") is True
    assert find_credentials("site.org:5000") is None
    assert erase_credentials("site.org:5000") is False


def test_registry_auth_file_comes_first_and_receives_logins(
    tmp_path: Path, docker_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth_file = tmp_path / "containers" / "auth.json"
    auth_file.parent.mkdir()
    auth_file.write_text(json.dumps({"auths": {"site.org": {"auth": b64("podman:pw1")}}}))
    write_config(docker_config, {"auths": {"site.org": {"auth": b64("docker:pw2")}}})
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth_file))
    assert find_credentials("site.org") == Credentials("podman", "pw1")
    store_credentials("other.org", Credentials("o", "pw3"))
    assert "other.org" in json.loads(auth_file.read_text())["auths"]
    monkeypatch.delenv("REGISTRY_AUTH_FILE")
    assert find_credentials("site.org") == Credentials("docker", "pw2")


def test_cred_helpers_and_creds_store(
    tmp_path: Path, docker_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    special = install_helper(tmp_path / "bin", "special", monkeypatch)
    default = install_helper(tmp_path / "bin", "default", monkeypatch)
    write_config(
        docker_config, {"credHelpers": {"site.org:5000": "special"}, "credsStore": "default"}
    )

    assert store_credentials("site.org:5000", Credentials("s", "special-pw")) == (
        "credential helper docker-credential-special"
    )
    store_credentials("https://index.docker.io/v1/", Credentials("d", "default-pw"))
    assert json.loads(special.read_text()) == {"site.org:5000": ["s", "special-pw"]}
    assert json.loads(default.read_text()) == {"https://index.docker.io/v1/": ["d", "default-pw"]}
    assert "special-pw" not in (docker_config / "config.json").read_text()

    assert find_credentials("site.org:5000") == Credentials("s", "special-pw")
    assert find_credentials("https://index.docker.io/v1/") == Credentials("d", "default-pw")
    assert find_credentials("unknown.org") is None  # the helper says "not found"

    assert erase_credentials("site.org:5000") is True
    assert find_credentials("site.org:5000") is None


def test_missing_helper_and_broken_files_are_named(tmp_path: Path, docker_config: Path) -> None:
    write_config(docker_config, {"credsStore": "nonexistent"})
    with pytest.raises(AuthError, match=r"docker-credential-nonexistent .* is not on PATH"):
        store_credentials("site.org", Credentials("u", "secret-pw"))
    (docker_config / "config.json").write_text("{not json")
    with pytest.raises(AuthError, match=r"config.json: not JSON"):
        find_credentials("site.org")
    write_config(docker_config, {"auths": {"site.org": {"auth": "bm8tY29sb24="}}})  # "no-colon"
    with pytest.raises(AuthError, match=r"the auth of site\.org is not base64 user:password"):
        find_credentials("site.org")


def test_server_keys() -> None:
    assert server_key("https://index.docker.io/v1/") == "docker.io"
    assert server_key("registry-1.docker.io") == "docker.io"
    assert server_key("HTTP://Site.org:5000/v2/") == "site.org:5000"


def test_challenges() -> None:
    header = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"'
    (challenge,) = parse_challenges(header)
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/ubuntu:pull",
    }
    both = pick_challenge('Basic realm="x, y", Bearer realm="https://a/t",error=insufficient_scope')
    assert both is not None and both.scheme == "bearer"
    assert both.params == {"realm": "https://a/t", "error": "insufficient_scope"}
    basic = pick_challenge('Basic realm="Registry \\"quoted\\""')
    assert basic is not None and basic.realm == 'Registry "quoted"'
