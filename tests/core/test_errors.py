"""Bad input: a clear error naming file and line, non-zero exit, the store unchanged."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.core.conftest import ocibuild


def snapshot(store: Path) -> dict[str, str]:
    return {
        str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(store.rglob("*"))
        if p.is_file() and ".ocibuild" not in p.parts
    }


CASES = {
    "malformed": ("images:\n  - name: a/b\n    layers: [\n", "bad.yaml:4:1: malformed YAML"),
    "unknown-key": (
        "images:\n  - name: a/b\n    lables: {x: y}\n",
        "bad.yaml:3:5: unknown key 'lables' in image (did you mean 'labels'?)",
    ),
    "unknown-source": (
        "images:\n  - name: a/b\n    layers:\n      - fils: []\n",
        "bad.yaml:4:9: unknown layer source 'fils' (did you mean 'files'?)",
    ),
    "missing-src": (
        "images:\n  - name: a/b\n    layers:\n      - files:\n          - {src: nothere.txt, dest: /x}\n",
        "bad.yaml:5:13: src 'nothere.txt' does not exist",
    ),
    "no-dest": (
        "images:\n  - name: a/b\n    layers:\n      - files:\n          - {src: ok.txt}\n",
        "bad.yaml:5:13: files item: missing required key 'dest'",
    ),
    "cycle": (
        "images:\n  - name: a/one\n    from: a/two\n  - name: a/two\n    from: a/one\n",
        "images are built from each other in a cycle: a/one -> a/two -> a/one",
    ),
    "escaping-dest": (
        "images:\n  - name: a/b\n    layers:\n      - files:\n          - {src: ok.txt, dest: ../../etc/passwd}\n",
        "bad.yaml:5:13: dest '../../etc/passwd' escapes the image root",
    ),
    "bad-mode": (
        "images:\n  - name: a/b\n    layers:\n      - files:\n          - {src: ok.txt, dest: /x, mode: rwx}\n",
        "bad.yaml:5:43: mode: 'rwx' is not an octal number",
    ),
    "unknown-base": (
        "images:\n  - name: a/b\n    from: other.yaml#c/d\n",
        "other.yaml",
    ),
    "base-not-in-store": (
        "images:\n  - name: a/b\n    from: example.org/not/here:1\n",
        "base image example.org/not/here:1 is not in the store",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_recipe(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, message = CASES[case]
    (tmp_path / "ok.txt").write_text("ok\n")
    (tmp_path / "bad.yaml").write_text(text)
    store = tmp_path / "store"
    # a first good build, so "unchanged" means something
    (tmp_path / "good.yaml").write_text(
        "images:\n  - name: a/good\n    layers:\n      - files: [{src: ok.txt, dest: /ok}]\n"
    )
    assert ocibuild("--store", str(store), "-q", "recipe", str(tmp_path / "good.yaml")) == 0
    before = snapshot(store)
    capsys.readouterr()
    code = ocibuild(
        "--store", str(store), "--quiet", "recipe", "--pull", "never", str(tmp_path / "bad.yaml")
    )
    err = capsys.readouterr().err
    assert code != 0
    assert message in err, err
    assert snapshot(store) == before


def test_schema_lists_every_key_the_decoder_accepts(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert ocibuild("schema") == 0
    schema = json.loads(capsys.readouterr().out)
    image = schema["properties"]["images"]["items"]
    assert {"name", "from", "tags", "layers", "env", "cmd", "setup", "labels"} <= set(
        image["properties"]
    )
    sources = {
        next(iter(option["properties"]))
        for option in image["properties"]["layers"]["items"]["oneOf"]
    }
    assert {"files", "profile", "remove"} <= sources
    files_item = image["properties"]["layers"]["items"]["oneOf"][sorted(sources).index("files")]
    assert files_item["properties"]["files"]["items"]["required"] == ["dest"]


def test_store_and_verbosity_options_also_follow_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ok.txt").write_text("ok\n")
    (tmp_path / "good.yaml").write_text(
        "images:\n  - name: a/good\n    layers:\n      - files: [{src: ok.txt, dest: /ok}]\n"
    )
    store = tmp_path / "store"
    assert ocibuild("recipe", str(tmp_path / "good.yaml"), "--store", str(store), "-q") == 0
    capsys.readouterr()
    assert ocibuild("images", "--store", str(store)) == 0
    assert "docker.io/a/good:latest" in capsys.readouterr().out
