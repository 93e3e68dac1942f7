"""CPU seconds per stage, from the threads that did the work."""

from __future__ import annotations

import bz2
import io
import random
import threading
from pathlib import Path

import indexed_bzip2
import pytest
from isal import igzip_threaded

from ocibuild import cputime


def _busy(rounds: int) -> None:
    total = 0
    for i in range(rounds):
        total += i * i


def test_stages_sum_the_cpu_time_of_every_thread_in_them() -> None:
    before = cputime.stages().get("test-spin", 0.0)

    def work() -> None:
        with cputime.stage("test-spin"):
            _busy(300_000)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with cputime.stage("test-idle"):
        threading.Event().wait(0.05)  # waiting is not CPU time
    spent = cputime.stages()["test-spin"] - before
    assert spent > 0.005
    assert cputime.stages()["test-idle"] < 0.04
    summary = cputime.summary()
    assert "test-spin " in summary and ", rest " in summary and "(process " in summary
    assert cputime.process_seconds() >= spent


@pytest.fixture(scope="module")
def text() -> bytes:
    """About 6 MB of words: compressible, but not trivially."""
    rng = random.Random(1)
    words = [bytes(rng.choices(b"abcdefghijklmnop", k=rng.randint(2, 9))) for _ in range(5000)]
    return b" ".join(rng.choices(words, k=1_000_000))


def _parts(summary: str) -> tuple[dict[str, float], float]:
    """The figures of a summary line, by name, and the process's."""
    body, process = summary.removeprefix("cpu seconds: ").rsplit(" (process ", 1)
    parts = {name: float(value) for name, value in (p.rsplit(" ", 1) for p in body.split(", "))}
    return parts, float(process.rstrip(")").split(", child processes ")[0])


def test_native_threads_are_counted_apart_and_everything_adds_up(text: bytes) -> None:
    """indexed_bzip2's decoders are C++ threads: no stage times them, the sampler does."""
    assert cputime.start()
    packed = bz2.compress(text, 9)
    before = cputime.thread_seconds()[cputime.NATIVE]
    with (
        cputime.stage("test-decode"),
        indexed_bzip2.open(io.BytesIO(packed), parallelization=2) as f,
    ):
        assert f.read() == text
        cputime.thread_seconds()  # the decoders, still alive (sampled twice: a Python thread
        during = cputime.thread_seconds()[cputime.NATIVE]  # starting puts new ones off once)
    assert during - before > 0
    assert cputime.thread_seconds()[cputime.NATIVE] >= during  # kept once they have exited
    parts, process = _parts(cputime.summary())
    assert list(parts)[-3:] == [cputime.NATIVE, cputime.COMPRESS, "rest"]
    assert parts[cputime.NATIVE] > 0
    assert abs(sum(parts.values()) - process) <= 0.05 * (len(parts) + 1)  # each rounded to 0.1


def test_isal_compressors_are_compress_threads_and_python_threads_are_not_native(
    text: bytes,
) -> None:
    assert cputime.start()
    before = cputime.thread_seconds()
    with igzip_threaded.open(io.BytesIO(), "wb", compresslevel=3, threads=2) as f:
        for _ in range(5):
            f.write(text)
        f.flush()  # every block compressed and written, the threads still alive
        compressed = cputime.thread_seconds()[cputime.COMPRESS] - before[cputime.COMPRESS]
    assert compressed > 0

    done = threading.Event()

    def spin() -> None:  # a Python thread in no stage: rest, not native
        while not done.is_set():
            _busy(10_000)

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        start = cputime.thread_seconds()[cputime.NATIVE]
        threading.Event().wait(0.05)
        cputime.thread_seconds()
        assert cputime.thread_seconds()[cputime.NATIVE] == start
    finally:
        done.set()
        spinner.join()


def test_without_proc_the_summary_is_the_stages_and_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cputime, "_sampler", cputime._Sampler(str(tmp_path / "no-such-dir")))
    assert not cputime.start()
    assert cputime.thread_seconds() == {}
    with cputime.stage("test-idle"):
        pass
    parts, process = _parts(cputime.summary())
    assert cputime.NATIVE not in parts and cputime.COMPRESS not in parts
    assert list(parts)[-1] == "rest" and process > 0


def test_a_thread_that_exits_while_its_stat_is_read_is_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Linux answers ESRCH to a read of /proc/self/task/TID/stat once TID has exited, even on
    a file opened before: the sampler must not die of it."""

    def gone(fd: int, size: int) -> bytes:
        raise ProcessLookupError(3, "No such process")

    sampler = cputime._Sampler("/proc/self/task")
    monkeypatch.setattr(cputime.os, "read", gone)
    assert sampler._ticks(threading.get_native_id()) is None
