"""Recipe variables: `${NAME}` from `--var` or the environment, `$$`, and the fields that keep
their `$` for the image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocibuild.cli import main
from ocibuild.layer.reader import decompressed, members
from ocibuild.store import Store
from ocibuild.variables import UndefinedVariable, canonical, expand, parse_assignment

RECIPE = """\
source_date_epoch: ${EPOCH:-1451606400}
images:
  - name: example.org/hep/art:${ART_VERSION}
    tags: ["${ART_VERSION}-${QUALIFIERS}", "site.org/hep/art:${ART_VERSION}"]
    labels: {version: "${ART_VERSION}", price: "$$5", quals: "${QUALIFIERS:-e9:prof}"}
    layers:
      - files:
          - {src: "${DATA:-data}/hello.txt", dest: "/opt/art/${ART_VERSION}/hello.txt"}
          - {content: "echo ${HOME} $$\\n", dest: /opt/run.sh}
      - profile: export ART_DIR=/opt/art/${ART_VERSION}
    env: {PATH: /bin, STUDY: "${PATH}:/study"}
    cmd: ["/bin/sh", "-c", "echo ${HOME}"]
"""


def test_expansion_rules() -> None:
    env = {"A": "from-env", "EMPTY": ""}
    assert expand("${A}", {}, env) == "from-env"
    assert expand("${A}", {"A": "given"}, env) == "given"  # --var before the environment
    assert expand("${B:-dflt}/${A:-x}", {}, env) == "dflt/from-env"
    assert expand("${EMPTY:-dflt}|${EMPTY}|", {}, env) == "dflt||"
    assert expand("$$A $${A} $5 ${A}$$", {}, env) == "$A ${A} $5 from-env$"
    assert canonical("${A:-http://vault}/${B}", {"B": "6.7"}, env) == "http://vault/6.7"
    with pytest.raises(UndefinedVariable) as e:
        expand("x-${NOPE}", {}, env)
    assert e.value.name == "NOPE"
    assert parse_assignment("V=1=2") == ("V", "1=2")
    for bad in ("V", "=1", "1V=2", "A-B=1"):
        with pytest.raises(ValueError, match="is not NAME=VALUE"):
            parse_assignment(bad)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "hello.txt").write_text("hello\n")
    (tmp_path / "recipe.yaml").write_text(RECIPE)
    return tmp_path


def layer_files(store: Store, digest: str, media_type: str) -> dict[str, bytes]:
    out = {}
    with store.open_blob(digest) as blob, decompressed(blob, media_type) as stream:
        for info, tar in members(stream, digest):
            if info.isfile():
                out[info.name] = tar.extractfile(info).read()  # type: ignore[union-attr]
    return out


def test_variables_from_var_and_the_environment(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QUALIFIERS", "e20-prof")
    monkeypatch.setenv("ART_VERSION", "from-env")
    store = project / "store"

    code = main(
        ["--store", str(store), "recipe", str(project / "recipe.yaml"), "--var", "ART_VERSION=3.09"]
    )

    out, err = capsys.readouterr()
    assert code == 0, err
    assert [line.split("@")[0] for line in out.splitlines()] == [
        "example.org/hep/art:3.09",
        "example.org/hep/art:3.09-e20-prof",
        "site.org/hep/art:3.09",
    ]
    built = Store.open(store)
    image = built.image("example.org/hep/art:3.09")
    assert image.config.config.labels == {"version": "3.09", "price": "$5", "quals": "e20-prof"}
    assert image.config.created.startswith("2016-01-01")
    files = layer_files(built, *_layer(image, 0))
    # text for the image keeps its $: file content, profile lines, env, cmd
    assert files["opt/art/3.09/hello.txt"] == b"hello\n"
    assert files["opt/run.sh"] == b"echo ${HOME} $$\n"
    profile = layer_files(built, *_layer(image, 1))
    assert b"export ART_DIR=/opt/art/${ART_VERSION}\n" in next(iter(profile.values()))
    assert "STUDY=/bin:/study" in image.config.config.env
    assert image.config.config.cmd == ("/bin/sh", "-c", "echo ${HOME}")


def _layer(image: object, n: int) -> tuple[str, str]:
    layer = image.manifest.layers[n]  # type: ignore[attr-defined]
    return layer.digest, layer.media_type


def test_an_undefined_variable_names_the_file_line_and_variable(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ART_VERSION", raising=False)
    store = project / "store"
    recipe = project / "recipe.yaml"

    assert main(["--store", str(store), "recipe", str(recipe)]) == 1

    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"error: {recipe}:3:11: ${{ART_VERSION}} is not set: give --var ART_VERSION=VALUE, "
        "set it in the environment, or write ${ART_VERSION:-DEFAULT}\n"
    )
    assert (
        not (store / "index.json").exists()
        or json.loads((store / "index.json").read_text())["manifests"] == []
    )

    assert main(["--store", str(store), "recipe", str(recipe), "--var", "ART-VERSION=1"]) == 2
    assert "'ART-VERSION=1' is not NAME=VALUE" in capsys.readouterr().err


def test_push_file_takes_the_same_variables(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ART_VERSION", raising=False)
    monkeypatch.setenv("QUALIFIERS", "e20")
    # no registry is contacted: the images of the recipe are not in this store
    code = main(
        [
            "--store",
            str(project / "empty"),
            "push",
            "-f",
            str(project / "recipe.yaml"),
            "--var",
            "ART_VERSION=9",
        ]
    )
    assert code == 1
    assert "no such image example.org/hep/art:9" in capsys.readouterr().err


def test_an_unquoted_variable_in_a_flow_mapping_gets_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = tmp_path / "flow.yaml"
    recipe.write_text("images:\n  - name: x/y:1\n    labels: {version: ${V}}\n")
    assert main(["--store", str(tmp_path / "store"), "recipe", str(recipe), "--var", "V=1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {recipe}:3:24: malformed YAML: ")
    assert 'quote a value holding ${...}: "${NAME}"' in err
