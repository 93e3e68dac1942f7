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
    RateLimitEvent,
    Reporter,
    RetryEvent,
    human_size,
    plural,
    silent,
)
from ocibuild.secrets import redact
from ocibuild.store import Store


@dataclass
class CliState:
    store_path: Path | None = None
    quiet: bool = False
    verbose: int = 0
    _display: Display | None = field(default=None, repr=False)
    _summarised: bool = field(default=False, repr=False)

    def apply_logging(self) -> None:
        level = (
            logging.DEBUG if self.verbose > 1 else logging.INFO if self.verbose else logging.WARNING
        )
        logging.getLogger().setLevel(logging.ERROR if self.quiet else level)
        if self.verbose and not self.quiet:
            from ocibuild import cputime

            cputime.start()  # for the native and compress threads of the line close() prints

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
        if self.verbose and not self.quiet and not self._summarised:  # close() runs twice
            self._summarised = True
            from ocibuild.cputime import summary

            if line := summary():
                click.echo(line, err=True)


def _columns() -> list[Any]:
    """The bar's columns: status, what, bar, bytes, then a rate and an ETA computed from the
    task's own start (rich's speed needs several samples, so fast layers would show `?`)."""
    from rich.progress import BarColumn, DownloadColumn, ProgressColumn, Task, TextColumn
    from rich.text import Text

    def seconds(task: Task) -> float:
        return (task.finished_time if task.finished else task.elapsed) or 0.0

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            elapsed = seconds(task)
            if not task.completed or elapsed <= 0 or task.fields["status"] in STILL:
                return Text("")
            return Text(f"{human_size(task.completed / elapsed)}/s", style="progress.data.speed")

    class EtaColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            if task.finished:
                return Text("" if task.fields["status"] in STILL else clock(seconds(task)))
            elapsed = seconds(task)
            if not task.total or not task.completed or elapsed <= 0:
                return Text("eta -:--", style="progress.remaining")
            left = (task.total - task.completed) * elapsed / task.completed
            return Text(f"eta {clock(max(0.0, left))}", style="progress.remaining")

    return [
        TextColumn("{task.fields[status]:>9}"),
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        DownloadColumn(),
        RateColumn(),
        EtaColumn(),
    ]


STILL = ("cached", "skipped", "mounted")  # nothing moved: no rate, no time


def clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    return (
        f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"
        if minutes >= 60
        else f"{minutes}:{secs:02d}"
    )


class _ToDisplay(logging.Handler):
    """Log records printed above the live bars (written to stderr directly, they would break
    the bars' redrawing and leave stale lines)."""

    def __init__(self, display: Display) -> None:
        super().__init__()
        self.display = display
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        with self.display._mutex:
            self.display._line(self.format(record))


class Display:
    """Renders progress events: rich progress bars per layer / blob / download on a terminal,
    plain lines otherwise."""

    def __init__(self, live: bool, verbose: int, console: Any = None) -> None:
        self.live = live
        self.verbose = verbose
        self._tasks: dict[str, Any] = {}
        self._mutex = threading.RLock()
        self._progress: Any = None
        self._log_handlers: list[logging.Handler] = []
        if live:
            from rich.console import Console
            from rich.progress import Progress

            self._progress = Progress(
                *_columns(), console=console or Console(stderr=True), transient=False
            )
            self._progress.start()
            root = logging.getLogger()
            self._log_handlers = list(root.handlers)
            for handler in self._log_handlers:
                root.removeHandler(handler)
            root.addHandler(_ToDisplay(self))

    def __call__(self, event: Event) -> None:
        with self._mutex:
            match event:
                case Message():
                    if event.level == "info":
                        self._status(event.message)
                    elif event.level != "debug" or self.verbose:
                        self._line(f"{event.level}: {event.message}")
                case LayerEvent():
                    self._on_layer(event)
                case BlobEvent():
                    self._on_blob(event)
                case FetchEvent():
                    self._on_fetch(event)
                case ImageEvent():
                    self._on_image(event)
                case RetryEvent() | RateLimitEvent():
                    self._line(f"warning: {event.message}")  # worth knowing, even in a log
                case _:
                    self._status(event.message)

    def _status(self, text: str) -> None:
        """A line about work under way or done: on a terminal, or with -v; never in a pipe,
        where only results (stdout) and errors belong."""
        if self.live or self.verbose:
            self._line(text)

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
            ups = (
                f", {plural(event.not_frozen, 'UPS table line')} not in the Env (see warnings)"
                if event.not_frozen
                else ""
            )
            self._status(
                f"built {event.ref} {event.digest} "
                f"({plural(event.layers, 'layer')}{cached}{ups}, {event.seconds:.2f}s)"
            )
        elif self.verbose:
            self._line(f"{event.status} {event.ref}")

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            root = logging.getLogger()
            for handler in list(root.handlers):
                if isinstance(handler, _ToDisplay):
                    root.removeHandler(handler)
            for handler in self._log_handlers:
                root.addHandler(handler)
