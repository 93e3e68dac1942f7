"""`<recipe>.lock`: the sha256 and size of every file a recipe's sources downloaded.

pullProducts checks no checksums; ocibuild pins what it fetched the first time and refuses a
changed file afterwards (unless told `--update-lock`).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from ocibuild.errors import LockError
from ocibuild.store.atomic import atomic_write_bytes

LOCK_VERSION = 1


@dataclass(frozen=True)
class Pin:
    url: str
    size: int
    sha256: str


class LockFile:
    def __init__(self, path: Path | None, pins: dict[str, Pin] | None = None) -> None:
        self.path = path
        self._pins = dict(pins or {})
        self._changed = False
        self._mutex = threading.Lock()

    @classmethod
    def for_recipe(cls, recipe: Path) -> LockFile:
        return cls.load(recipe.with_name(recipe.name + ".lock"))

    @classmethod
    def load(cls, path: Path) -> LockFile:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as e:
            raise LockError(f"{path}: not a valid lock file ({e})") from None
        try:
            if data.get("version") != LOCK_VERSION:
                raise LockError(f"{path}: unsupported lock file version {data.get('version')!r}")
            pins = {
                url: Pin(url, int(p["size"]), str(p["sha256"])) for url, p in data["files"].items()
            }
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise LockError(f"{path}: malformed lock file ({e})") from None
        return cls(path, pins)

    def get(self, url: str) -> Pin | None:
        with self._mutex:
            return self._pins.get(url)

    def set(self, pin: Pin) -> None:
        with self._mutex:
            if self._pins.get(pin.url) != pin:
                self._pins[pin.url] = pin
                self._changed = True

    @property
    def changed(self) -> bool:
        return self._changed

    def save(self) -> None:
        if not self._changed or self.path is None:
            return
        files = {url: {"size": p.size, "sha256": p.sha256} for url, p in sorted(self._pins.items())}
        text = json.dumps({"version": LOCK_VERSION, "files": files}, indent=1, sort_keys=True)
        atomic_write_bytes(self.path, (text + "\n").encode())
        self._changed = False
