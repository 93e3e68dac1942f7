"""Content digests (`sha256:<hex>`), validated on construction."""

from __future__ import annotations

import hashlib
import re

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class Digest(str):
    """A `sha256:<64 hex>` string. Other algorithms are refused: OCI registries use sha256."""

    __slots__ = ()

    def __new__(cls, value: str) -> Digest:
        if not _DIGEST.match(value):
            raise ValueError(f"not a sha256 digest: {value!r}")
        return super().__new__(cls, value)

    @property
    def hex(self) -> str:
        return self[7:]


def sha256_digest(data: bytes) -> Digest:
    return Digest("sha256:" + hashlib.sha256(data).hexdigest())


def is_digest(value: str) -> bool:
    return bool(_DIGEST.match(value))
