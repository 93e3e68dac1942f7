"""Big buffers kept for reuse: with glibc's thresholds raised, a 3 MiB buffer comes from the
heap (and is reused once freed) instead of a mapping of its own, returned to the kernel."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ocibuild import heap

WHERE = """
import ctypes, sys
from ocibuild.heap import reuse_big_buffers
if sys.argv[1] == "reuse":
    assert reuse_big_buffers()
buffer = bytearray(3 << 20)
address = ctypes.addressof((ctypes.c_char * 1).from_buffer(buffer))
for line in open("/proc/self/maps"):
    if line.rstrip().endswith("[heap]"):
        start, end = (int(x, 16) for x in line.split()[0].split("-"))
        print("heap" if start <= address < end else "mapping")
        break
else:
    print("mapping")
"""


def where_a_big_buffer_lives(mode: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in heap.USER_SETTINGS}
    proc = subprocess.run(
        [sys.executable, "-c", WHERE, mode], capture_output=True, text=True, check=True, env=env
    )
    return proc.stdout.strip()


def test_big_buffers_come_from_the_heap_once_the_thresholds_are_raised() -> None:
    assert where_a_big_buffer_lives("default") == "mapping"
    assert where_a_big_buffer_lives("reuse") == "heap"


def test_a_users_own_malloc_settings_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert not heap.reuse_big_buffers()
