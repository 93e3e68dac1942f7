"""How library code tells about progress: a callback `report(event, **fields)`.

Events: `layer` (key, description, status: planned/cached/building/built, done, total),
`blob` (digest, size, done, status), `fetch` (url, what, size, done, status),
`message` (message, level), plus those of each command. The CLI renders them; tests record them.
"""

from __future__ import annotations

from typing import Any, Protocol


class Reporter(Protocol):
    def __call__(self, event: str, /, **fields: Any) -> None: ...


def silent(event: str, /, **fields: Any) -> None:
    return None


def human_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
