"""How to speak to a host, decided as docker, podman and crane decide it.

- Loopback addresses (127.0.0.0/8, ::1), `localhost`, `*.localhost` and `*.local` hosts get
  plain HTTP when they do not speak TLS; when they do, their certificate is verified like any
  other's.
- Hosts in `$OCIBUILD_INSECURE_REGISTRIES` (comma-separated `host` or `host:port`) and every host
  under `--insecure` get plain HTTP, or TLS without verification.
- CA certificates and client certificates are looked up in `certs.d` directories:
  `/etc/containers/certs.d/HOST[:PORT]/` (podman) and `/etc/docker/certs.d/HOST[:PORT]/` (docker),
  or the directories of `$OCIBUILD_CERTS_DIRS` (colon-separated) instead. There, every `*.crt` is a
  CA certificate (docker's `ca.crt`), trusted besides the system's, and a `NAME.cert` with its
  `NAME.key` is a client certificate (docker's `client.cert` and `client.key`).
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import urllib3

from ocibuild.errors import OcibuildError

INSECURE_ENV = "OCIBUILD_INSECURE_REGISTRIES"
CERTS_DIRS_ENV = "OCIBUILD_CERTS_DIRS"
DEFAULT_CERTS_DIRS = ("/etc/containers/certs.d", "/etc/docker/certs.d")


@dataclass(frozen=True)
class HostTLS:
    """`verify` (requests' meaning: True, False, or a CA bundle path) and `cert` (a client
    certificate and key) for one host; `plain_http` says whether plain HTTP may be tried when
    the host does not speak TLS; `insecure` whether TLS goes unverified."""

    verify: bool | str = True
    cert: tuple[str, str] | None = None
    plain_http: bool = False
    insecure: bool = False
    ca_source: str = ""  # where the CA came from, for messages


def split_host(netloc: str) -> tuple[str, int | None]:
    """`host:port`, `[::1]:5000` or `host` -> (host without brackets, port or None)."""
    if netloc.startswith("["):
        host, _, rest = netloc[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif netloc.count(":") == 1:
        host, _, port = netloc.partition(":")
    else:
        host, port = netloc, ""
    return host.lower(), int(port) if port.isdigit() else None


def is_local(netloc: str) -> bool:
    """A loopback address, `localhost` or a `*.local` name (the registries docker and crane
    talk plain HTTP to)."""
    host, _ = split_host(netloc)
    if host == "localhost" or host.endswith((".localhost", ".local")):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def insecure_hosts() -> list[str]:
    """The entries of `$OCIBUILD_INSECURE_REGISTRIES`."""
    return [h.strip().lower() for h in os.environ.get(INSECURE_ENV, "").split(",") if h.strip()]


def listed_insecure(netloc: str) -> bool:
    """Whether `$OCIBUILD_INSECURE_REGISTRIES` names this host (with this port, or any port)."""
    netloc = netloc.lower()
    host, _ = split_host(netloc)
    for entry in insecure_hosts():
        entry_host, entry_port = split_host(entry)
        if entry == netloc or (entry_port is None and entry_host == host):
            return True
    return False


def certs_dirs() -> list[Path]:
    value = os.environ.get(CERTS_DIRS_ENV)
    roots = value.split(":") if value is not None else list(DEFAULT_CERTS_DIRS)
    return [Path(r) for r in roots if r]


def host_tls(netloc: str, insecure: bool = False, ca_cert: Path | None = None) -> HostTLS:
    """The TLS settings for `netloc` (`host[:port]`): `insecure` is `--insecure`, `ca_cert` is
    `--ca-cert` (then the only CA trusted)."""
    if insecure or listed_insecure(netloc):
        # asked for: urllib3's warning on every request would only repeat it
        warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
        return HostTLS(verify=False, plain_http=True, insecure=True)
    cas, cert = _certs_d(netloc)
    if ca_cert is not None:
        verify: bool | str = str(ca_cert)
        source = f"--ca-cert {ca_cert}"
    elif cas:
        verify = _bundle(tuple(cas))
        source = ", ".join(str(c) for c in cas)
    else:
        verify, source = True, ""
    return HostTLS(verify=verify, cert=cert, plain_http=is_local(netloc), ca_source=source)


def _certs_d(netloc: str) -> tuple[list[Path], tuple[str, str] | None]:
    """The CA files and the client certificate of `netloc` in the certs.d directories."""
    cas: list[Path] = []
    cert = None
    for root in certs_dirs():
        directory = root / netloc.lower()
        if not directory.is_dir():
            continue
        cas += sorted(directory.glob("*.crt"))
        for client in sorted(directory.glob("*.cert")):
            key = client.with_suffix(".key")
            if cert is None and key.is_file():
                cert = (str(client), str(key))
    return cas, cert


_bundles: dict[bytes, str] = {}
_bundles_lock = threading.Lock()


def _bundle(cas: tuple[Path, ...]) -> str:
    """One PEM file of the system's CAs and `cas`, written once per process and content
    (requests takes a single bundle, and a certs.d CA adds to the system's trust, as in docker)."""
    added = b"\n".join(_read(ca) for ca in cas)
    with _bundles_lock:
        if added in _bundles:
            return _bundles[added]
        fd, path = tempfile.mkstemp(prefix="ocibuild-ca-", suffix=".pem")
        with os.fdopen(fd, "wb") as out:
            out.write(_read(_system_bundle()) + b"\n" + added)
        atexit.register(Path(path).unlink, missing_ok=True)
        _bundles[added] = path
        return path


def _read(ca: Path) -> bytes:
    try:
        return ca.read_bytes()
    except OSError as e:
        raise OcibuildError(f"cannot read the CA certificate {ca}: {e.strerror or e}") from None


def _system_bundle() -> Path:
    for env in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        if (value := os.environ.get(env)) and Path(value).is_file():
            return Path(value)
    import certifi

    return Path(certifi.where())
