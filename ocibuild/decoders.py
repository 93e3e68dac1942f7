"""Threads running native decoders (indexed_bzip2, ISA-L, zstd) that must end before the
interpreter does.

A thread still inside a native decoder when Python finalizes can abort the whole process:
indexed_bzip2 (rapidgzip's code) calls `std::terminate` when its thread finds the interpreter
gone ("Detected Python finalization from running rapidgzip thread"), after ocibuild printed
its error and chose its exit status. So every such thread is registered here with a way to stop
it; whoever started it stops and joins it when done with it, and whatever is left is stopped
and joined by `stop_all()`, which the CLI calls before it returns and `atexit` calls again
(atexit handlers run before finalization).
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable

JOIN_SECONDS = 30.0  # a decoder reads at most one chunk before it sees it was stopped

_lock = threading.Lock()
_running: dict[threading.Thread, Callable[[], None]] = {}


def register(thread: threading.Thread, stop: Callable[[], None]) -> None:
    """Track `thread` (started or about to be) until it ends; `stop()` asks it to end soon."""
    with _lock:
        _running[thread] = stop


def stop(thread: threading.Thread, timeout: float = JOIN_SECONDS) -> None:
    """Ask `thread` to end and wait for it."""
    with _lock:
        stopper = _running.get(thread)
    if stopper is not None:
        stopper()
    if thread.ident is not None and thread is not threading.current_thread():
        thread.join(timeout)
    with _lock:
        if not thread.is_alive():
            _running.pop(thread, None)


def stop_all(timeout: float = JOIN_SECONDS) -> None:
    """Stop and join every registered thread still running."""
    with _lock:
        threads = list(_running)
    for thread in threads:
        stop(thread, timeout)


atexit.register(stop_all)
