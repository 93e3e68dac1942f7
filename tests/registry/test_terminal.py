"""What a push leaves on a terminal: a finished bar per blob and the pushed references after
them, and no stale line of the live display (stdout and stderr share the terminal)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from tests.registry.conftest import Registry
from tests.terminal import run_on_terminal, screen

REPO = Path(__file__).resolve().parents[2]


def test_a_push_on_a_terminal_leaves_no_stale_lines(tmp_path: Path, registry: Registry) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "blob").write_bytes(os.urandom(16 << 20))
    ref = f"{registry.host}/t/screen/push:1"
    (tmp_path / "r.yaml").write_text(
        f"images:\n  - name: {ref}\n    layers:\n"
        "      - files: [{src: data, dest: /data}]\n"
        '      - files: [{content: "hi\\n", dest: /etc/motd}]\n'
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ocibuild = [sys.executable, "-m", "ocibuild", "--store", "s"]
    code, _ = run_on_terminal([*ocibuild, "-q", "recipe", "r.yaml"], tmp_path, env)
    assert code == 0
    code, data = run_on_terminal([*ocibuild, "push", "--insecure", ref], tmp_path, env)
    lines = screen(data)
    assert code == 0, "\n".join(lines)
    bars = [line for line in lines if re.match(r" *(uploaded|skipped|mounted) sha256:", line)]
    assert len(bars) == 3, "\n".join(lines)  # two layers and the config, each once
    assert all("/s " in bar for bar in bars if "uploaded" in bar and "kB" not in bar)
    assert lines[-1].startswith(f"{ref}@sha256:"), "\n".join(lines)
    assert sum(line.startswith(f"{ref}@") for line in lines) == 1
    assert not any("uploading" in line or "eta" in line for line in lines), "\n".join(lines)
