"""CPU seconds per stage of a build, summed over the threads that did the work.

A stage is timed with `time.thread_time()` in the thread doing it (`with stage("decode"):`);
work done in threads that native libraries start (ISA-L's compressors) is not in any stage, so
`summary` gives it as the rest of the process's CPU time.
"""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

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


def summary() -> str:
    """`cpu seconds: download 1.2, decode 20.1, ..., rest 9.8 (process 33.0)`, or "" when no
    stage ran."""
    measured = stages()
    if not measured:
        return ""
    total = process_seconds()
    parts = [f"{name} {seconds:.1f}" for name, seconds in measured.items()]
    parts.append(f"rest {max(0.0, total - sum(measured.values())):.1f}")
    return f"cpu seconds: {', '.join(parts)} (process {total:.1f})"
