"""What every command shares: the store location, verbosity, and the progress display.

`--progress` picks how progress shows:

- `tty`: a few live rows at the bottom of the terminal, redrawn ten times a second: each
  download, blob or layer under way (what it is, a bar, bytes, rate, time left), and one row
  per recipe line (or image being pushed or pulled) summing what its downloads (blobs) did so
  far. A finished download or blob folds into its line's sum; a finished layer, each line's
  sum once its image is built (or pushed, pulled, copied), and status messages are printed
  above the live rows and stay. Rows fit the terminal: their columns are sized from its
  width at each redraw (so a resized terminal gets rows of its new width), and a description
  too long is cut with `…`, never the numbers.
- `plain`: the lines that stay, without live rows or escape codes: for logs and CI.
- `quiet`: warnings and errors only (results still go to stdout).
- `auto`: `tty` on a terminal; elsewhere `plain` with -v, else `quiet`.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

import click

from ocibuild.oci.mediatypes import MediaType
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
    TransferEvent,
    human_size,
    plural,
    silent,
)
from ocibuild.secrets import redact
from ocibuild.store import Store

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.live import Live
    from rich.text import Text

PROGRESS_MODES = ("auto", "tty", "plain", "quiet")


@dataclass
class CliState:
    store_path: Path | None = None
    quiet: bool = False
    verbose: int = 0
    progress: str = "auto"  # one of PROGRESS_MODES
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

    def display_mode(self) -> str:
        """`--progress` with `auto` decided: tty, plain or quiet."""
        if self.progress != "auto":
            return self.progress
        if sys.stderr.isatty() and os.environ.get("TERM") != "dumb":
            return "tty"
        return "plain" if self.verbose else "quiet"

    def reporter(self) -> Reporter:
        """The display `--progress` asks for; nothing at all with -q."""
        if self.quiet:
            return silent
        if self._display is None:
            self._display = Display(self.display_mode(), verbose=self.verbose)
        return self._display

    def close(self) -> None:
        if self._display is not None:
            self._display.close()
        if self.verbose and not self.quiet and not self._summarised:  # close() runs twice
            self._summarised = True
            from ocibuild.cputime import summary

            if line := summary():
                click.echo(line, err=True)


ACTIVE = frozenset({"building", "downloading", "uploading", "copying"})
MOVED = frozenset({"built", "downloaded", "uploaded", "copied"})
STILL = frozenset({"cached", "skipped", "mounted", "present"})  # nothing moved: no rate, no time
STYLES = ((ACTIVE, "cyan"), (MOVED, "green"), (STILL, "blue"))  # of the status column


def clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    return (
        f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"
        if minutes >= 60
        else f"{minutes}:{secs:02d}"
    )


def short_clock(seconds: float) -> str:
    """`clock`, in at most five characters below 100 hours: `1:05`, `59:59`, `1h02m`."""
    minutes = int(seconds + 0.5) // 60
    return clock(seconds) if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def fraction(done: int, total: int) -> str:
    """`12.3/45.6 MB`: both in the unit of the total."""
    unit, scale = "B", 1
    for name in ("kB", "MB", "GB", "TB"):
        if total < scale * 1000:
            break
        unit, scale = name, scale * 1000
    if unit == "B":
        return f"{done}/{total} B"
    return f"{done / scale:.1f}/{total / scale:.1f} {unit}"


# -- what a row names ----------------------------------------------------------------------

NOUNS = {  # nouns whose plural is not noun + "s"
    "package index": "package indexes",
    "repository index": "repository indexes",
}


def fetch_noun(url: str) -> str:
    """What kind of file a download is, told by its URL."""
    path = urllib.parse.urlsplit(url).path
    name = path.rsplit("/", 1)[-1]
    if name.endswith((".deb", ".udeb", ".rpm")):
        return "package"
    if name in ("InRelease", "Release"):
        return "release file"
    if name.startswith("Packages") or "/by-hash/" in path:
        return "package index"
    if name == "repomd.xml":
        return "repository index"
    if "primary.xml" in name:
        return "package list"
    if name.endswith("_MANIFEST.txt"):
        return "manifest"
    if ".tar" in name or name.endswith((".tgz", ".tbz2")):
        return "tarball"
    return "file"


def blob_noun(media_type: str) -> str:
    if "config" in media_type or media_type == MediaType.DOCKER_CONFIG:
        return "config"
    if "manifest" in media_type or "index" in media_type:
        return "manifest"
    if "layer" in media_type or "tar" in media_type:
        return "layer"
    return "blob"


def recipe_line(origin: str) -> tuple[str, str]:
    """The group of a download's recipe line `file:line[:column]`: (key, label), the label
    with the file's name only."""
    match = re.fullmatch(r"(.+?):(\d+)(?::\d+)?", origin)
    if match is None:
        return origin, PurePath(origin).name or "downloads"
    return f"{match[1]}:{match[2]}", f"{PurePath(match[1]).name}:{match[2]}"


