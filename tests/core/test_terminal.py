"""What a build leaves on a terminal: one finished row per layer, with its rate and time, the
summary and the results, and no stale line of the live display; the rows' columns at any
width; downloads folded into one line per recipe line; and the `--progress` option."""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from ocibuild.cli import main
from ocibuild.cli.display import CliState, Display, Layout, LiveRows, Step, Work
from ocibuild.progress import (
    BlobEvent,
    FetchEvent,
    ImageEvent,
    LayerEvent,
    TransferEvent,
)
from tests.terminal import emulate, rows, run_on_terminal, screen

REPO = Path(__file__).resolve().parents[2]
RECIPE = """\
images:
  - name: example.org/hep/screen:1
    layers:
      - files: [{src: data, dest: /data}]
      - files: [{content: "hello\\n", dest: /etc/motd}]
      - files: [{src: more, dest: /more}]
"""


@pytest.mark.parametrize("width", [80, 120])
def test_a_build_on_a_terminal_leaves_no_stale_lines(tmp_path: Path, width: int) -> None:
    for name, size in (("data", 24 << 20), ("more", 8 << 20)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "blob").write_bytes(os.urandom(size))
    (tmp_path / "r.yaml").write_text(RECIPE)
    code, data = run_on_terminal(
        [sys.executable, "-m", "ocibuild", "--store", "s", "recipe", "r.yaml"],
        tmp_path,
        {**os.environ, "PYTHONPATH": str(REPO)},
        width=width,
    )
    lines = screen(data, width)
    assert code == 0, "\n".join(lines)
    bars = [line for line in lines if "files:" in line]
    assert len(bars) == 3, "\n".join(lines)  # one line per layer, nothing left from redraws
    assert rows(lines) == bars
    for bar in bars:
        assert bar.lstrip().startswith("built files: 1 file, "), bar
        assert bar.rsplit(" ", 1)[1].startswith("0:0"), bar  # the time it took
        assert ("/s " in bar) == (width >= 100), bar  # and its rate, where there is room
    # the summary is printed above the bars; the result comes last, once the bars are done
    summary = [line for line in lines if line.startswith("built example.org/hep/screen:1 ")]
    assert len(summary) == 1 and "(3 layers, 0" in summary[0]
    result = lines[-1] if width > 100 else lines[-2] + lines[-1]  # the terminal wraps it
    assert result.startswith("example.org/hep/screen:1@sha256:") and len(result) == 96
    assert sum(line.startswith("example.org/hep/screen:1@") for line in lines) == 1
    assert not any("building" in line or "eta" in line for line in lines)


def _console(width: int) -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=width, height=40)


def _text(console: Console, width: int) -> list[str]:
    """The screen `console` left, as a terminal shows it (its line feeds also return)."""
    data = console.file.getvalue().replace("\n", "\r\n")  # type: ignore[attr-defined]
    return emulate(data.encode(), width).lines


def test_rows_have_a_rate_and_an_eta_from_the_first_update() -> None:
    console = _console(120)
    display = Display("tty", console=console)
    display(LayerEvent("k", "files: big", "building", 0, 10**8))
    time.sleep(0.05)
    display(LayerEvent("k", "files: big", "building", 10**7, 10**8))
    display(LayerEvent("c", "files: old", "cached", 10, 10))
    (building,) = [row.plain for row in display._view.rows(120, 40)]
    display.close()
    speed, unit, eta, left = building.split(" MB ")[-1].split()
    assert unit == "MB/s" and float(speed) > 0, building  # after one update
    assert eta == "eta" and left.startswith("0:0"), building
    assert "━" in building and "10.0/100.0 MB" in building, building
    (cached,) = [line for line in _text(console, 120) if "files: old" in line]
    assert cached.lstrip().startswith("cached files: old") and cached.endswith(" 10 B"), cached


@pytest.mark.parametrize("width", [80, 81, 90, 99, 100, 110, 120, 160, 200])
def test_rows_fit_the_width_and_cut_only_the_description(width: int) -> None:
    layout = Layout.of(width)
    label = "deb: 26 packages for base-files, base-passwd, bash, coreutils, dash, dpkg, grep, sed"
    now = time.monotonic()
    work = Work("downloading", label, 123_400_000, 567_800_000, started=now - 10)
    step = Step("built", label, 48_200_000, 61.0, 48_200_000)
    for row in (layout.work(work, now).plain, layout.step(step).plain):
        assert len(row) <= width - 1, (width, row)
        assert ("…" in row) == (width < 150), row  # what is cut: the description
    live = layout.work(work, now).plain
    assert live.startswith("downloading deb: 26 packages for "), live
    assert "123.4/567.8 MB" in live and live.endswith("eta 0:36"), live
    assert (" 12.3 MB/s " in live) == (width >= 90), live  # a rate where there is room
    assert ("━" in live) == (layout.bar > 0), live  # and a bar
    assert (Layout.of(80).bar, Layout.of(120).bar) == (0, 20)
    done = layout.step(step).plain
    assert done.endswith(" 48.2 MB      1:01") or done.endswith(" 790.2 kB/s      1:01"), done
    assert "48.2 MB" in done, done


