"""Bytecode for the image's Python: unchecked-hash pycs (PEP 552), compiled by a host
interpreter of the image's X.Y (bytecode and `marshal` depend on X.Y only, not on the machine:
an x86_64 host compiles for an aarch64 image).

The compiling interpreter is the one running ocibuild when its X.Y matches, else a
`pythonX.Y` on PATH. It runs as worker processes (`-S -s`, a fixed hash seed, nothing but this
module's worker code), one job at a time each: `marshal` writes an object as a reference
target when something else in the process holds it too, so a pyc compiled inside a busy
process depends on what that process did before. A fresh, idle worker compiles the same source
to the same bytes, in any order.

A pyc is `magic | flags=1 (hash-based, unchecked) | source hash | marshal(code)`: the import
system loads it without reading the source's mtime or hashing the source again, so it stays
valid in a read-only image whatever the file times, and nothing is compiled at import.
"""

from __future__ import annotations

import os
import queue
import shutil
import struct
import subprocess
import sys
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import IO

from ocibuild.errors import SourceError

WORKER = r"""
import importlib.util, marshal, struct, sys
read, write = sys.stdin.buffer.read, sys.stdout.buffer.write
header = importlib.util.MAGIC_NUMBER + struct.pack("<I", 1)
write(struct.pack("<I", len(header)) + header); sys.stdout.flush()
while True:
    size = read(8)
    if len(size) < 8:
        break
    name_size, source_size = struct.unpack("<II", size)
    name, source = read(name_size).decode("utf-8", "surrogateescape"), read(source_size)
    try:
        code = compile(source, name, "exec", dont_inherit=True)
        pyc = header + importlib.util.source_hash(source) + marshal.dumps(code)
    except (SyntaxError, ValueError, UnicodeDecodeError, MemoryError, RecursionError):
        pyc = b""
    del code
    write(struct.pack("<I", len(pyc)) + pyc)
    sys.stdout.flush()
"""


@dataclass(frozen=True)
class Interpreter:
    """The host's Python that compiles for the image: its path and X.Y."""

    path: str
    version: tuple[int, int]


def find_interpreter(version: tuple[int, int]) -> Interpreter:
    """A host Python of the image's X.Y: the running one, else `pythonX.Y` on PATH."""
    if sys.version_info[:2] == version:
        return Interpreter(sys.executable, version)
    name = f"python{version[0]}.{version[1]}"
    path = shutil.which(name)
    if path is None:
        raise SourceError(
            f"compiling bytecode for the image's Python {version[0]}.{version[1]} needs a "
            f"{name} on this host (bytecode is specific to X.Y) and none is on PATH: "
            f"install one, or set `compile: false`"
        )
    return Interpreter(path, version)


class Compiler:
    """Worker processes compiling sources to pycs; `submit` returns a future of the pyc
    bytes (b"" when the source does not compile, which pip too installs without a pyc)."""

    def __init__(self, interpreter: Interpreter, workers: int = 0) -> None:
        self.interpreter = interpreter
        self._jobs: queue.Queue[tuple[str, bytes, Future[bytes]] | None] = queue.Queue()
        self._threads = []
        self._processes: list[subprocess.Popen[bytes]] = []
        self.magic = b""
        for _ in range(workers or max(1, os.cpu_count() or 1)):
            process = self._start()
            self._processes.append(process)
            thread = threading.Thread(target=self._serve, args=(process,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _start(self) -> subprocess.Popen[bytes]:
        env = {"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        try:
            process = subprocess.Popen(
                [self.interpreter.path, "-S", "-s", "-B", "-c", WORKER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
        except OSError as e:
            raise SourceError(
                f"cannot run {self.interpreter.path} to compile bytecode ({e})"
            ) from None
        assert process.stdout is not None
        header = _frame(process.stdout)
        if header is None:
            raise SourceError(f"{self.interpreter.path} did not start as a bytecode compiler")
        if self.magic and header != self.magic:
            raise SourceError(f"{self.interpreter.path}: workers disagree on the magic number")
        self.magic = header
        return process

    def _serve(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None
        while (job := self._jobs.get()) is not None:
            name, source, future = job
            if not future.set_running_or_notify_cancel():
                continue
            encoded = name.encode("utf-8", "surrogateescape")
            try:
                process.stdin.write(
                    struct.pack("<II", len(encoded), len(source)) + encoded + source
                )
                process.stdin.flush()
                pyc = _frame(process.stdout)
            except OSError as e:
                future.set_exception(SourceError(f"bytecode compiler {self.interpreter.path}: {e}"))
                continue
            if pyc is None:
                future.set_exception(
                    SourceError(f"bytecode compiler {self.interpreter.path} ended compiling {name}")
                )
                continue
            future.set_result(pyc)

    def submit(self, name: str, source: bytes) -> Future[bytes]:
        """Compile `source` as the module at image path `name` (its co_filename)."""
        future: Future[bytes] = Future()
        self._jobs.put((name, source, future))
        return future

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()
        for process in self._processes:
            assert process.stdin is not None
            process.stdin.close()
            process.wait()

    def __enter__(self) -> Compiler:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _frame(stream: IO[bytes]) -> bytes | None:
    size = stream.read(4)
    if len(size) < 4:
        return None
    (n,) = struct.unpack("<I", size)
    data = stream.read(n) if n else b""
    return data if len(data) == n else None


def cache_tag(version: tuple[int, int]) -> str:
    """`cpython-311`: the name part of the image's pycs (`sys.implementation.cache_tag`)."""
    return f"cpython-{version[0]}{version[1]}"