_SCHEME = re.compile(r"\b(?:https?|file)://")


def shown(label: str) -> str:
    """A label as a row shows it: secrets out, URLs without their scheme."""
    return _SCHEME.sub("", redact(label))


# -- the rows ------------------------------------------------------------------------------


@dataclass
class Work:
    """Something under way: a download, a blob moving, a layer being written. The renderer
    reads its fields from another thread: each is replaced, never changed in place."""

    status: str
    label: str
    done: int = 0
    total: int | None = None
    group: str = ""  # the key of the group it folds into once done
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Step:
    """A finished step, as a line that stays: a layer, or a group's sum."""

    status: str
    label: str
    size: int | None = None
    seconds: float | None = None  # how long the bytes took to move (none: nothing moved)
    moved: int = 0  # bytes moved in `seconds`
    unit: str = ""  # what `size` counts, for the plain line: "tar"
    detail: str = ""  # more for the plain line: "12.3 MB compressed"


@dataclass
class Group:
    """The finished downloads of one recipe line (or the blobs of one image): how many of
    each kind and status, their bytes, and the time from the first start to the last end."""

    label: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # status -> noun -> n
    sizes: dict[str, int] = field(default_factory=dict)  # status -> bytes
    started: float | None = None
    ended: float | None = None
    step: Step | None = None  # the sum so far, rebuilt at each change (read by the renderer)

    def add(self, status: str, noun: str, size: int, started: float | None) -> None:
        now = time.monotonic()
        by_noun = self.counts.setdefault(status, {})
        by_noun[noun] = by_noun.get(noun, 0) + 1
        self.sizes[status] = self.sizes.get(status, 0) + size
        if status in MOVED:
            start = started if started is not None else now
            self.started = start if self.started is None else min(self.started, start)
            self.ended = now
        self.step = self._sum()

    def _sum(self) -> Step:
        """`downloaded deb.yaml:6: 3 release files, 3 package indexes; 2 cached` with the
        bytes downloaded, or `cached deb.yaml:5: 26 packages` with the bytes found."""
        order = sorted(self.counts, key=lambda s: s not in MOVED)  # what moved first
        head = order[0]
        total: dict[str, int] = {}
        for by_noun in self.counts.values():
            for noun, n in by_noun.items():
                total[noun] = total.get(noun, 0) + n
        text = ", ".join(plural(n, noun, NOUNS.get(noun)) for noun, n in total.items())
        others = [f"{sum(self.counts[s].values())} {s}" for s in order[1:]]
        if others:
            text += "; " + ", ".join(others)
        moved = head in MOVED and self.started is not None and self.ended is not None
        return Step(
            head,
            f"{self.label}: {text}",
            self.sizes[head],
            (self.ended or 0.0) - (self.started or 0.0) if moved else None,
            self.sizes[head] if moved else 0,
        )


# -- columns -------------------------------------------------------------------------------

STATUS, NUMBERS, RATE, TIME = 11, 14, 10, 9  # widths: `downloading`, `123.4/567.8 MB`, ...
LABEL, BAR_MIN, BAR_MAX = 40, 8, 20  # a label gets 40 columns before a rate or a bar get any


