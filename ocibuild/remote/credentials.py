"""Registry credentials, kept the way docker and podman keep them.

Files (all in docker's `config.json` format): `$REGISTRY_AUTH_FILE` (podman's), then
`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`; an explicit `docker_config` directory
replaces them all. In each file, `credHelpers[registry]` names a `docker-credential-<helper>`
program, `auths[registry].auth` is base64 `user:password`, and `credsStore` is the helper for
every other registry. Helpers speak docker's protocol: `get`/`erase` read the server on stdin,
`store` reads `{"ServerURL", "Username", "Secret"}`; `get` answers with the same JSON.

A password never appears in a message, a log line or a repr: every secret read is registered
with `ocibuild.secrets`, whose filter the CLI applies to all it prints.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocibuild import secrets
from ocibuild.errors import AuthError
from ocibuild.infile import read_regular_file
from ocibuild.jsonread import read_json, read_json_object
from ocibuild.limits import JSON_SIZE
from ocibuild.oci.reference import DOCKER_HUB
from ocibuild.outpath import write_output

log = logging.getLogger(__name__)

HELPER_PREFIX = "docker-credential-"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}
_HELPER_TIMEOUT = 60
HELPER_ANSWER = 1 << 20  # bytes of a credential helper's JSON answer
NOT_FOUND = "credentials not found in native keychain"  # docker's protocol: no credentials


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        secrets.register(self.password, self.username)

    def basic(self) -> str:
        """The value of an `Authorization: Basic` header."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def server_key(key: str) -> str:
    """Compare registries as docker does: `https://host/v1/`, `host` and Hub's aliases agree."""
    host = key.strip().lower()
    for scheme in ("https://", "http://"):
        if host.startswith(scheme):
            host = host[len(scheme) :]
    host = host.split("/", 1)[0]
    return DOCKER_HUB if host in _HUB_ALIASES else host


def config_files(docker_config: Path | None) -> list[Path]:
    """The files credentials are read from, first match wins."""
    if docker_config is not None:
        return [_config_file(docker_config)]
    files = []
    if auth_file := os.environ.get("REGISTRY_AUTH_FILE"):
        files.append(Path(auth_file))
    files.append(_config_file(_docker_config_dir()))
    return files


def write_file(docker_config: Path | None) -> Path:
    """The file `login` writes to: the explicit one, podman's auth file if set, else docker's."""
    if docker_config is not None:
        return _config_file(docker_config)
    if auth_file := os.environ.get("REGISTRY_AUTH_FILE"):
        return Path(auth_file)
    return _config_file(_docker_config_dir())


def find_credentials(registry_key: str, docker_config: Path | None = None) -> Credentials | None:
    """The credentials stored for a registry (its `credentials_key`), or None."""
    wanted = server_key(registry_key)
    for path in config_files(docker_config):
        config = _read_config(path)
        if helper := _helper_for(config, wanted, path):
            creds = _helper_get(helper, registry_key, path)
            if creds is not None:
                return creds
            continue
        if entry := _auth_entry(config, wanted):
            creds = _decode_entry(entry, path, wanted)
            if creds is not None:
                return creds
        if store := config.get("credsStore"):
            creds = _helper_get(str(store), registry_key, path)
            if creds is not None:
                return creds
    return None


def store_credentials(
    registry_key: str, creds: Credentials, docker_config: Path | None = None
) -> str:
    """Save credentials (in a helper if the config names one); returns where they went."""
    path = write_file(docker_config)
    config = _read_config(path)
    helper = _helper_for(config, server_key(registry_key), path) or config.get("credsStore")
    if helper:
        payload = {"ServerURL": registry_key, "Username": creds.username, "Secret": creds.password}
        _run_helper(str(helper), "store", json.dumps(payload), path, secret=creds.password)
        return f"credential helper {HELPER_PREFIX}{helper}"
    auths = config.setdefault("auths", {})
    for key in [k for k in auths if server_key(k) == server_key(registry_key)]:
        del auths[key]
    raw = f"{creds.username}:{creds.password}".encode()
    auths[registry_key] = {"auth": base64.b64encode(raw).decode()}
    _write_config(path, config)
    return str(path)


def erase_credentials(registry_key: str, docker_config: Path | None = None) -> bool:
    """Forget a registry's credentials everywhere they are kept; False if there were none."""
    wanted = server_key(registry_key)
    erased = False
    for path in config_files(docker_config):
        config = _read_config(path)
        helper = _helper_for(config, wanted, path) or config.get("credsStore")
        if helper and _helper_get(str(helper), registry_key, path) is not None:
            _run_helper(str(helper), "erase", registry_key, path)
            erased = True
        auths = config.get("auths") or {}
        keys = [k for k in auths if server_key(k) == wanted]
        if keys:
            for key in keys:
                del auths[key]
            _write_config(path, config)
            erased = True
    return erased


