"""Per-blob progress events, throttled so that a callback sees a few updates a second; and
the place where a transfer notices it was cancelled (it is told of every chunk)."""

from __future__ import annotations

import threading
import time

from ocibuild.errors import RegistryError
from ocibuild.oci import Descriptor
from ocibuild.progress import BlobEvent, Reporter

_INTERVAL = 0.1


class BlobProgress:
    """Reports `BlobEvent`s for one blob."""

    def __init__(
        self,
        report: Reporter,
        descriptor: Descriptor,
        active: str,
        cancel: threading.Event | None = None,
    ) -> None:
        self.report = report
        self.descriptor = descriptor
        self.active = active
        self.cancel = cancel
        self._last = 0.0

    def update(self, done: int) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise RegistryError(f"{self.descriptor.digest}: transfer cancelled")
        now = time.monotonic()
        if now - self._last >= _INTERVAL:
            self._last = now
            self.emit(self.active, done)

    def emit(self, status: str, done: int | None = None) -> None:
        size = self.descriptor.size
        done = size if done is None else done
        self.report(
            BlobEvent(str(self.descriptor.digest), size, done, status, self.descriptor.media_type)
        )
