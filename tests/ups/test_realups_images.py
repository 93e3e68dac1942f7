"""A representative subset of the real ups's recorded runs (tests/ups/realups) built into images
by `ocibuild recipe`: each probe's databases copied in with a `files:` layer, the recorded
UPS_OVERRIDE and PRODUCTS in the base image's env, the command as the recipe's `setup:`; each
image's Env equal to the real environment after `setup`, and a run the real ups refuses
refused by the build with its reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ocibuild.cli import main
from tests.ups.realups_runs import PROBES, Run, base_env, recorded_env, runs, setup_spec

SUBSET = [
    ("chains", "c -n"),
    ("chains", "cflav"),
    ("qualifiers", "qb v1_0 -q a:b:c"),
    ("proddir", "pd1 v1_0"),
    ("products-variable", "pv v1_0"),
    ("products-variable", "-z /products2:/products pv v1_0"),
    ("common-without-group", "cg7 v1_0"),
    ("if-else", "ie5 v1_0"),
    ("failures", "fm_exe_nowhere_then_dep v1_0"),
    ("failures", "fs_req_upsenv v1_0"),
    ("flavor-fallback", "fsl6 v1_0"),
    ("version-expansion", "ve_upsdir v1_0"),
    ("hundred-products", "p010 v1_0"),
    ("broken-unrelated", "good -c"),
]


def chosen() -> list[Run]:
    out = []
    for probe, command in SUBSET:
        found = [r for r in runs() if r.probe == probe and " ".join(r.command) == command]
        out.append(next(r for r in found if r.exit == 0))
    return out


def copy_probe(probe: str, dest: Path) -> None:
    """The probe's databases without symbolic links (a layer would keep them dangling)."""
    for tree in (PROBES / probe).iterdir():
        if tree.is_dir() and tree.name.startswith("products"):
            shutil.copytree(
                tree,
                dest / probe / tree.name,
                ignore=lambda d, names: [n for n in names if (Path(d) / n).is_symlink()],
            )


def image_lines(name: str, run: Run, setup: str) -> list[str]:
    env = ", ".join(f"{k}: {json.dumps(v)}" for k, v in base_env(run).items())
    trees = sorted(p.name for p in (PROBES / run.probe).iterdir() if p.name.startswith("products"))
    files = ", ".join(f"{{src: {run.probe}/{t}, dest: /{t}}}" for t in trees)
    return [
        f"  - name: example.org/realups/{name}-base:1",
        f"    layers: [{{files: [{files}]}}]",
        f"    env: {{{env}}}",
        f"  - name: example.org/realups/{name}:1",
        f"    from: example.org/realups/{name}-base:1",
        f"    setup: {setup}",
    ]


def setup_yaml(run: Run) -> str:
    spec = setup_spec(run)
    fields = {"product": spec.product, "version": spec.version, "qualifiers": spec.qualifiers}
    fields |= {"chain": spec.chain, "flavor": spec.flavor, "host_flavor": spec.host_flavor}
    text = ", ".join(f"{k}: {json.dumps(v)}" for k, v in fields.items() if v)
    if spec.databases:
        text += f", databases: {json.dumps(spec.databases)}"
    return "{" + text + "}"


def env_of(store: Path, ref: str, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    capsys.readouterr()
    assert main(["--store", str(store), "inspect", "--config", ref]) == 0
    config = json.loads(capsys.readouterr().out)
    return dict(e.split("=", 1) for e in config.get("config", config)["Env"])


def test_images_built_from_the_probes_hold_the_real_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    subset = chosen()
    lines = ["source_date_epoch: 0", "images:"]
    for probe in sorted({r.probe for r in subset}):
        copy_probe(probe, tmp_path)
    for i, run in enumerate(subset):
        lines += image_lines(f"i{i}", run, setup_yaml(run))
    recipe = tmp_path / "r.yaml"
    recipe.write_text("\n".join(lines) + "\n")
    store = tmp_path / "store"
    assert main(["--store", str(store), "-q", "recipe", str(recipe)]) == 0
    for i, run in enumerate(subset):
        assert recorded_env(env_of(store, f"example.org/realups/i{i}:1", capsys)) == run.env, (
            run.name
        )


def test_a_setup_the_real_ups_refuses_fails_the_build_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (run,) = [r for r in runs() if r.command == ("fm_nowhere_last", "v1_0")]
    copy_probe(run.probe, tmp_path)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("images:\n" + "\n".join(image_lines("refused", run, setup_yaml(run))) + "\n")
    capsys.readouterr()
    assert main(["--store", str(tmp_path / "store"), "-q", "recipe", str(recipe)]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "r.yaml:7:12: setup fm_nowhere_last v1_0: " in line
    assert (
        'fm_nowhere_last.table:9: ERROR: Action parsing failed on "setupRequired(nosuch)"' in line
    )
    assert "the real setup is refused" in line
    assert all(m in line for m in run.ups_messages)
    capsys.readouterr()
    ref = "example.org/realups/refused:1"
    assert main(["--store", str(tmp_path / "store"), "inspect", "--config", ref]) != 0
