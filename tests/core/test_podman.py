"""What we build runs: podman loads both archive formats and runs a busybox image."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.conftest import ocibuild
from tests.podman import Podman

RECIPE = """\
images:
  - name: example.org/hep/busybox:1.0
    layers:
      - files:
          - {{src: {busybox}, dest: /bin/busybox, mode: "0755"}}
          - {{content: "hello from ocibuild\\n", dest: /etc/motd}}
      - files:
          - {{content: "#!/bin/busybox sh\\necho \\"$GREETING, $LANG\\"\\ncat /etc/motd\\n", dest: /usr/bin/greet, mode: "0755"}}
    env: {{PATH: /usr/bin:/bin, GREETING: hi, LANG: C}}
    entrypoint: ["/bin/busybox"]
    cmd: ["sh", "-c", "greet"]
"""


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_podman_loads_and_runs(fmt: str, tmp_path: Path, podman: Podman, busybox: Path) -> None:
    (tmp_path / "bb.yaml").write_text(RECIPE.format(busybox=busybox))
    store = tmp_path / "store"
    assert ocibuild("--store", str(store), "-q", "recipe", str(tmp_path / "bb.yaml")) == 0
    archive = tmp_path / f"image.{fmt}.tar"
    tag = f"localhost/ocibuild-test/{fmt}:1.0"
    assert (
        ocibuild(
            "--store",
            str(store),
            "export",
            "example.org/hep/busybox:1.0",
            "--format",
            fmt,
            "-o",
            str(archive),
            "--tag",
            tag,
        )
        == 0
    )
    loaded = podman("load", "-i", str(archive)).stdout
    assert "Loaded image" in loaded
    out = podman.run(tag)
    assert out == "hi, C\nhello from ocibuild\n"
    env = podman.run(tag, "env")
    assert "GREETING=hi" in env.splitlines() and "PATH=/usr/bin:/bin" in env.splitlines()
    podman("rmi", tag)