@dataclass(frozen=True)
class Layout:
    """The columns of a row for a terminal `width` wide: status, label, bar, bytes, rate, time.
    The last column is left empty (some terminals wrap a line that fills it)."""

    width: int
    label: int
    bar: int  # 0: no bar
    rate: bool

    @classmethod
    def of(cls, width: int) -> Layout:
        room = width - 1 - (STATUS + 1 + 1 + NUMBERS + 1 + TIME)
        rate = room - (RATE + 1) >= LABEL
        if rate:
            room -= RATE + 1
        bar = min(BAR_MAX, room - LABEL - 1)
        if bar >= BAR_MIN:
            room -= bar + 1
        return cls(width, max(room, 8), bar if bar >= BAR_MIN else 0, rate)

    def row(
        self,
        status: str,
        label: str,
        numbers: str = "",
        rate: str = "",
        when: str = "",
        done: float | None = None,  # the bar's fraction; None: no bar on this row
        numbers_width: int = NUMBERS,  # less on a row of one size: a longer label
    ) -> Text:
        """The columns right-aligned at the same places on every row; what one row leaves
        empty (its bar, bytes of one size) goes to its label."""
        from rich.text import Text

        style = next((s for kinds, s in STYLES if status in kinds), "")
        text = Text(no_wrap=True, overflow="ellipsis", end="\n")
        text.append(status.rjust(STATUS), style=style)
        text.append(" ")
        bar = self.bar if done is not None else 0  # a row without a bar: a longer label
        name = Text(shown(label))
        width = self.label + (self.bar + 1 if self.bar and not bar else 0)
        width += NUMBERS - max(len(numbers), numbers_width)
        name.truncate(width, overflow="ellipsis", pad=True)
        text.append_text(name)
        if bar and done is not None:
            filled = round(bar * min(1.0, max(0.0, done)))
            text.append(" ")
            text.append("━" * filled, style="bar.complete")
            text.append("─" * (bar - filled), style="bar.back")
        text.append(" ")
        text.append(numbers.rjust(max(len(numbers), numbers_width)), style="progress.download")
        if self.rate:
            text.append(" ")
            text.append(rate.rjust(RATE), style="progress.data.speed")
        text.append(" ")
        text.append(when.rjust(TIME), style="progress.remaining")
        text.rstrip()
        text.truncate(self.width - 1)
        return text

    def step(self, step: Step) -> Text:
        seconds = step.seconds
        rate = ""
        if seconds is not None and step.moved and seconds > 0:
            rate = f"{human_size(step.moved / seconds)}/s"
        return self.row(
            step.status,
            step.label,
            "" if step.size is None else human_size(step.size),
            rate,
            "" if seconds is None else short_clock(seconds),
            numbers_width=len("999.9 kB"),
        )

    def work(self, work: Work, now: float) -> Text:
        done, total = work.done, work.total
        elapsed = now - work.started
        rate = done / elapsed if done and elapsed > 0 else 0.0
        if total and rate:
            when = f"eta {short_clock(max(0.0, total - done) / rate)}"
        else:
            when = short_clock(elapsed)
        return self.row(
            work.status,
            work.label,
            fraction(done, total) if total else human_size(done),
            f"{human_size(rate)}/s" if rate else "",
            when,
            done / total if total else None,
        )


def plain_line(step: Step) -> str:
    """A finished step for a log: `built deb: 7 packages for app (41.0 kB, 0.12s)`."""
    parts = [] if step.size is None else [f"{human_size(step.size)} {step.unit}".rstrip()]
    if step.detail:
        parts.append(step.detail)
    if step.seconds is not None:
        if step.moved and step.seconds > 0:
            parts.append(f"{human_size(step.moved / step.seconds)}/s")
        parts.append(f"{step.seconds:.2f}s")
    return f"{step.status} {redact(step.label)}" + (f" ({', '.join(parts)})" if parts else "")


