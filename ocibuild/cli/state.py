"""What every command shares: the store location, verbosity, and the progress display."""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from ocibuild.report import Reporter, human_size, silent
from ocibuild.secrets import redact
from ocibuild.store import Store


@dataclass
class CliState:
    store_path: Path | None = None
    quiet: bool = False
    verbose: int = 0
    _display: Display | None = field(default=None, repr=False)

    def apply_logging(self) -> None:
        level = (
            logging.DEBUG if self.verbose > 1 else logging.INFO if self.verbose else logging.WARNING
        )
        logging.getLogger().setLevel(logging.ERROR if self.quiet else level)

    def store(self, create: bool = True) -> Store:
        return Store.open(self.store_path, create=create)

    def reporter(self) -> Reporter:
        """Progress bars on a terminal; plain lines with -v; nothing with -q."""
        if self.quiet:
            return silent
        if self._display is None:
            self._display = Display(live=sys.stderr.isatty(), verbose=self.verbose)
        return self._display

    def close(self) -> None:
        if self._display is not None:
            self._display.close()


class Display:
    """Renders report events: rich progress bars per layer / blob / download on a terminal."""

    def __init__(self, live: bool, verbose: int) -> None:
        self.live = live
        self.verbose = verbose
        self._tasks: dict[str, Any] = {}
        self._mutex = threading.Lock()
        self._progress: Any = None
        if live:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.fields[status]:>9}"),
                TextColumn("{task.description}"),
                BarColumn(bar_width=24),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.start()

    def __call__(self, event: str, /, **fields: Any) -> None:
        with self._mutex:
            handler = getattr(self, f"_on_{event}", None)
            if handler is not None:
                handler(**fields)
            elif "message" in fields:
                self._line(str(fields["message"]))

    def _line(self, text: str) -> None:
        text = redact(text)
        if self._progress is not None:
            self._progress.console.print(text, highlight=False, markup=False)
        else:
            click.echo(text, err=True)

    def _bar(self, key: str, description: str, status: str, done: int, total: int | None) -> None:
        if self._progress is None:
            return
        task = self._tasks.get(key)
        if task is None:
            task = self._progress.add_task(description, total=total, status=status)
            self._tasks[key] = task
        self._progress.update(task, completed=done, total=total, status=status)

    def _on_message(self, message: str, level: str = "info", **_: Any) -> None:
        if level != "debug" or self.verbose:
            self._line(message if level == "info" else f"{level}: {message}")

    def _on_layer(
        self,
        key: str,
        description: str,
        status: str,
        done: int = 0,
        total: int | None = None,
        **extra: Any,
    ) -> None:
        self._bar("layer:" + key, description, status, done, total)
        if not self.live and self.verbose and status in ("cached", "built"):
            size = f", {human_size(extra['size'])} compressed" if "size" in extra else ""
            self._line(f"{status:>7} {description} ({human_size(done)} tar{size})")

    def _on_blob(
        self, digest: str, size: int = 0, done: int = 0, status: str = "", **_: Any
    ) -> None:
        self._bar("blob:" + digest, digest[:19], status, done, size or None)
        if (
            not self.live
            and self.verbose
            and status in ("skipped", "mounted", "uploaded", "downloaded")
        ):
            self._line(f"{status:>10} {digest} ({human_size(size)})")

    def _on_fetch(
        self,
        url: str,
        what: str = "",
        size: int | None = None,
        done: int = 0,
        status: str = "",
        **_: Any,
    ) -> None:
        self._bar("fetch:" + url, what or url.rsplit("/", 1)[-1], status, done, size)
        if not self.live and self.verbose and status in ("downloaded", "cached"):
            self._line(f"{status:>10} {what or url}")

    def _on_image(self, ref: str, status: str, **extra: Any) -> None:
        if status == "built":
            cached = f", {extra.get('cached', 0)} cached" if extra.get("layers") else ""
            self._line(
                f"built {ref} {extra.get('digest', '')} "
                f"({extra.get('layers', 0)} layers{cached}, {extra.get('seconds', 0):.2f}s)"
            )
        elif self.verbose:
            self._line(f"{status} {ref}")

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def elapsed(start: float) -> str:
    return f"{time.monotonic() - start:.2f}s"
