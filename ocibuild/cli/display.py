"""What every command shares: the store location, verbosity, and the progress display."""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from ocibuild.progress import (
    BlobEvent,
    Event,
    FetchEvent,
    ImageEvent,
    LayerEvent,
    Message,
    Reporter,
    human_size,
    silent,
)
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
    """Renders progress events: rich progress bars per layer / blob / download on a terminal,
    plain lines otherwise."""

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

    def __call__(self, event: Event) -> None:
        with self._mutex:
            match event:
                case Message():
                    if event.level != "debug" or self.verbose:
                        text = event.message
                        self._line(text if event.level == "info" else f"{event.level}: {text}")
                case LayerEvent():
                    self._on_layer(event)
                case BlobEvent():
                    self._on_blob(event)
                case FetchEvent():
                    self._on_fetch(event)
                case ImageEvent():
                    self._on_image(event)
                case _:
                    self._line(event.message)

    def _line(self, text: str) -> None:
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

    def _on_layer(self, event: LayerEvent) -> None:
        self._bar("layer:" + event.key, event.description, event.status, event.done, event.total)
        if not self.live and self.verbose and event.status in ("cached", "built"):
            size = f", {human_size(event.size)} compressed" if event.size is not None else ""
            self._line(
                f"{event.status:>7} {event.description} ({human_size(event.done)} tar{size})"
            )

    def _on_blob(self, event: BlobEvent) -> None:
        self._bar(
            "blob:" + event.digest, event.digest[:19], event.status, event.done, event.size or None
        )
        if (
            not self.live
            and self.verbose
            and event.status in ("skipped", "mounted", "uploaded", "downloaded")
        ):
            self._line(f"{event.status:>10} {event.digest} ({human_size(event.size)})")

    def _on_fetch(self, event: FetchEvent) -> None:
        what = event.what or event.url.rsplit("/", 1)[-1]
        self._bar("fetch:" + event.url, what, event.status, event.done, event.size)
        if not self.live and self.verbose and event.status in ("downloaded", "cached"):
            self._line(f"{event.status:>10} {event.what or event.url}")

    def _on_image(self, event: ImageEvent) -> None:
        if event.status == "built":
            cached = f", {event.cached} cached" if event.layers else ""
            self._line(
                f"built {event.ref} {event.digest} "
                f"({event.layers} layers{cached}, {event.seconds:.2f}s)"
            )
        elif self.verbose:
            self._line(f"{event.status} {event.ref}")

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
