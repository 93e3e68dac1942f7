"""What a deb build shows on a real terminal 80 and 120 columns wide, from the test apt
repository with three suites (one of them slow to send its release file): rows that fit the
width, descriptions cut rather than numbers, the repository and suite named while its release
file downloads, finished downloads folded into one line per recipe line, cached packages
summed; and `--progress plain` / `quiet` for logs."""

from __future__ import annotations

import http.server
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.loopback import LoopbackServer
from tests.ospkg.conftest import AptRepo
from tests.terminal import emulate, frames, rows, run_on_terminal

REPO = Path(__file__).resolve().parents[2]
REF = "docker.io/t/deb:1"
SLOW = "/dists/test-security/InRelease"  # sent in two halves, a second apart
RECIPE = """\
source_date_epoch: 1451606400
images:
  - name: t/deb:1
    layers:
      - deb:
          repos:
            - {{url: "{url}", suite: test, components: [main], signed_by: "{key}"}}
            - {{url: "{url}", suite: test-updates, components: [main], signed_by: "{key}"}}
            - {{url: "{url}", suite: test-security, components: [main], signed_by: "{key}"}}
          packages: [app, clash-x, same-x, same-y, libbar]
      - user: {{name: hep, uid: 1000}}
"""


@pytest.fixture(scope="module")
def suites(apt_repo: AptRepo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test repository with suites test, test-updates and test-security, over HTTP."""
    root = tmp_path_factory.mktemp("suites") / "repo"
    shutil.copytree(apt_repo.root, root)
    for suite in ("test-updates", "test-security"):
        shutil.copytree(root / "dists" / "test", root / "dists" / suite)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def copyfile(self, source: object, outputfile: object) -> None:
            data = source.read()  # type: ignore[attr-defined]
            if self.path.endswith(SLOW):
                outputfile.write(data[:10])  # type: ignore[attr-defined]
                outputfile.flush()  # type: ignore[attr-defined]
                time.sleep(1.0)
            outputfile.write(data[10:] if self.path.endswith(SLOW) else data)  # type: ignore[attr-defined]

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = LoopbackServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _run(tmp_path: Path, width: int, *args: str) -> tuple[int, bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OCIBUILD_CACHE": str(tmp_path / "cache")}
    env.pop("OCIBUILD_PROGRESS", None)
    command = [sys.executable, "-m", "ocibuild", *args]
    return run_on_terminal(command, tmp_path, env, width=width)


@pytest.mark.parametrize("width", [80, 120])
def test_a_deb_build_fits_the_terminal_and_folds_its_downloads(
    suites: str, apt_repo: AptRepo, tmp_path: Path, width: int
) -> None:
    (tmp_path / "r.yaml").write_text(RECIPE.format(url=suites, key=apt_repo.key.public))
    code, data = _run(tmp_path, width, "--store", "s", "recipe", "r.yaml")
    final = emulate(data, width)
    text = "\n".join(final.lines)
    assert code == 0, text
    # nothing went past the last column but the result (stdout: a reference is never cut)
    assert [w for w in final.wrapped if not w.startswith(REF)] == [], text
    shown = rows(final.lines)
    # the downloads, folded into one line per recipe line: the repositories' files, the packages
    indexes = [r for r in shown if r.lstrip().startswith("downloaded r.yaml:6: ")]
    assert len(indexes) == 1 and "3 release files" in indexes[0], text
    packages = [r for r in shown if r.lstrip().startswith("downloaded r.yaml:5: 7 packages ")]
    assert len(packages) == 1, text
    # no row per file, none left under way
    assert not [r for r in shown if "release file" in r and "r.yaml" not in r], text
    assert "app_1.0_amd64" not in text and "building" not in text and "downloading" not in text
    layer = next(r for r in shown if r.lstrip().startswith("built deb: 7 packages for "))
    assert re.search(r" kB +(\S+ [kMG]?B/s +)?\d+:\d\d$", layer), layer  # size, rate, time
    if width == 80:  # a description too long is cut, the numbers stay whole
        assert "…" in layer, layer
    else:
        assert "same-y, ..." in layer and "/s " in layer, layer
    assert final.lines[-2].startswith(f"{REF}@sha256:") or width > 80, text

    # along the way: the slow release file had its row, naming the repository and suite
    seen = frames(data, width)
    live = [
        row
        for frame in seen
        for row in rows(frame.lines)
        if row.startswith("downloading ") and "test-security release file" in row
    ]
    assert live, "\n\n".join("\n".join(f.lines) for f in seen)
    assert f"127.0.0.1:{suites.rsplit(':', 1)[1]} test-security" in live[0], live[0]
    assert all(not f.wrapped for f in seen)


@pytest.mark.parametrize("width", [80, 120])
def test_cached_packages_are_summed_in_one_line(
    suites: str, apt_repo: AptRepo, tmp_path: Path, width: int
) -> None:
    (tmp_path / "r.yaml").write_text(RECIPE.format(url=suites, key=apt_repo.key.public))
    code, _ = _run(tmp_path, width, "--store", "s", "-q", "recipe", "r.yaml")
    assert code == 0
    # a new store, the same download cache: every package is found there
    code, data = _run(tmp_path, width, "--store", "s2", "recipe", "--update-lock", "r.yaml")
    final = emulate(data, width)
    text = "\n".join(final.lines)
    assert code == 0 and [w for w in final.wrapped if not w.startswith(REF)] == [], text
    shown = rows(final.lines)
    cached = [r for r in shown if r.lstrip().startswith("cached r.yaml:5: ")]
    assert len(cached) == 1 and cached[0].lstrip().startswith("cached r.yaml:5: 7 packages "), text
    assert cached[0].endswith(" kB"), cached[0]  # their size, no rate, no time
    assert [r[:11].strip() for r in shown].count("cached") == 1, text  # no row per package
    assert "app_1.0_amd64" not in text, text


def test_plain_progress_is_lines_without_escape_codes(
    suites: str, apt_repo: AptRepo, tmp_path: Path
) -> None:
    (tmp_path / "r.yaml").write_text(RECIPE.format(url=suites, key=apt_repo.key.public))
    code, data = _run(tmp_path, 80, "--store", "s", "--progress", "plain", "recipe", "r.yaml")
    assert code == 0, data.decode()
    assert b"\x1b" not in data, data  # on a terminal, still plain
    text = data.decode()
    assert "\ndownloaded r.yaml:5: 7 packages (" in text, text
    assert "\nbuilt deb: 7 packages for app, clash-x, same-x, same-y, ... (" in text, text
    assert " tar, " in text and " compressed, " in text, text
    assert "downloading" not in text and "building" not in text, text

    # again, quiet: the result only (a warning would show)
    code, data = _run(tmp_path, 80, "--store", "s", "--progress", "quiet", "recipe", "r.yaml")
    assert code == 0 and b"\x1b" not in data
    result = data.decode().strip()
    assert result.startswith(f"{REF}@sha256:") and len(result.split()) == 1, result
