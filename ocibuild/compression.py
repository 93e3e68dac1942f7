"""The compression a user chooses for layers: gzip, zstd or none, and its level as users know
it (gzip's 1-9, zstd's 1-19), checked where it is read (recipes, --level)."""

from __future__ import annotations

from dataclasses import dataclass

from ocibuild.oci.mediatypes import MediaType

COMPRESSIONS = ("gzip", "zstd", "none")
# Levels as users know them: gzip's 1-9 (default 6) and zstd's 1-19 (default 3). ISA-L, which
# writes the gzip layers, has four levels of its own: gzip's nine map onto them.
DEFAULT_LEVEL = {"gzip": 6, "zstd": 3, "none": 0}
LEVEL_RANGE = {"gzip": (1, 9), "zstd": (1, 19), "none": (0, 0)}
ISAL_LEVEL = {1: 0, 2: 1, 3: 1, 4: 2, 5: 2, 6: 2, 7: 3, 8: 3, 9: 3}
LEVEL_HELP = "gzip 1-9 (default 6; ISA-L's 0-3: 1 -> 0, 2-3 -> 1, 4-6 -> 2, 7-9 -> 3), zstd 1-19"
MEDIA_TYPE = {
    "gzip": MediaType.OCI_LAYER_GZIP,
    "zstd": MediaType.OCI_LAYER_ZSTD,
    "none": MediaType.OCI_LAYER,
}


def check_level(algorithm: str, level: int | None) -> None:
    """A ValueError saying what the algorithm takes, when `level` is not that."""
    low, high = LEVEL_RANGE[algorithm]
    if level is None or low <= level <= high:
        return
    if algorithm == "none":
        raise ValueError(f"compression none takes no level (got {level})")
    raise ValueError(f"{algorithm} compression level {level} is not one of {low}-{high}")


@dataclass(frozen=True)
class Compression:
    algorithm: str = "gzip"
    level: int | None = None

    def __post_init__(self) -> None:
        if self.algorithm not in COMPRESSIONS:
            raise ValueError(
                f"unknown compression {self.algorithm!r} (one of {', '.join(COMPRESSIONS)})"
            )
        check_level(self.algorithm, self.level)

    @property
    def effective_level(self) -> int:
        """The level the compressor is given: for gzip, ISA-L's level for the gzip level."""
        level = DEFAULT_LEVEL[self.algorithm] if self.level is None else self.level
        return ISAL_LEVEL[level] if self.algorithm == "gzip" else level

    @property
    def media_type(self) -> str:
        return MEDIA_TYPE[self.algorithm]

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.effective_level}" if self.algorithm != "none" else "none"
