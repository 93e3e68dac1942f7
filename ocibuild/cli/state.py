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

from ocibuild.report import Reporter, human_size, plural, silent
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
    """Renders report events: rich progress bars per layer / blob / download on a terminal."""

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

    def __call__(self, event: str, /, **fields: Any) -> None:
        with self._mutex:
            handler = getattr(self, f"_on_{event}", None)
            if handler is not None:
                handler(**fields)
            elif "message" in fields:
                self._status(str(fields["message"]))

    def _status(self, text: str) -> None:
        """A line about work under way or done: on a terminal, or with -v; never in a pipe,
        where only results (stdout) and errors belong."""
        if self.live or self.verbose:
            self._line(text)

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

    def _on_message(self, message: str, level: str = "info", **_: Any) -> None:
        if level == "info":
            self._status(message)
        elif level != "debug" or self.verbose:
            self._line(f"{level}: {message}")

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
            unfrozen = extra.get("not_frozen", 0)
            ups = (
                f", {plural(unfrozen, 'UPS table line')} not in the Env (see warnings)"
                if unfrozen
                else ""
            )
            self._status(
                f"built {ref} {extra.get('digest', '')} "
                f"({plural(extra.get('layers', 0), 'layer')}{cached}{ups}, "
                f"{extra.get('seconds', 0):.2f}s)"
            )
        elif self.verbose:
            self._line(f"{status} {ref}")

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


def elapsed(start: float) -> str:
    return f"{time.monotonic() - start:.2f}s"
