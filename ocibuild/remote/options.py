"""How to talk to registries: TLS, concurrency, manifest format, chunking, retries, credentials."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ocibuild.net.policy import Deadlines
from ocibuild.net.retry import RetryPolicy
from ocibuild.oci.formats import FORMATS

MiB = 1 << 20


@dataclass(frozen=True)
class RemoteOptions:
    """Settings of one push or pull; `RemoteOptions()` suits a public HTTPS registry.

    `insecure` allows plain HTTP and unverified TLS for every registry (loopback ones may be
    plain HTTP anyway: see `ocibuild.net.tls`); `ca_cert` is the CA bundle to verify TLS with.
    Blobs up to `chunk_threshold` bytes go in one PUT, larger ones in PATCH chunks of
    `chunk_size` (or the registry's `OCI-Chunk-Min-Length`, if larger). Failed requests are
    retried `retries` times, waiting `backoff` * 2^n seconds (with jitter, at most
    `max_backoff`) or what `Retry-After` asks (at most `max_retry_after`); every request is held
    to `deadlines` (its socket timeouts are `connect_timeout` and `read_timeout`).
    `docker_config` is a directory holding `config.json`, like `$DOCKER_CONFIG`.
    `format` is the pushed manifest's: "docker" (v2 schema 2), "oci", or "auto": the image's
    own, chosen when it was built (a push in the other family converts it: another digest).
    """

    insecure: bool = False
    ca_cert: Path | None = None
    concurrency: int = 4
    format: str = "auto"
    platform: str = "linux/amd64"
    chunk_threshold: int = 1024 * MiB
    chunk_size: int = 256 * MiB
    retries: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float | None = None  # None: the limit OCIBUILD_MAX_RETRY_AFTER
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    docker_config: Path | None = None

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.retries, self.backoff, self.max_backoff, self.max_retry_after)

    @property
    def deadlines(self) -> Deadlines:
        """The network's deadlines (`ocibuild.net.Deadlines`), with these socket timeouts."""
        return Deadlines(connect=self.connect_timeout, idle=self.read_timeout)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(
                f"unknown manifest format {self.format!r} (one of {', '.join(FORMATS)})"
            )
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {self.concurrency}")
        if self.chunk_size < 1 or self.chunk_threshold < 0:
            raise ValueError("chunk_size must be positive and chunk_threshold not negative")
        if self.retries < 0 or self.backoff < 0:
            raise ValueError("retries and backoff must not be negative")
        if self.platform.count("/") not in (1, 2):
            raise ValueError(f"platform {self.platform!r} is not os/arch[/variant]")
