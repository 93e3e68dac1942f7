"""What a build leaves on a terminal: one finished bar per layer, with its rate and time, the
summary and the results, and no stale line of the live display."""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

from rich.console import Console

from ocibuild.cli.display import Display
from ocibuild.progress import LayerEvent
from tests.terminal import run_on_terminal, screen

REPO = Path(__file__).resolve().parents[2]
RECIPE = """\
images:
  - name: example.org/hep/screen:1
    layers:
      - files: [{src: data, dest: /data}]
      - files: [{content: "hello\\n", dest: /etc/motd}]
      - files: [{src: more, dest: /more}]
"""


def test_a_build_on_a_terminal_leaves_no_stale_lines(tmp_path: Path) -> None:
    for name, size in (("data", 24 << 20), ("more", 8 << 20)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "blob").write_bytes(os.urandom(size))
    (tmp_path / "r.yaml").write_text(RECIPE)
    code, data = run_on_terminal(
        [sys.executable, "-m", "ocibuild", "--store", "s", "recipe", "r.yaml"],
        tmp_path,
        {**os.environ, "PYTHONPATH": str(REPO)},
    )
    lines = screen(data)
    assert code == 0, "\n".join(lines)
    bars = [line for line in lines if "files:" in line]
    assert len(bars) == 3, "\n".join(lines)  # one line per layer, nothing left from redraws
    for bar in bars:
        assert bar.lstrip().startswith("built files: 1 file, "), bar
        assert "/s " in bar and bar.rsplit(" ", 1)[1].startswith("0:0"), bar  # rate, time
    # the summary is printed above the bars; the result comes last, once the bars are done
    summary = [line for line in lines if line.startswith("built example.org/hep/screen:1 ")]
    assert len(summary) == 1 and "(3 layers, 0" in summary[0]
    assert lines[-1].startswith("example.org/hep/screen:1@sha256:")
    assert sum(line.startswith("example.org/hep/screen:1@") for line in lines) == 1
    assert not any("building" in line or "eta" in line for line in lines)


def test_bars_have_a_rate_and_an_eta_from_the_first_update() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    display = Display(live=True, verbose=0, console=console)
    progress = display._progress
    display(LayerEvent("k", "files: big", "building", 0, 10**8))
    time.sleep(0.05)
    display(LayerEvent("k", "files: big", "building", 10**7, 10**8))
    display(LayerEvent("c", "files: old", "cached", 10, 10))
    display.close()
    plain = Console(file=io.StringIO(), width=120, color_system=None)
    with plain.capture() as captured:
        plain.print(progress.make_tasks_table(progress.tasks))
    building, cached = captured.get().splitlines()
    speed, unit, eta, left = building.split("MB ")[-1].split()
    assert unit == "MB/s" and float(speed) > 0, building  # after one update
    assert eta == "eta" and left.startswith("0:0"), building
    assert cached.rstrip().endswith("10/10 bytes"), cached  # nothing moved: no rate, no time
