"""Per-blob progress events, throttled so that a callback sees a few updates a second."""

from __future__ import annotations

import time

from ocibuild.oci import Descriptor
from ocibuild.remote.transport import Report

_INTERVAL = 0.1


def short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


class BlobProgress:
    """Reports `blob` events (digest, size, done, status, message) for one blob."""

    def __init__(self, report: Report, descriptor: Descriptor, active: str) -> None:
        self.report = report
        self.descriptor = descriptor
        self.active = active
        self._last = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self._last >= _INTERVAL:
            self._last = now
            self.emit(self.active, done)

    def emit(self, status: str, done: int | None = None) -> None:
        size = self.descriptor.size
        done = size if done is None else done
        self.report(
            "blob",
            digest=str(self.descriptor.digest),
            size=size,
            done=done,
            status=status,
            message=f"{short(self.descriptor.digest)}: {status} ({done}/{size} bytes)",
        )
