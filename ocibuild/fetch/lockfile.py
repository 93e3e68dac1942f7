"""`<recipe>.lock`: the sha256 and size of every file a recipe's sources downloaded.

pullProducts checks no checksums; ocibuild pins what it fetched the first time and refuses a
changed file afterwards (unless told `--update-lock`). Package sources also record here what
they resolved (`resolved`: the exact package set of a layer), so a rebuild installs the same
packages even after the repository moved on.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocibuild.errors import LockError
from ocibuild.infile import read_regular_file
from ocibuild.jsonread import json_object, read_json
from ocibuild.limits import JSON_SIZE
from ocibuild.outpath import write_output
from ocibuild.secrets import public_url

LOCK_VERSION = 1


@dataclass(frozen=True)
class Pin:
    url: str
    size: int
    sha256: str


class LockFile:
    def __init__(
        self,
        path: Path | None,
        pins: dict[str, Pin] | None = None,
        resolved: dict[str, Any] | None = None,
    ) -> None:
        self.path = path
        self._pins = dict(pins or {})
        self._resolved = dict(resolved or {})
        self._changed = False
        self._mutex = threading.Lock()

    @classmethod
    def for_recipe(cls, recipe: Path) -> LockFile:
        return cls.load(recipe.with_name(recipe.name + ".lock"))

    @classmethod
    def load(cls, path: Path) -> LockFile:
        try:
            data = read_json(read_regular_file(path, JSON_SIZE.value + 1), str(path))
        except FileNotFoundError:
            return cls(path)
        except OSError as e:
            raise LockError(f"{path}: cannot read the lock file ({e.strerror or e})") from None
        except ValueError as e:
            raise LockError(f"not a valid lock file ({e})") from None
        if not isinstance(data, dict):
            raise LockError(f"{path}: not a valid lock file (not a JSON object)")
        try:
            if data.get("version") != LOCK_VERSION:
                raise LockError(f"{path}: unsupported lock file version {data.get('version')!r}")
            pins = {}
            for url, entry in json_object(data.get("files"), "files").items():
                pin = json_object(entry, f"the pin of {url}")
                size = pin["size"]
                if not isinstance(size, int) or size < 0:
                    raise ValueError(f"the size of {url} is not a byte count")
                pins[url] = Pin(url, size, str(pin["sha256"]))
            resolved = json_object(data.get("resolved", {}), "resolved")
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise LockError(f"{path}: malformed lock file ({e})") from None
        return cls(path, pins, resolved)

    def get(self, url: str) -> Pin | None:
        with self._mutex:
            return self._pins.get(public_url(url))

    def set(self, pin: Pin) -> None:
        """Pin a download: by its URL without credentials (a lock file is shared)."""
        pin = Pin(public_url(pin.url), pin.size, pin.sha256)
        with self._mutex:
            if self._pins.get(pin.url) != pin:
                self._pins[pin.url] = pin
                self._changed = True

    def resolution(self, key: str) -> Any:
        """What a source resolved for inputs hashed to `key` (e.g. the package set a package
        layer installs), as it recorded it; None if nothing is recorded."""
        with self._mutex:
            return self._resolved.get(key)

    def set_resolution(self, key: str, value: Any) -> None:
        """Record a JSON-able resolution, so the next build installs the same thing."""
        with self._mutex:
            if self._resolved.get(key) != value:
                self._resolved[key] = value
                self._changed = True

    @property
    def changed(self) -> bool:
        return self._changed

    def save(self) -> None:
        if not self._changed or self.path is None:
            return
        files = {url: {"size": p.size, "sha256": p.sha256} for url, p in sorted(self._pins.items())}
        data: dict[str, Any] = {"version": LOCK_VERSION, "files": files}
        if self._resolved:
            data["resolved"] = self._resolved
        text = json.dumps(data, indent=1, sort_keys=True)
        write_output(self.path, (text + "\n").encode())
        self._changed = False
