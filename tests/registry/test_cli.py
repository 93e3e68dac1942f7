"""The registry commands end to end: build a recipe, push what it built, build on a base image
pulled from the registry."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from ocibuild.cli import main
from ocibuild.store import Store
from tests.cli import run
from tests.registry.conftest import Registry
from tests.registry.images import busybox_layer, make_image
from tests.registry.proxy import FaultProxy

RECIPE = """\
source_date_epoch: 1451606400
images:
  - name: example.org/hep/{name}-base:1.0
    tags: [latest]
    layers:
      - files:
          - {{content: "base\\n", dest: /etc/base.txt}}
  - name: example.org/hep/{name}-study:1.0
    from: example.org/hep/{name}-base:1.0
    layers:
      - files:
          - {{content: "study\\n", dest: /study/README}}
"""


def test_push_what_the_last_build_made_and_a_recipe_file(
    tmp_path: Path,
    proxy: FaultProxy,
    repo: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = repo().replace("/", "-")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.format(name=name))
    store = str(tmp_path / "store")
    run(capsys, "--store", store, "recipe", str(recipe))
    site = f"{proxy.address}/site/"

    out = run(capsys, "--store", store, "push", "--insecure", "--to", site)

    pushed = [line.split("@")[0] for line in out.splitlines()]
    assert pushed == [
        f"{proxy.address}/site/hep/{name}-base:1.0",
        f"{proxy.address}/site/hep/{name}-base:latest",
        f"{proxy.address}/site/hep/{name}-study:1.0",
    ]
    assert len(proxy.requests(r"^PUT .*/manifests/(1\.0|latest)")) == 3
    uploads = len(proxy.requests(r"^PUT .*/blobs/uploads/"))
    # base: config + layer; study: config + its layer (the base layer is mounted); and for each
    # of the two images its SBOM, its provenance and their (empty) artifact config
    assert uploads == 4 + 2 * 3
    assert len(proxy.requests(r"^POST .*mount=.*")) == 1

    proxy.clear()
    again = run(capsys, "--store", store, "push", "-f", str(recipe), "--insecure", "--to", site)
    assert again == out
    assert proxy.requests(r"/blobs/uploads/") == []
    assert proxy.requests(r"^PUT .*/manifests/") == []  # the registry has these very manifests

    code = main(["--store", store, "push", "--insecure", "--to", f"{proxy.address}/one/image:1"])
    assert code == 2
    assert "sends several images to the same reference" in capsys.readouterr().err


def test_recipe_builds_from_a_base_pulled_from_the_registry(
    tmp_path: Path,
    registry: Registry,
    repo: Callable[[str], str],
    busybox: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = f"{registry.host}/{repo('busybox')}:1"
    pusher = Store.open(tmp_path / "pusher")
    make_image(pusher, [base], [busybox_layer(busybox)])
    pushed = run(capsys, "--store", str(pusher.root), "push", base, "--insecure")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        textwrap.dedent(f"""\
        images:
          - name: example.org/hep/on-busybox:1
            from: {base}
            layers:
              - files:
                  - {{content: "hi\\n", dest: /hello.txt}}
        """)
    )
    store = tmp_path / "store"

    run(capsys, "--store", str(store), "recipe", str(recipe), "--insecure")

    built = Store.open(store)
    image = built.image("example.org/hep/on-busybox:1")
    base_layers = pusher.image(base).manifest.layers
    assert [(d.digest, d.size) for d in image.manifest.layers[: len(base_layers)]] == [
        (d.digest, d.size) for d in base_layers
    ]
    # one digest: the image's in the pushing store, the one `push` printed, the pulled one
    assert f"{base}@{built.resolve(base).digest}\n" == pushed
    assert built.resolve(base).digest == pusher.resolve(base).digest