class LiveRows:
    """The live area: the groups with something done, then the work under way. Rendered by
    rich's refresh thread from a snapshot the display replaces whole (never under its lock,
    which is held while printing, and printing waits for a render to end)."""

    def __init__(self) -> None:
        self.groups: tuple[Group, ...] = ()
        self.work: tuple[Work, ...] = ()

    def rows(self, width: int, height: int) -> list[Text]:
        from rich.text import Text

        layout = Layout.of(width)
        now = time.monotonic()
        rows = [layout.step(g.step) for g in self.groups if g.step]
        rows += [layout.work(w, now) for w in self.work]
        room = max(2, height - 2)
        if len(rows) > room:
            more = len(rows) - room + 1
            rows = [*rows[: room - 1], Text(f"{'':{STATUS}} … and {more} more", end="\n")]
        return rows

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.rows(options.max_width, options.height or console.height)


class _ToDisplay(logging.Handler):
    """Log records printed above the live rows (written to stderr directly, they would break
    their redrawing and leave stale lines)."""

    def __init__(self, display: Display) -> None:
        super().__init__()
        self.display = display
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        with self.display._mutex:
            self.display._line(self.format(record))


class Display:
    """Renders progress events as `mode` (tty, plain or quiet) asks."""

    def __init__(self, mode: str, verbose: int = 0, console: Console | None = None) -> None:
        self.mode = mode
        self.verbose = verbose
        self._mutex = threading.RLock()
        self._work: dict[str, Work] = {}  # under way, by key
        self._groups: dict[str, Group] = {}  # finished downloads or blobs, by group key
        self._transfer = ""  # the image being pushed, pulled or copied: its blobs' group
        self._view = LiveRows()
        self._console: Console | None = None
        self._live: Live | None = None
        self._log_handlers: list[logging.Handler] = []
        if mode == "tty":
            from rich.console import Console
            from rich.live import Live

            self._console = console or Console(stderr=True, force_terminal=True)
            self._live = Live(
                self._view, console=self._console, refresh_per_second=10, transient=True
            )
            self._live.start()
            root = logging.getLogger()
            self._log_handlers = list(root.handlers)
            for handler in self._log_handlers:
                root.removeHandler(handler)
            root.addHandler(_ToDisplay(self))

    @property
    def live(self) -> bool:
        return self._live is not None

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
                case FetchEvent():
                    self._on_fetch(event)
                case BlobEvent():
                    self._on_blob(event)
                case ImageEvent():
                    self._on_image(event)
                case TransferEvent():
                    self._on_transfer(event)
                case RetryEvent() | RateLimitEvent():
                    self._line(f"warning: {event.message}")  # worth knowing, even in a log
                case _:
                    self._status(event.message)

    # -- output ----------------------------------------------------------------------------
    def _status(self, text: str) -> None:
        """A line about work under way or done: never with `quiet`, where only results
        (stdout), warnings and errors belong."""
        if self.mode != "quiet":
            self._line(text)

    def _line(self, text: str) -> None:
        text = redact(text)
        if self._console is not None:
            self._console.print(text, highlight=False, markup=False)
        else:
            click.echo(text, err=True)

    def _step(self, step: Step) -> None:
        if self._console is not None:
            layout = Layout.of(self._console.width)
            self._console.print(layout.step(step), crop=True)
        elif self.mode == "plain":
            click.echo(plain_line(step), err=True)

    def _changed(self) -> None:
        """Work started or ended, a group changed: the live rows' new snapshot."""
        self._view.groups = tuple(g for g in self._groups.values() if g.step)
        self._view.work = tuple(
            sorted(self._work.values(), key=lambda w: w.status == "building")
        )  # the layers under the downloads

    def _flush(self, only_idle: bool = True, key: str | None = None) -> None:
        """Print the sums of the groups done (with nothing under way), and forget them."""
        busy = {w.group for w in self._work.values()} if only_idle else set()
        for group_key, group in list(self._groups.items()):
            if (key is None or group_key == key) and group_key not in busy:
                del self._groups[group_key]
                if group.step is not None:
                    self._step(group.step)
        self._changed()

    # -- events ----------------------------------------------------------------------------
    def _on_layer(self, event: LayerEvent) -> None:
        key = "layer:" + event.key
        if event.status == "building":
            work = self._work.get(key)
            if work is None:
                self._work[key] = Work("building", event.description, event.done, event.total)
                self._changed()
            else:
                work.done, work.total = event.done, event.total
            return
        self._work.pop(key, None)
        self._changed()
        built = event.status == "built" and event.seconds is not None
        compressed = f"{human_size(event.size)} compressed" if event.size is not None else ""
        self._step(
            Step(
                event.status,
                event.description,
                event.done,
                event.seconds if built else None,
                event.done if built else 0,
                "tar",
                compressed,
            )
        )

    def _on_fetch(self, event: FetchEvent) -> None:
        key = "fetch:" + event.url
        group_key, where = recipe_line(event.origin)
        group_key = "fetch:" + group_key
        label = event.what or event.url.rsplit("/", 1)[-1]
        if event.status in ACTIVE:
            self._progress(key, event.status, label, event.done, event.size, group_key)
            return
        work = self._work.pop(key, None)
        group = self._groups.setdefault(group_key, Group(where))
        size = event.size if event.size is not None else event.done
        group.add(event.status, fetch_noun(event.url), size, work.started if work else None)
        if self.mode == "plain" and self.verbose > 1:
            self._line(f"{event.status} {label} ({human_size(size)})")
        self._changed()

    def _on_blob(self, event: BlobEvent) -> None:
        key = "blob:" + event.digest
        group_key = "blob:" + self._transfer
        short = event.digest.removeprefix("sha256:")[:12]
        noun = blob_noun(event.media_type)
        of = f" of {self._transfer}" if self._transfer else ""
        if event.status in ACTIVE:
            label = f"{noun} {short}{of}"
            self._progress(key, event.status, label, event.done, event.size or None, group_key)
            return
        work = self._work.pop(key, None)
        group = self._groups.setdefault(group_key, Group(self._transfer or "blobs"))
        group.add(event.status, noun, event.size, work.started if work else None)
        if self.mode == "plain" and self.verbose > 1:
            self._line(f"{event.status} {noun} {event.digest} ({human_size(event.size)})")
        self._changed()

    def _progress(
        self, key: str, status: str, label: str, done: int, total: int | None, group: str
    ) -> None:
        work = self._work.get(key)
        if work is None:
            self._work[key] = Work(status, label, done, total, group)
            self._changed()
        else:
            work.status, work.done, work.total = status, done, total

    def _on_image(self, event: ImageEvent) -> None:
        if event.status != "built":
            if self.verbose:
                self._line(f"{event.status} {event.ref}")
            return
        self._flush()
        cached = f", {event.cached} cached" if event.layers else ""
        ups = (
            f", {plural(event.not_frozen, 'UPS table line')} not in the Env (see warnings)"
            if event.not_frozen
            else ""
        )
        digest = event.digest
        if self.live:  # the full digest is in the result
            digest = digest[: len("sha256:") + 12]
        self._status(
            f"built {event.ref} {digest} "
            f"({plural(event.layers, 'layer')}{cached}{ups}, {event.seconds:.2f}s)"
        )

    def _on_transfer(self, event: TransferEvent) -> None:
        if event.status in ("pushing", "pulling", "copying"):
            self._transfer = event.ref
        else:
            self._flush(only_idle=False, key="blob:" + event.ref)
        text = event.message
        if self.live and event.digest:  # the full digest is in the result
            text = text.replace(f"@{event.digest}", f" {event.digest[: len('sha256:') + 12]}")
        self._status(text)

    def close(self) -> None:
        with self._mutex:
            self._flush(only_idle=False)
            if self._console is not None:  # stopped by an error or Ctrl-C: where it was
                layout = Layout.of(self._console.width)
                now = time.monotonic()
                for work in self._work.values():
                    self._console.print(layout.work(work, now), crop=True)
            self._work.clear()
            self._changed()
        if self._live is not None:
            self._live.stop()
            self._live = None
            self._console = None
            root = logging.getLogger()
            for handler in list(root.handlers):
                if isinstance(handler, _ToDisplay):
                    root.removeHandler(handler)
            for handler in self._log_handlers:
                root.addHandler(handler)
