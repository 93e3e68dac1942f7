"""`login` and `logout`: check credentials against the registry, then keep or forget them."""

from __future__ import annotations

from ocibuild.remote.credentials import Credentials, erase_credentials, server_key, store_credentials
from ocibuild.remote.options import RemoteOptions
from ocibuild.remote.transport import RegistryClient, Report
from ocibuild.oci.reference import DOCKER_HUB, DOCKER_HUB_CREDENTIALS_KEY


def registry_name(text: str) -> str:
    """`https://index.docker.io/v1/`, `docker.io` -> `docker.io`; `https://host:5000` -> `host:5000`."""
    return server_key(text)


def credentials_key(registry: str) -> str:
    return DOCKER_HUB_CREDENTIALS_KEY if registry == DOCKER_HUB else registry


def check_credentials(registry: str, creds: Credentials, options: RemoteOptions, report: Report) -> None:
    """Raise AuthError unless the registry (or its token service) accepts `creds`."""
    with RegistryClient(registry, options, report, credentials=lambda: creds) as client:
        client.request("GET", "/v2/").close()


def login(registry: str, creds: Credentials, options: RemoteOptions, report: Report) -> str:
    """Verify and store credentials for a registry; returns where they were stored."""
    registry = registry_name(registry)
    check_credentials(registry, creds, options, report)
    return store_credentials(credentials_key(registry), creds, options.docker_config)


def logout(registry: str, options: RemoteOptions) -> bool:
    """Forget a registry's credentials; False if none were stored."""
    return erase_credentials(credentials_key(registry_name(registry)), options.docker_config)