def test_live_rows_follow_the_terminal_width_and_height() -> None:
    view = LiveRows()
    now = time.monotonic()
    view.work = tuple(
        Work("downloading", f"deb package-{i}_1.0_amd64", (i + 1) * 10**5, 10**6, now - 1)
        for i in range(10)
    )
    wide = [row.plain for row in view.rows(120, 40)]
    narrow = [row.plain for row in view.rows(80, 40)]  # the same rows after a resize
    assert len(wide) == len(narrow) == 10
    assert all(len(row) <= 119 and "━" in row for row in wide), wide
    assert all(len(row) <= 79 and "━" not in row for row in narrow), narrow
    short = [row.plain for row in view.rows(80, 6)]  # a low terminal: the rows that fit
    assert len(short) == 4 and short[-1].strip() == "… and 7 more", short


def _fetch(name: str, status: str, origin: str, size: int = 1000) -> FetchEvent:
    return FetchEvent(f"http://mirror/debian/{name}", name, status, size, size, origin)


def _events() -> list[object]:
    """26 packages from the download cache for recipe line 5, 3 release files downloaded for
    line 6, a layer built, the image built."""
    events: list[object] = [
        _fetch(f"pool/main/p{i}_1.0_amd64.deb", "cached", "/r/r.yaml:5:9") for i in range(26)
    ]
    for suite in ("bookworm", "bookworm-updates", "bookworm-security"):
        name = f"dists/{suite}/InRelease"
        events += [
            FetchEvent(
                f"http://mirror/debian/{name}", suite, "downloading", 4000, 0, "/r/r.yaml:6:11"
            ),
            _fetch(name, "downloaded", "/r/r.yaml:6:11", 4000),
        ]
    events += [
        LayerEvent("k", "deb: 26 packages", "built", 10**6, 10**6, 10**5, "sha256:1", 0.5),
        ImageEvent("t/deb:1", "built", "sha256:" + "a" * 64, 1, 0, 0.6),
    ]
    return events


def test_downloads_fold_into_one_line_per_recipe_line(capsys: pytest.CaptureFixture[str]) -> None:
    display = Display("plain")
    for event in _events():
        display(event)  # type: ignore[arg-type]
    display.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "built deb: 26 packages (1.0 MB tar, 100.0 kB compressed, 2.0 MB/s, 0.50s)"
    assert lines[1] == "cached r.yaml:5: 26 packages (26.0 kB)"
    assert lines[2].startswith("downloaded r.yaml:6: 3 release files (12.0 kB, ")
    assert lines[3] == f"built t/deb:1 sha256:{'a' * 64} (1 layer, 0 cached, 0.60s)"
    assert len(lines) == 4, lines

    console = _console(80)  # the same on a terminal
    display = Display("tty", console=console)
    for event in _events():
        display(event)  # type: ignore[arg-type]
    display.close()
    lines = _text(console, 80)
    assert [row.split()[:3] for row in rows(lines)] == [
        ["built", "deb:", "26"],
        ["cached", "r.yaml:5:", "26"],
        ["downloaded", "r.yaml:6:", "3"],
    ], lines
    assert lines[-1] == "built t/deb:1 sha256:aaaaaaaaaaaa (1 layer, 0 cached, 0.60s)", lines


def test_pushed_blobs_fold_into_one_line_per_image(capsys: pytest.CaptureFixture[str]) -> None:
    display = Display("plain")
    layer, config = (
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.config.v1+json",
    )
    display(TransferEvent("site/t/a:1", "pushing", "t/a:1"))
    for digest, media_type, status in (
        ("sha256:1", layer, "uploaded"),
        ("sha256:2", layer, "skipped"),
        ("sha256:3", config, "uploaded"),
    ):
        display(BlobEvent(digest, 2000, 0, "uploading", media_type))
        display(BlobEvent(digest, 2000, 2000, status, media_type))
    display(TransferEvent("site/t/a:1", "pushed", "t/a:1", "sha256:9", "2 blobs uploaded"))
    display.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "pushing t/a:1 to site/t/a:1"
    assert lines[1].startswith("uploaded site/t/a:1: 2 layers, 1 config; 1 skipped (4.0 kB, ")
    assert lines[2] == "pushed site/t/a:1@sha256:9: 2 blobs uploaded"


def test_progress_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OCIBUILD_PROGRESS", raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert CliState().display_mode() == "quiet"  # a pipe: results and warnings only
    assert CliState(verbose=1).display_mode() == "plain"
    assert CliState(progress="tty").display_mode() == "tty"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert CliState().display_mode() == "tty"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)

    store = str(tmp_path / "store")
    empty = "no images in the store"
    for args in (
        ["--progress", "plain", "--store", store, "images"],  # before the command
        ["--store", store, "images", "--progress", "plain"],  # or after it
    ):
        assert main(args) == 0
        assert empty in capsys.readouterr().err
    assert main(["--store", store, "images", "--progress", "quiet"]) == 0
    assert empty not in capsys.readouterr().err
    monkeypatch.setenv("OCIBUILD_PROGRESS", "plain")
    assert main(["--store", store, "images"]) == 0
    assert empty in capsys.readouterr().err
    assert main(["--store", store, "images", "--progress", "loud"]) == 2
    assert "'loud' is not one of 'auto', 'tty', 'plain', 'quiet'" in capsys.readouterr().err
