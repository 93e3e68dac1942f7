"""CPU seconds per stage, from the threads that did the work."""

from __future__ import annotations

import threading

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
