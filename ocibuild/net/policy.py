"""How one command may use the network: one value, made by the CLI, read where requests are
made (downloads, registries)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class NetworkPolicy:
    offline: bool = False  # nothing is fetched: the download cache answers, or nothing does
    insecure: bool = False  # plain HTTP and unverified TLS allowed for every host (`--insecure`)
    ca_cert: Path | None = None  # the CA bundle TLS is verified with (`--ca-cert`)
    downloads: int = 4  # files downloaded at once (`--downloads`)
