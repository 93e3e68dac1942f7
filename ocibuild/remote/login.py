"""`login` and `logout`: check credentials against the registry, then keep or forget them."""

from __future__ import annotations

from ocibuild.oci.reference import registry_credentials_key
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


def login(registry: str, creds: Credentials, options: RemoteOptions, report: Reporter) -> str:
    """Verify and store credentials for a registry (`host:port`, `docker.io` or a URL like
    `https://index.docker.io/v1/`); returns where they were stored."""
    registry = server_key(registry)
    check_credentials(registry, creds, options, report)
    return store_credentials(registry_credentials_key(registry), creds, options.docker_config)


def logout(registry: str, options: RemoteOptions) -> bool:
    """Forget a registry's credentials; False if none were stored."""
    key = registry_credentials_key(server_key(registry))
    return erase_credentials(key, options.docker_config)