def _docker_config_dir() -> Path:
    if env := os.environ.get("DOCKER_CONFIG"):
        return Path(env)
    return Path.home() / ".docker"


def _config_file(directory: Path) -> Path:
    return directory if directory.suffix == ".json" else directory / "config.json"


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = read_json(read_regular_file(path, JSON_SIZE.value + 1), f"credentials file {path}")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise AuthError(f"cannot read credentials file {path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise AuthError(f"cannot read credentials file {path}: {e.__class__.__name__}") from None
    except ValueError as e:
        # the reader's messages quote no string of the document, only positions and keys
        raise AuthError(str(e)) from None
    if not isinstance(data, dict):
        raise AuthError(f"credentials file {path} does not hold a JSON object")
    return data


def _write_config(path: Path, config: dict[str, Any]) -> None:
    data = (json.dumps(config, indent="\t") + "\n").encode()
    default_dir = Path.home() / ".docker"
    if path.parent == default_dir and not os.path.lexists(default_dir):
        default_dir.mkdir(mode=0o700)  # as docker does; directories named by the user must exist
    write_output(path, data, mode=0o600)


def _helper_for(config: dict[str, Any], wanted: str, path: Path) -> str | None:
    helpers = config.get("credHelpers") or {}
    if not isinstance(helpers, dict):
        raise AuthError(f"credentials file {path}: credHelpers is not an object")
    for key, helper in helpers.items():
        if server_key(key) == wanted:
            return str(helper)
    return None


def _auth_entry(config: dict[str, Any], wanted: str) -> dict[str, Any] | None:
    auths = config.get("auths") or {}
    for key, entry in auths.items():
        if server_key(key) == wanted and isinstance(entry, dict):
            return entry
    return None


def _decode_entry(entry: dict[str, Any], path: Path, registry: str) -> Credentials | None:
    if entry.get("auth"):
        try:
            user, sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            sep = ""
        if not sep:
            raise AuthError(
                f"credentials file {path}: the auth of {registry} is not base64 user:password"
            )
        return Credentials(user, password)
    if entry.get("username") and "password" in entry:
        return Credentials(str(entry["username"]), str(entry["password"]))
    return None


def _helper_get(helper: str, registry_key: str, path: Path) -> Credentials | None:
    try:
        out = _run_helper(helper, "get", registry_key, path)
    except AuthError as e:
        log.debug("no credentials for %s from %s%s: %s", registry_key, HELPER_PREFIX, helper, e)
        return None
    try:
        data = read_json_object(out, f"{HELPER_PREFIX}{helper}'s answer", HELPER_ANSWER)
        username, secret = str(data["Username"]), str(data["Secret"])
    except (ValueError, KeyError, TypeError):
        raise AuthError(
            f"{HELPER_PREFIX}{helper} (named in {path}) gave an answer that is not its JSON"
        ) from None
    if username == "<token>":
        log.warning(
            "%s%s holds an identity token for %s: not supported, ignored",
            HELPER_PREFIX,
            helper,
            registry_key,
        )
        return None
    return Credentials(username, secret)


def _run_helper(helper: str, action: str, stdin: str, path: Path, secret: str = "") -> str:
    program = shutil.which(HELPER_PREFIX + helper)
    if program is None:
        raise AuthError(
            f"credential helper {HELPER_PREFIX}{helper} (named in {path}) is not on PATH"
        )
    try:
        proc = subprocess.run(
            [program, action],
            check=False,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=_HELPER_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise AuthError(
            f"{HELPER_PREFIX}{helper} {action} failed: {e.__class__.__name__}"
        ) from None
    if proc.returncode != 0:
        # helpers report failures on stdout; what a failing `get` says may be the very secret
        # (or its JSON answer), so only the protocol's "not found" is quoted
        output = proc.stdout.strip() or proc.stderr.strip()
        _register_answer(output)
        lines = output.splitlines()
        reason = lines[0][:200] if lines else "no message"
        quotable = reason == NOT_FOUND if action == "get" else not (secret and secret in reason)
        if not quotable or reason.lstrip().startswith(("{", "[")):
            reason = "(its output is not shown: it may quote a secret)"
        raise AuthError(
            f"{HELPER_PREFIX}{helper} {action} failed (exit {proc.returncode}): {reason}"
        )
    _register_answer(proc.stdout)
    return proc.stdout


def _register_answer(output: str) -> None:
    """Register the secret of a helper's JSON answer, whatever became of the helper."""
    try:
        data = read_json(output, "a credential helper's answer", HELPER_ANSWER)
    except ValueError:
        return
    secret = data.get("Secret") if isinstance(data, dict) else None
    if isinstance(data, dict) and isinstance(secret, str):
        username = data.get("Username")
        secrets.register(secret, username if isinstance(username, str) else None)
