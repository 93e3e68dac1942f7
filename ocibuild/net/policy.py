"""How one command may use the network: one value, made by the CLI, read where requests are
made (downloads, registries); and the deadlines every request is held to."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ocibuild.limits import ANSWER_TIME, MIN_RATE, RATE_WINDOW


@dataclass(frozen=True)
class Deadlines:
    """What a request may take (docs/security.md#deadlines): `connect` seconds to connect;
    `idle` seconds without a byte (each read of the socket); `answer` seconds to send the request
    and get the answer's headers, plus the request body's size at `min_rate`; then, reading the
    body, `min_rate` bytes per second on average over every `window` seconds. The last three
    come from the limits `OCIBUILD_NET_ANSWER_SECONDS`, `OCIBUILD_NET_MIN_RATE` and
    `OCIBUILD_NET_RATE_WINDOW` unless given."""

    connect: float = 10.0
    idle: float = 60.0
    answer: float = field(default_factory=lambda: float(ANSWER_TIME.value))
    min_rate: float = field(default_factory=lambda: float(MIN_RATE.value))
    window: float = field(default_factory=lambda: float(RATE_WINDOW.value))

    @property
    def timeout(self) -> tuple[float, float]:
        """The socket's timeouts: to connect, and for each read."""
        return (self.connect, self.idle)


@dataclass(frozen=True)
class NetworkPolicy:
    offline: bool = False  # nothing is fetched: the download cache answers, or nothing does
    insecure: bool = False  # plain HTTP and unverified TLS allowed for every host (`--insecure`)
    ca_cert: Path | None = None  # the CA bundle TLS is verified with (`--ca-cert`)
    downloads: int = 4  # files downloaded at once (`--downloads`)
    deadlines: Deadlines = field(default_factory=Deadlines)
