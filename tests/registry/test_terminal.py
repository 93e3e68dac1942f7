"""What a push leaves on a terminal 80 and 120 columns wide: its blobs summed in one line for the
image, the pushed references after it, and no stale line of the live display (stdout and stderr
share the terminal)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.registry.conftest import Registry
from tests.terminal import emulate, rows, run_on_terminal

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("width", [80, 120])
def test_a_push_on_a_terminal_leaves_no_stale_lines(
    tmp_path: Path, registry: Registry, width: int
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "blob").write_bytes(os.urandom(16 << 20))
    ref = f"{registry.host}/t/screen/push{width}:1"
    (tmp_path / "r.yaml").write_text(
        f"images:\n  - name: {ref}\n    layers:\n"
        "      - files: [{src: data, dest: /data}]\n"
        '      - files: [{content: "hi\\n", dest: /etc/motd}]\n'
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("OCIBUILD_PROGRESS", None)
    ocibuild = [sys.executable, "-m", "ocibuild", "--store", "s"]
    code, _ = run_on_terminal([*ocibuild, "-q", "recipe", "r.yaml"], tmp_path, env, width=width)
    assert code == 0
    for status in ("uploaded", "skipped"):  # the second time, the registry has every blob
        command = [*ocibuild, "push", "--insecure", ref]
        code, data = run_on_terminal(command, tmp_path, env, width=width)
        final = emulate(data, width)
        lines = final.lines
        assert code == 0, "\n".join(lines)
        assert all(w.startswith(("pushed ", ref)) for w in final.wrapped), final.wrapped
        (blobs,) = rows(lines)  # the two layers and the config: one line
        what = blobs.lstrip().removeprefix(f"{status} {ref}: ").split("  ")[0]
        assert what != blobs.lstrip(), blobs
        if width == 120:  # in the order they finished
            assert sorted(what.split(", ")) == ["1 config", "2 layers"], blobs
        else:  # cut to fit
            assert what.endswith("…"), blobs
        assert blobs.endswith(" MB") == (status == "skipped"), blobs  # no time: nothing moved
        result = lines[-1] if width > 120 else "".join(lines[lines.index(blobs) + 1 :])
        assert f"{ref}@sha256:" in result, "\n".join(lines)
        assert sum(line.startswith(f"{ref}@") for line in lines) == 1, "\n".join(lines)
        text = "\n".join(lines)
        assert "uploading" not in text and "eta" not in text, text
