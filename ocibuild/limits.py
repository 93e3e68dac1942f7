"""Every resource limit ocibuild enforces on untrusted input, in one place.

Each limit has a default that real HEP inputs stay far below, and an environment variable that
overrides it (a plain integer; sizes in bytes). They are read when checked, so a test or a
site can change them without restarting anything. docs/security.md lists them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ocibuild.errors import OcibuildError


class LimitError(OcibuildError, ValueError):
    """Input past one of the limits below (a ValueError too: a malformed value, to readers
    that turn those into their own errors)."""


@dataclass(frozen=True)
class Limit:
    name: str  # the environment variable
    default: int
    what: str  # what is counted, for messages and docs

    @property
    def value(self) -> int:
        text = os.environ.get(self.name)
        if text is None:
            return self.default
        try:
            value = int(text, 0)
        except ValueError:
            raise LimitError(f"{self.name}={text!r} is not an integer") from None
        if value <= 0:
            raise LimitError(f"{self.name}={text!r} must be positive")
        return value

    def check(self, amount: int, what: str) -> None:
        """Raise naming `what` when `amount` is past the limit, or negative (a declared size
        of -60 is no size at all)."""
        if amount < 0:
            raise LimitError(f"{what}: {self.what} {amount} is negative")
        limit = self.value
        if amount > limit:
            raise LimitError(
                f"{what}: {self.what} {amount} is over the limit {limit} "
                f"(set {self.name} to change it)"
            )


MEMBER_SIZE = Limit("OCIBUILD_MAX_MEMBER_SIZE", 64 << 30, "size in bytes of one archive member")
EXPANSION_RATIO = Limit(
    "OCIBUILD_MAX_EXPANSION_RATIO",
    1000,
    "ratio of unpacked to compressed bytes of an archive",
)
EXPANSION_FLOOR = Limit(
    "OCIBUILD_EXPANSION_FLOOR",
    1 << 30,
    "bytes an archive unpacks to before its expansion ratio is checked",
)
SIGNED_TEXT_SIZE = Limit(
    "OCIBUILD_MAX_SIGNED_TEXT_SIZE",
    256 << 20,
    "size in bytes of the signed text of a clearsigned file (InRelease)",
)
ENV_VALUE = Limit(
    "OCIBUILD_MAX_ENV_VALUE", 1 << 20, "length of one value of a UPS table's environment"
)
RECIPE_NODES = Limit(
    "OCIBUILD_MAX_RECIPE_NODES",
    1_000_000,
    "number of YAML values of a recipe, counting each alias as a copy",
)
YAML_NODES = Limit(
    "OCIBUILD_MAX_YAML_NODES",
    1_000_000,
    "number of values of a YAML document written by others, counting each alias as a copy",
)
RECIPE_SIZE = Limit("OCIBUILD_MAX_RECIPE_SIZE", 64 << 20, "size in bytes of a recipe file")
BLOB_SIZE = Limit(
    "OCIBUILD_MAX_BLOB_SIZE",
    64 << 30,
    "size in bytes of one blob or download (a layer, a config, a package, a tarball)",
)
JSON_SIZE = Limit("OCIBUILD_MAX_JSON_SIZE", 16 << 20, "size in bytes of one JSON document")
PAGES = Limit("OCIBUILD_MAX_PAGES", 1000, "pages of one paginated registry answer")
RETRY_AFTER = Limit(
    "OCIBUILD_MAX_RETRY_AFTER", 60, "seconds ocibuild waits when a server asks (Retry-After)"
)
ANSWER_TIME = Limit(
    "OCIBUILD_NET_ANSWER_SECONDS",
    120,
    "seconds a request may take to be sent and answered (its headers), plus its body's size "
    "at the minimum rate",
)
MIN_RATE = Limit(
    "OCIBUILD_NET_MIN_RATE", 10 << 10, "bytes per second a transfer moves at least, on average"
)
RATE_WINDOW = Limit(
    "OCIBUILD_NET_RATE_WINDOW", 30, "seconds over which a transfer's rate is averaged"
)

ALL = (
    MEMBER_SIZE,
    EXPANSION_RATIO,
    EXPANSION_FLOOR,
    ENV_VALUE,
    RECIPE_NODES,
    YAML_NODES,
    RECIPE_SIZE,
    BLOB_SIZE,
    JSON_SIZE,
    PAGES,
    RETRY_AFTER,
    ANSWER_TIME,
    MIN_RATE,
    RATE_WINDOW,
)


def check_expansion(unpacked: int, compressed: int, what: str) -> None:
    """Refuse an archive that unpacked past EXPANSION_FLOOR and past its ratio."""
    if unpacked > EXPANSION_FLOOR.value and unpacked > EXPANSION_RATIO.value * max(compressed, 1):
        raise LimitError(
            f"{what}: unpacks to {unpacked} bytes from {compressed}, more than "
            f"{EXPANSION_RATIO.value} times its size (a decompression bomb?; set "
            f"{EXPANSION_RATIO.name} to change the limit)"
        )
