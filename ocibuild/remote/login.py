"""`login` and `logout`: check credentials against the registry, then keep or forget them."""

from __future__ import annotations

from ocibuild.oci.reference import check_registry, registry_credentials_key
from ocibuild.progress import Reporter
from ocibuild.remote.credentials import (
    Credentials,
    erase_credentials,
    server_key,
    store_credentials,
)
from ocibuild.remote.options import RemoteOptions
from ocibuild.remote.transport import RegistryClient


def check_credentials(
    registry: str, creds: Credentials, options: RemoteOptions, report: Reporter
) -> None:
    """Raise AuthError unless the registry (or its token service) accepts `creds`."""
    with RegistryClient(registry, options, report, credentials=lambda: creds) as client:
        client.request("GET", "/v2/").close()


def registry_host(registry: str) -> str:
    """The host of a registry given as `host:port`, `docker.io` or a URL like
    `https://index.docker.io/v1/`; a ReferenceError if it names none."""
    return check_registry(server_key(registry), registry)


def login(registry: str, creds: Credentials, options: RemoteOptions, report: Reporter) -> str:
    """Verify and store credentials for a registry (`registry_host`); returns where they were
    stored."""
    registry = registry_host(registry)
    check_credentials(registry, creds, options, report)
    return store_credentials(registry_credentials_key(registry), creds, options.docker_config)


def logout(registry: str, options: RemoteOptions) -> bool:
    """Forget a registry's credentials; False if none were stored."""
    key = registry_credentials_key(registry_host(registry))
    return erase_credentials(key, options.docker_config)
