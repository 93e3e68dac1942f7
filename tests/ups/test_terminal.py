"""What a UPS build shows on a real terminal 80 and 120 columns wide, from the loopback scisoft
mirror (one product's tarball slow to arrive): rows that fit, the product named while its
tarball downloads, the bundle's downloads folded into one line for its recipe line, and, from
the download cache, summed as cached."""

from __future__ import annotations

import http.server
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.loopback import LoopbackServer
from tests.terminal import emulate, frames, rows, run_on_terminal

REPO = Path(__file__).resolve().parents[2]
REF = "docker.io/t/art:1"
SLOW = ".tar.bz2"  # the art product's tarball: sent in two parts, a second apart
RECIPE = """\
source_date_epoch: 1451606400
images:
  - name: t/art:1
    layers:
      - ups: {bundle: art-v1_18_03, os: slf6, qualifiers: e9, build: prof}
    setup: {product: art, version: v1_18_03, qualifiers: "e9:prof"}
"""


@pytest.fixture(scope="module")
def slow_mirror(mirror_files: Path) -> Iterator[str]:
    root = mirror_files

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def copyfile(self, source: object, outputfile: object) -> None:
            data = source.read()  # type: ignore[attr-defined]
            if "/art-1.18.03-" in self.path and self.path.endswith(SLOW):
                outputfile.write(data[:100])  # type: ignore[attr-defined]
                outputfile.flush()  # type: ignore[attr-defined]
                time.sleep(1.0)
                data = data[100:]
            outputfile.write(data)  # type: ignore[attr-defined]

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = LoopbackServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/scisoft"
    server.shutdown()
    server.server_close()


def _build(tmp_path: Path, width: int, mirror: str, store: str) -> tuple[list[str], bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OCIBUILD_CACHE": str(tmp_path / "cache")}
    env.pop("OCIBUILD_PROGRESS", None)
    command = [sys.executable, "-m", "ocibuild", "--store", store, "recipe", "--mirror", mirror]
    code, data = run_on_terminal([*command, "r.yaml"], tmp_path, env, width=width)
    final = emulate(data, width)
    text = "\n".join(final.lines)
    assert code == 0, text
    # nothing went past the last column but the result (stdout: a reference is never cut)
    assert [w for w in final.wrapped if not w.startswith(REF)] == [], text
    return final.lines, data


@pytest.mark.parametrize("width", [80, 120])
def test_a_ups_build_fits_the_terminal_and_sums_its_downloads(
    slow_mirror: str, tmp_path: Path, width: int
) -> None:
    (tmp_path / "r.yaml").write_text(RECIPE)
    lines, data = _build(tmp_path, width, slow_mirror, "s")
    text = "\n".join(lines)
    shown = rows(lines)
    sums = [r for r in shown if "r.yaml:" in r]
    assert len(sums) == 1, text  # one line for the bundle's recipe line
    assert sums[0].lstrip().startswith("downloaded r.yaml:5: 1 manifest, 8 tarballs "), text
    assert [r for r in shown if r.lstrip().startswith("built ups: 8 products of art")], text
    assert not [r for r in shown if r[12:].startswith("art v1_18_03")], text  # none per tarball
    assert "downloading" not in text, text
    # along the way, the slow tarball's row named its product
    seen = frames(data, width)
    live = [
        row
        for frame in seen
        for row in rows(frame.lines)
        if row.startswith("downloading art v1_18_03 ")
    ]
    assert live, "\n\n".join("\n".join(f.lines) for f in seen)
    assert all(not f.wrapped for f in seen)

    # a new store, the same download cache
    lines, _ = _build(tmp_path, width, slow_mirror, "s2")
    text = "\n".join(lines)
    sums = [r for r in rows(lines) if "r.yaml:" in r]
    assert len(sums) == 1 and sums[0].lstrip().startswith("cached r.yaml:5: 1 manifest, 8 "), text
    assert sums[0].endswith(" kB"), sums[0]  # the size found, no rate, no time
