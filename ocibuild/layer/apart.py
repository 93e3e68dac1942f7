"""A layer written in a process of its own, for layers heavy enough to pay for one.

Tar headers, relocation and the writer's bookkeeping are Python: in threads they share one
GIL, so a build's heavy layers take turns on one core however many the machine has. Written
apart, each heavy layer's Python work runs on a core of its own. The layer's bytes are the
same whichever way it is written.

The process is a new interpreter running this module with the build's own `sys.path` (so it
imports the very modules the build does), never a fork of the build, whose other threads may
hold locks, and never a re-run of the build's main script. The job is pickled to its stdin:
it makes its entries there, and they are written into the staged blob's file. Over a pipe
come progress, then the layer and the job's outcome, or the job's error (the error the thread
would have raised, or a LayerError naming it). A child that dies, or a build that is
cancelled, ends the job: the child is killed, and the staged file is the caller's to remove.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ocibuild.compression import Compression
from ocibuild.errors import Cancelled, LayerError
from ocibuild.layer.blob import Layer
from ocibuild.layer.entry import Entry

if TYPE_CHECKING:  # multiprocessing is loaded only by a build that writes a layer apart
    from multiprocessing.connection import Connection

POLL = 0.1  # seconds between looks at the child (its messages, its life, the cancel event)
_CHILD = (  # python -c _CHILD SYS_PATH FD
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "import ocibuild.layer.apart as apart; apart.main()"
)


class ApartJob(Protocol):
    """A layer's entries, made in another process: the job is pickled there, `entries` runs
    there, and `outcome` (picklable) comes back once the entries are written."""

    def entries(self) -> Iterable[Entry]: ...

    def outcome(self) -> object: ...


def write_apart(
    job: ApartJob,
    path: Path,
    compression: Compression,
    mtime: int,
    progress: Callable[[int], None],
    cancel: threading.Event,
) -> tuple[Layer, object]:
    """Write the layer of `job` into the (empty) file at `path`, in a child process; the layer
    and the job's outcome. Raises what the job raised, Cancelled once `cancel` is set."""
    request = pickle.dumps((job, str(path), compression, mtime))
    reading, writing = os.pipe()
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, json.dumps(sys.path), str(writing)],
            stdin=subprocess.PIPE,
            pass_fds=(writing,),
        )
    except BaseException:
        os.close(reading)
        raise
    finally:
        os.close(writing)
    from multiprocessing.connection import Connection

    receiving = Connection(reading, writable=False)
    try:
        assert child.stdin is not None
        with child.stdin:
            child.stdin.write(request)
        return _received(receiving, child, progress, cancel)
    except BrokenPipeError:  # the child ended before it read its job
        raise _ended(child) from None
    finally:
        receiving.close()
        if child.poll() is None:
            child.kill()
        child.wait()


def _received(
    receiving: Connection,
    child: subprocess.Popen[bytes],
    progress: Callable[[int], None],
    cancel: threading.Event,
) -> tuple[Layer, object]:
    while True:
        if cancel.is_set():
            raise Cancelled("layer not finished")
        if not receiving.poll(POLL):
            continue
        try:
            kind, value = receiving.recv()
        except EOFError:
            raise _ended(child) from None
        if kind == "progress":
            progress(value)
        elif kind == "error":
            raise value
        else:
            return value


def _ended(child: subprocess.Popen[bytes]) -> LayerError:
    return LayerError(f"the layer's writer process ended with status {child.wait()}")


def _child(sending: Connection) -> None:
    from ocibuild.layer.writer import write_layer

    try:
        job, path, compression, mtime = pickle.load(sys.stdin.buffer)
        with open(path, "r+b") as sink:
            layer = write_layer(
                job.entries(),
                sink,
                compression,
                mtime,
                lambda done: sending.send(("progress", done)),
            )
        sending.send(("done", (layer, job.outcome())))
    except BaseException as e:  # every error goes back to the build, if it still listens
        with contextlib.suppress(OSError):
            sending.send(("error", _portable(e)))


def _portable(error: BaseException) -> BaseException:
    """`error` if it survives pickling (the build raises it as the thread would have), else a
    LayerError with its message."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # any failure to round-trip: send the message alone
        return LayerError(str(error) or type(error).__name__)
    return error


def main() -> None:
    """The writer's process, its job on stdin, its messages to the pipe FD (argv[2])."""
    from multiprocessing.connection import Connection

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the build decides, and ends this process
    with Connection(int(sys.argv[2]), readable=False) as out:
        _child(out)
