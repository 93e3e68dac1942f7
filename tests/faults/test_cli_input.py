"""Odd command-line input: each gives one `error:` line naming what is wrong and exit status 1
(no traceback, no hang, no prompt), and leaves the store as it was."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.faults.conftest import check_store, ocibuild, one_error_line, snapshot

REF = "example.org/faults/cli:1"
IMAGE = f"images:\n  - name: {REF}\n    layers:\n      - files: [{{content: hello, dest: /x}}]\n"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    (tmp_path / "r.yaml").write_text(IMAGE)
    assert ocibuild(tmp_path / "store", "-q", "recipe", str(tmp_path / "r.yaml")).code == 0
    return tmp_path / "store"


def manifest(store: Path) -> dict[str, object]:
    return json.loads(ocibuild(store, "inspect", "--manifest", REF).out)  # type: ignore[no-any-return]


def test_inspect_of_a_layer_or_config_digest_says_what_it_is(store: Path) -> None:
    m = manifest(store)
    layer = m["layers"][0]["digest"]  # type: ignore[index]
    config = m["config"]["digest"]  # type: ignore[index]
    one_error_line(ocibuild(store, "inspect", layer), f"{layer} is a layer blob, not an image")
    one_error_line(
        ocibuild(store, "inspect", f"example.org/faults/cli@{config}"),
        f"{config} is an image config, not an image",
    )


def test_a_store_that_is_not_a_layout_is_refused(tmp_path: Path) -> None:
    one_error_line(ocibuild(Path("/proc"), "images"), "/proc: not an OCI image layout")
    one_error_line(ocibuild(Path("/proc"), "gc"), "/proc: not an OCI image layout")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "notes.txt").write_text("mine")
    one_error_line(ocibuild(tmp_path / "home", "images"), "not empty")
    assert os.listdir(tmp_path / "home") == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    usage = ocibuild(tmp_path / "file", "images")  # click's usage error
    assert usage.code == 2 and "is a file" in usage.err


@pytest.mark.parametrize(
    "index",
    ["[]", '{"manifests": {}}', '{"manifests": [1]}', '{"manifests": [{"digest": 5}]}', "{"],
)
def test_a_broken_index_json_is_named(index: str, store: Path) -> None:
    (store / "index.json").write_text(index)
    for command in (["images"], ["inspect", REF], ["rmi", REF], ["gc"]):
        one_error_line(ocibuild(store, *command), f"{store}/index.json")
    assert (store / "index.json").read_text() == index


@pytest.mark.parametrize("registry", ["http://[::1", "https://[::1]x", "a b", "host:port:9"])
def test_login_to_a_bad_registry_name_fails_before_asking(registry: str, tmp_path: Path) -> None:
    result = ocibuild(tmp_path / "store", "login", registry)
    one_error_line(result, f"invalid registry {registry!r}")
    assert "Username" not in result.out + result.err


def test_a_fifo_recipe_is_refused_without_hanging(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.yaml")
    one_error_line(
        ocibuild(tmp_path / "store", "recipe", "fifo.yaml", cwd=tmp_path, isolated=True),
        "cannot read recipe file fifo.yaml: not a regular file but a FIFO",
    )
    (tmp_path / "r.yaml").write_text("images:\n  - name: a/b\n    from: fifo.yaml#c/d\n")
    one_error_line(
        ocibuild(tmp_path / "store", "recipe", "r.yaml", cwd=tmp_path, isolated=True),
        "r.yaml:2:5: cannot read recipe file",
        "a FIFO",
    )


def test_a_device_recipe_is_refused_before_reading(tmp_path: Path) -> None:
    os.mknod(tmp_path / "zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))
    one_error_line(
        ocibuild(tmp_path / "store", "recipe", str(tmp_path / "zero"), isolated=True),
        "not a regular file but a character device",
    )
    (tmp_path / "r.yaml").write_text("images:\n  - name: a/b\n    from: zero#c/d\n")
    one_error_line(
        ocibuild(tmp_path / "store", "recipe", "r.yaml", cwd=tmp_path, isolated=True),
        "r.yaml:2:5: cannot read recipe file",
        "character device",
    )
    usage = ocibuild(tmp_path / "store", "recipe", str(tmp_path), isolated=True)
    assert usage.code == 2 and "is a directory" in usage.err  # click's usage error


def test_a_fifo_lock_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(IMAGE)
    os.mkfifo(tmp_path / "r.yaml.lock")
    one_error_line(
        ocibuild(tmp_path / "store", "recipe", "r.yaml", cwd=tmp_path, isolated=True),
        "r.yaml.lock: cannot read the lock file (not a regular file but a FIFO)",
    )


@pytest.mark.parametrize("opening", ["[", "{a: "])
def test_deeply_nested_yaml_is_refused_at_its_line(opening: str, tmp_path: Path) -> None:
    closing = {"[": "]", "{a: ": "}"}[opening]
    (tmp_path / "deep.yaml").write_text(
        "images:\n  - name: a/b\n    labels: " + opening * 3000 + "x" + closing * 3000 + "\n"
    )
    line = one_error_line(
        ocibuild(tmp_path / "store", "recipe", "deep.yaml", cwd=tmp_path),
        "deep.yaml:3:",
        "nested deeper than 100 levels",
    )
    assert "Recursion" not in line


@pytest.mark.parametrize(
    ("value", "column"),
    [("99999999999999999999999", 20), ("253402300800", 20), ("-1", 20), ("1e400", 20)],
)
def test_source_date_epoch_out_of_range(value: str, column: int, tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(f"source_date_epoch: {value}\n" + IMAGE)
    one_error_line(
        ocibuild(tmp_path / "store", "recipe", "r.yaml", cwd=tmp_path), f"r.yaml:1:{column}:"
    )


def test_source_date_epoch_at_the_last_second_builds(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("source_date_epoch: 253402300799\n" + IMAGE)
    assert ocibuild(tmp_path / "store", "-q", "recipe", "r.yaml", cwd=tmp_path).code == 0
    config = json.loads(ocibuild(tmp_path / "store", "inspect", "--config", REF).out)
    assert config["created"] == "9999-12-31T23:59:59Z"


def test_source_date_epoch_from_the_environment_out_of_range(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(IMAGE)
    result = ocibuild(
        tmp_path / "store",
        "recipe",
        "r.yaml",
        cwd=tmp_path,
        env={"SOURCE_DATE_EPOCH": "99999999999999999999"},
    )
    one_error_line(result, "SOURCE_DATE_EPOCH=", "is outside 0..253402300799")


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ("compression_level: 99\n", "r.yaml:1:20: compression_level: gzip compression level 99"),
        ("compression: zstd\ncompression_level: 99\n", "r.yaml:2:20: compression_level: zstd"),
        ("compression: none\ncompression_level: 1\n", "compression none takes no level"),
    ],
)
def test_compression_level_out_of_range(head: str, expected: str, tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(head + IMAGE)
    one_error_line(ocibuild(tmp_path / "store", "recipe", "r.yaml", cwd=tmp_path), expected)
    (tmp_path / "ok.yaml").write_text(IMAGE)
    one_error_line(
        ocibuild(tmp_path / "store", "recipe", "--level", "99", "ok.yaml", cwd=tmp_path),
        "--level: gzip compression level 99",
    )


def test_bad_input_leaves_the_store_as_it_was(store: Path, tmp_path: Path) -> None:
    before = snapshot(store)
    os.mkfifo(tmp_path / "fifo.yaml")
    (tmp_path / "deep.yaml").write_text("images: " + "[" * 500 + "]" * 500 + "\n")
    for args in (["recipe", "fifo.yaml"], ["recipe", "deep.yaml"], ["login", "http://[::1"]):
        assert ocibuild(store, *args, cwd=tmp_path).code == 1
    assert snapshot(store) == before
    assert check_store(store) == {REF}
