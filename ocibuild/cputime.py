"""CPU seconds per stage of a build, and of the threads native libraries start.

A stage is timed with `time.thread_time()` in the Python thread doing it (`with
stage("decode"):`). Most of a build's CPU is spent in threads no stage times: indexed_bzip2's
decoders and zstandard's workers are native threads (no Python thread has their id), and ISA-L's
gzip compressors are Python threads that isal starts itself (named after their target,
`Thread-3 (_compress)`, `Thread-4 (_write)`). Once `start()` has run (the CLI calls it for
`-v`), a sampler thread reads every thread's user + system time from /proc/self/task/TID/stat
every 50 ms (less often if that would cost over 0.5% of a core), sorts each thread once into "native threads" or "compress threads" (isal's) or
neither (the other Python threads: the stages time them), and `summary()` adds the two classes
to the stages. Callers also `sample()` just before a decoder or compressor closes. Still, a
thread that exits between two samples loses what it spent since the last one, and one that
lives less than an interval may not be seen at all: that time stays in `rest`, the process's
CPU time minus everything attributed (never negative). Without /proc/self/task (not Linux)
there is no sampler, and everything outside the stages is `rest`.
"""

from __future__ import annotations

import logging
import os
import resource
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

INTERVAL = 0.05  # seconds between samples, or more to keep the sampler under 0.5% of a core
NATIVE = "native threads"
COMPRESS = "compress threads"
_COMPRESS_TARGETS = ("(_compress)", "(_write)", "(_compress_and_write)")  # isal.igzip_threaded's
_PENDING, _OTHER = "?", ""  # seen while a Python thread was starting; a Python thread, not ours

_lock = threading.Lock()
_seconds: dict[str, float] = {}


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Count the CPU time this thread spends in the block towards stage `name`."""
    started = time.thread_time()
    try:
        yield
    finally:
        spent = time.thread_time() - started
        with _lock:
            _seconds[name] = _seconds.get(name, 0.0) + spent


def stages() -> dict[str, float]:
    """CPU seconds of each stage so far, in the order the stages first ended."""
    with _lock:
        return dict(_seconds)


def process_seconds() -> float:
    """User and system CPU seconds of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_seconds() -> float:
    """User and system CPU seconds of the processes this one started and has waited for
    (layers written apart, gpgv, the tools a command runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class _Sampler:
    """The last CPU ticks of each thread of a class, and those of its threads that ended."""

    def __init__(self, tasks: str) -> None:
        self.tasks = tasks
        self.kind: dict[int, str] = {}  # thread id -> NATIVE, COMPRESS, _PENDING or _OTHER
        self.ticks: dict[int, int] = {}  # thread id -> user + system ticks at the last sample
        self.ended = {NATIVE: 0, COMPRESS: 0}  # ticks of the threads that exited
        self.own = 0.0  # the sampler thread's CPU seconds
        self.started = 0.0  # time.monotonic() when start() started sampling
        self.running = False
        self.lock = threading.Lock()

    def start(self) -> bool:
        with self.lock:
            if not self.running and os.access(self.tasks, os.R_OK | os.X_OK):
                self.running, self.started = True, time.monotonic()
                threading.Thread(target=self._run, name="cputime sampler", daemon=True).start()
            return self.running

    def _run(self) -> None:
        while True:
            self.sample()
            now = time.thread_time()
            spent, self.own = now - self.own, now  # since the last sample, waking up included
            time.sleep(max(INTERVAL, spent * 200))

    def sample(self) -> None:
        with self.lock:
            try:
                live = {int(tid) for tid in os.listdir(self.tasks)}
            except OSError:
                return
            names: dict[int | None, str] | None = None  # read only when a thread is new
            for tid in live:
                kind = self.kind.get(tid)
                if kind is None or kind == _PENDING:
                    if names is None:
                        names = {t.native_id: t.name for t in threading.enumerate()}
                    self.kind[tid] = kind = _classify(tid, names)
                if kind != _OTHER and (ticks := self._ticks(tid)) is not None:
                    self.ticks[tid] = ticks
            for tid in self.kind.keys() - live:
                kind, ticks = self.kind.pop(tid), self.ticks.pop(tid, 0)
                if kind in self.ended:
                    self.ended[kind] += ticks

    def _ticks(self, tid: int) -> int | None:
        try:
            fd = os.open(f"{self.tasks}/{tid}/stat", os.O_RDONLY)
        except OSError:  # exited since listed
            return None
        try:
            fields = os.read(fd, 1024).rpartition(b")")[2].split()
        except OSError:  # exited since opened (ESRCH)
            return None
        finally:
            os.close(fd)
        return int(fields[11]) + int(fields[12])  # utime and stime, fields 14 and 15

    def seconds(self) -> dict[str, float]:
        """CPU seconds of each class so far, after a last sample."""
        self.sample()
        with self.lock:
            ticks = dict(self.ended)
            for tid, kind in self.kind.items():
                if kind in ticks:
                    ticks[kind] += self.ticks.get(tid, 0)
        per_second = os.sysconf("SC_CLK_TCK")
        return {kind: n / per_second for kind, n in ticks.items()}


def _classify(tid: int, names: dict[int | None, str]) -> str:
    """The class of thread `tid`, given the Python threads' names by native id."""
    if tid in names:
        return COMPRESS if names[tid].endswith(_COMPRESS_TARGETS) else _OTHER
    if tid == os.getpid():
        return _OTHER
    # a Python thread just started may be this one, before it has set its native_id
    return _PENDING if None in names else NATIVE


_sampler = _Sampler("/proc/self/task")


def start() -> bool:
    """Sample the CPU time of the threads no stage times (once; later calls do nothing);
    False where /proc/self/task cannot be read."""
    return _sampler.start()


def sample() -> None:
    """Take a sample now, if the sampler runs: just before a library's threads exit, so that
    their CPU time since the last sample is not lost."""
    if _sampler.running:
        _sampler.sample()


def thread_seconds() -> dict[str, float]:
    """CPU seconds of the native threads and of the compress threads so far (after a last
    sample), or {} when the sampler is not running."""
    return _sampler.seconds() if _sampler.running else {}


def summary() -> str:
    """`cpu seconds: download 1.2, decode 0.9, ..., native threads 17.2, compress threads 3.0,
    rest 0.9 (process 23.3, child processes 4.1)`, or "" when no stage ran; the stages add up
    to the process's seconds, its child processes (layers written apart) are counted beside."""
    measured = stages()
    if not measured:
        return ""
    threads = thread_seconds()
    total = process_seconds()
    parts = [f"{name} {seconds:.1f}" for name, seconds in {**measured, **threads}.items()]
    rest = total - sum(measured.values()) - sum(threads.values())
    parts.append(f"rest {max(0.0, rest):.1f}")
    if _sampler.running:
        wall = time.monotonic() - _sampler.started
        log.debug(
            "cputime sampler: %.3f CPU seconds in %.1f s (%.2f%% of a core)",
            *(_sampler.own, wall, 100 * _sampler.own / max(wall, 1e-9)),
        )
    children = child_seconds()
    spawned = f", child processes {children:.1f}" if children >= 0.05 else ""
    return f"cpu seconds: {', '.join(parts)} (process {total:.1f}{spawned})"
