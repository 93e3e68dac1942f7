"""Ctrl-C mid-build: SIGINT to a real `ocibuild recipe` writing big layers. Layers not started
never start, the one under way stops at its next chunk, staged blobs go, the store is as it was
(every blob re-hashed, the index and the layer cache unchanged), and the exit status is 130."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.core.conftest import ocibuild

LAYERS, FILES, MIB = 4, 4, 16  # 4 layers of 64 MiB of incompressible data
REPO = Path(__file__).resolve().parents[2]


def snapshot(store: Path) -> dict[str, str]:
    """Every file of the store but its lock files, re-hashed (blobs, index, state database)."""
    return {
        str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(store.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


def big_tree(root: Path) -> None:
    for layer in range(LAYERS):
        for n in range(FILES):
            path = root / f"d{layer}" / f"f{n}"
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as f:
                for _ in range(MIB):
                    f.write(os.urandom(1 << 20))


def test_ctrl_c_stops_a_build_at_once_and_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    store = tmp_path / "store"
    (tmp_path / "small.yaml").write_text(
        "images:\n  - name: example.org/hep/small:1\n"
        "    layers:\n      - files: [{content: x, dest: /x}]\n"
    )
    assert ocibuild("--store", str(store), "-q", "recipe", str(tmp_path / "small.yaml")) == 0
    before = snapshot(store)
    big_tree(tmp_path)
    layers = "".join(f"      - files: [{{src: d{i}, dest: /d{i}}}]\n" for i in range(LAYERS))
    (tmp_path / "big.yaml").write_text(
        f"images:\n  - name: example.org/hep/big:1\n    layers:\n{layers}"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "ocibuild", "--store", str(store), "recipe", "-j", "1", "big.yaml"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    blobs = store / "blobs" / "sha256"
    deadline = time.monotonic() + 120
    while not any(p.stat().st_size > 8 << 20 for p in blobs.glob(".tmp-*")):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the build never got under way"
        time.sleep(0.05)
    # the first layer is being written; the other three wait
    interrupted = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    took = time.monotonic() - interrupted
    assert process.returncode == 130, err
    assert took < 2.0, f"{took:.2f} s from SIGINT to exit"
    assert (out, err) == ("", "\ninterrupted\n")
    assert not list(blobs.glob(".tmp-*"))
    assert snapshot(store) == before
