"""How library code tells about progress: a callback `report(event)` given one typed event.

Each kind of event is a frozen dataclass; every event has a `message`, the line a plain
display prints. The CLI renders them (`cli/display.py`); tests record them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    """Something worth a line: `level` is info, warning or debug."""

    message: str
    level: str = "info"


@dataclass(frozen=True)
class LayerEvent:
    """A layer of an image being built: `status` building, cached or built; `done` and
    `total` count tar bytes; a built layer has its compressed `size`, `digest` and `seconds`."""

    key: str
    description: str
    status: str
    done: int = 0
    total: int | None = None
    size: int | None = None
    digest: str | None = None
    seconds: float | None = None

    @property
    def message(self) -> str:
        return f"{self.status} {self.description}"


@dataclass(frozen=True)
class ImageEvent:
    """An image of a recipe: `status` building, then built (with its manifest digest, its
    number of layers, how many came from the cache, and the time it took)."""

    ref: str
    status: str
    digest: str = ""
    layers: int = 0
    cached: int = 0
    seconds: float = 0.0
    not_frozen: int = 0  # UPS table lines its frozen Env could not hold (warned)

    @property
    def message(self) -> str:
        return f"{self.status} {self.ref}"


@dataclass(frozen=True)
class BlobEvent:
    """A blob moving to or from a registry: `status` one of uploading, uploaded, skipped,
    mounted, downloading, downloaded, present, copying, copied; `media_type` says whether it is
    a layer or a config."""

    digest: str
    size: int
    done: int
    status: str
    media_type: str = ""

    @property
    def message(self) -> str:
        short = self.digest.removeprefix("sha256:")[:12]
        return f"{short}: {self.status} ({self.done}/{self.size} bytes)"


@dataclass(frozen=True)
class FetchEvent:
    """A download (`what` says of what): `status` downloading, downloaded or cached; `origin`
    is the recipe line it is for (a display sums the downloads of one line)."""

    url: str
    what: str
    status: str
    size: int | None = None
    done: int = 0
    origin: str = ""

    @property
    def message(self) -> str:
        return f"{self.status} {self.what or self.url}"


@dataclass(frozen=True)
class TransferEvent:
    """An image pushed, pulled or copied: `status` pushing, pushed, pulling, pulled, copying or
    copied; `ref` is the image at the registry, `source` where it comes from (pushes, copies)."""

    ref: str
    status: str
    source: str = ""
    digest: str = ""
    detail: str = ""  # "3 blobs uploaded, 1 mounted, 0 already there"

    @property
    def message(self) -> str:
        if self.status in ("pushing", "copying"):
            return f"{self.status} {self.source} to {self.ref}"
        if self.status in ("pushed", "pulled", "copied"):
            done = f"{self.status} {self.ref}@{self.digest}"
            return f"{done}: {self.detail}" if self.detail else done
        return f"{self.status} {self.ref}"


@dataclass(frozen=True)
class RetryEvent:
    """A registry request failed in a way worth retrying: attempt `attempt` of `attempts`,
    after `delay` seconds."""

    error: str
    attempt: int
    attempts: int
    delay: float

    @property
    def message(self) -> str:
        return f"{self.error}; retry {self.attempt}/{self.attempts} in {self.delay:.1f} s"


@dataclass(frozen=True)
class RateLimitEvent:
    """A registry's pull rate limit is running low."""

    registry: str
    remaining: int
    limit: int

    @property
    def message(self) -> str:
        return (
            f"{self.registry}: pull rate limit low, {self.remaining} of {self.limit} requests left"
        )


@dataclass(frozen=True)
class JobEvent:
    """A benchmark job changed state (RUNNING, COMPLETED, FAILED, ...)."""

    job: str
    state: str

    @property
    def message(self) -> str:
        return f"job {self.job}: {self.state}"


@dataclass(frozen=True)
class TaskEvent:
    """Events a benchmark task has processed so far (of `total`, when known)."""

    task: str
    done: int
    total: int | None = None

    @property
    def message(self) -> str:
        of = f"/{self.total}" if self.total else ""
        return f"{self.task}: {self.done}{of} events"


@dataclass(frozen=True)
class SetupEvent:
    """A UPS `setup` frozen into an image's Env: `products` set up, `not_frozen` table lines
    (aliases, sourced scripts, commands) that only a login shell does."""

    where: str
    command: str
    products: int
    not_frozen: int = 0

    @property
    def message(self) -> str:
        return f"{self.where}: {self.command}: {plural(self.products, 'product')} set up"


Event = (
    Message
    | SetupEvent
    | LayerEvent
    | ImageEvent
    | BlobEvent
    | FetchEvent
    | TransferEvent
    | RetryEvent
    | RateLimitEvent
    | JobEvent
    | TaskEvent
)
Reporter = Callable[[Event], None]


def silent(event: Event) -> None:
    return None


def human_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def plural(n: int, word: str, many: str | None = None) -> str:
    """`1 layer`, `2 layers`."""
    return f"{n} {word if n == 1 else many or word + 's'}"
