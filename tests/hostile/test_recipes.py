"""Hostile recipes and the values in them: each is refused at the file and line it was written
on, before anything is built."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocibuild.builder import build_order
from ocibuild.recipe import load_recipe
from tests.hostile.conftest import Hostile


def image(layers: str = "", extra: str = "", name: str = "a/bad") -> str:
    text = f"images:\n  - name: {name}\n{extra}"
    if layers:
        text += f"    layers:\n{layers}"
    return text


def files(*items: str) -> str:
    return "      - files:\n" + "".join(f"          - {item}\n" for item in items)


# case -> (recipe text, text on the line the error must name, what the error must say)
RECIPES: dict[str, tuple[str, str, str]] = {
    "dest-dot": (image(files("{src: f.txt, dest: '.'}")), "dest: '.'", "is the image root"),
    "content-dest-empty": (
        image(files("{content: X, dest: ''}")),
        "dest: ''",
        "of inline content must be a file path",
    ),
    "file-under-file": (
        image(files("{content: a, dest: /etc/a}", "{content: b, dest: /etc/a/b}")),
        "dest: /etc/a/b",
        "/etc/a/b is under /etc/a, which is a file",
    ),
    "whiteout-content": (
        image(files("{content: x, dest: /etc/.wh.passwd}")),
        "dest: /etc/.wh.passwd",
        "a whiteout name",
    ),
    "opaque-whiteout-content": (
        image(files("{content: x, dest: /etc/.wh..wh..opq}")),
        ".wh..wh..opq",
        "an opaque whiteout",
    ),
    "owner-negative": (
        image(files("{content: x, dest: /x, owner: '-1:-1'}")),
        "owner: '-1:-1'",
        "uid and gid must be in 0..2147483647",
    ),
    "owner-too-large": (
        image(files("{content: x, dest: /x, owner: '4294967296:0'}")),
        "4294967296",
        "uid and gid must be in 0..2147483647",
    ),
    "shell-newline": (
        image('      - user: {name: hep, shell: "/bin/sh\\nevil::0:0::/:/bin/sh"}\n'),
        "user: {name: hep",
        "which /etc/passwd cannot hold",
    ),
    "home-colon": (
        image("      - user: {name: hep, home: '/home/hep:0:0'}\n"),
        "user: {name: hep",
        "which /etc/passwd cannot hold",
    ),
    "home-escape": (
        image("      - user: {name: hep, home: '../../../etc'}\n"),
        "user: {name: hep",
        "home '../../../etc' escapes the image root",
    ),
    "user-name-newline": (
        image('      - user: {name: "hep\\n"}\n'),
        "user: {name:",
        "is not a valid user name",
    ),
    "name-with-digest": (
        image(name="a/bad@sha256:" + "1" * 64),
        "- name: a/bad@sha256",
        "an image to build is named without a digest",
    ),
    "platform-unknown": (
        image(files("{content: x, dest: /x}"), "    platform: not/a/real/platform/x\n"),
        "platform: not/a/real",
        "is not os/arch or os/arch/variant",
    ),
    "platform-bad-arch": (
        image(files("{content: x, dest: /x}"), "    platform: linux/z80\n"),
        "platform: linux/z80",
        "unknown architecture 'z80'",
    ),
    "platform-bad-variant": (
        image(files("{content: x, dest: /x}"), "    platform: linux/amd64/v9\n"),
        "platform: linux/amd64/v9",
        "unknown variant 'v9' of amd64",
    ),
    "nul-in-env": (
        image(files("{content: x, dest: /x}"), '    env: {A: "a\\0b"}\n'),
        "env:",
        "a NUL byte is not allowed",
    ),
    "nul-in-env-name": (
        image(files("{content: x, dest: /x}"), '    env: {"A\\0": b}\n'),
        "env:",
        "a NUL byte is not allowed",
    ),
    "nul-in-cmd": (
        image(files("{content: x, dest: /x}"), '    cmd: ["/bin/sh", "-c\\0x"]\n'),
        "cmd:",
        "a NUL byte is not allowed",
    ),
    "nul-in-label": (
        image(files("{content: x, dest: /x}"), '    labels: {a: "\\0"}\n'),
        "labels:",
        "a NUL byte is not allowed",
    ),
    "binary-label": (
        image(files("{content: x, dest: /x}"), "    labels: {a: !!binary aGVsbG8=}\n"),
        "labels:",
        "expected a string, got binary data",
    ),
    "env-name-with-equals": (
        image(files("{content: x, dest: /x}"), "    env: {'A=B': x}\n"),
        "env:",
        "'A=B' is not an environment variable name",
    ),
    "env-name-newline": (
        image(files("{content: x, dest: /x}"), '    env: {"A\\nLD_PRELOAD": x}\n'),
        "env:",
        "is not an environment variable name",
    ),
    "workdir-newline": (
        image(files("{content: x, dest: /x}"), '    workdir: "/a\\nb"\n'),
        "workdir:",
        "is not a working directory",
    ),
    "user-newline": (
        image(files("{content: x, dest: /x}"), '    user: "hep\\n0"\n'),
        "user:",
        "is not a user",
    ),
    "env-name-empty": (
        image(files("{content: x, dest: /x}"), "    env: {'': x}\n"),
        "env:",
        "'' is not an environment variable name",
    ),
    "platform-empty-variant": (
        image(files("{content: x, dest: /x}"), "    platform: linux/amd64/\n"),
        "platform: linux/amd64/",
        "is not os/arch or os/arch/variant",
    ),
    "whiteout-directory": (
        image(files("{content: x, dest: /.wh.etc/passwd}")),
        "dest: /.wh.etc/passwd",
        "a directory with a whiteout name",
    ),
    "compression-level-out-of-range": (
        image(files("{content: x, dest: /x}"), "    compression_level: 99\n"),
        "compression_level: 99",
        "gzip compression level 99 is not one of 1-9",
    ),
    "recursive-alias": (
        "images: &a\n  - *a\n",
        "images: &a",
        "a YAML alias refers to itself",
    ),
}


@pytest.mark.parametrize("case", sorted(RECIPES))
def test_hostile_recipes_are_refused_at_their_line(
    case: str, hostile: Hostile, recipe_line: object
) -> None:
    text, on_line, message = RECIPES[case]
    (hostile.root / "f.txt").write_text("f\n")
    recipe = hostile.recipe(text)
    line = recipe_line(recipe, on_line)  # type: ignore[operator]
    error = hostile.refused("recipe", str(recipe), names=(message,))
    assert f"{recipe}:{line}:" in error or f"{recipe}:{line}" in error, error


def test_host_files_with_whiteout_names_are_refused(hostile: Hostile, recipe_line: object) -> None:
    tree = hostile.root / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / ".wh..wh..opq").write_text("")
    recipe = hostile.recipe(image(files("{src: tree/, dest: /}")))
    hostile.refused("recipe", str(recipe), names=(f"{recipe}:", "/etc/.wh..wh..opq"))


def test_billion_laughs_fails_fast_naming_the_line(hostile: Hostile) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        levels.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    text = "\n".join(levels) + "\nimages:\n  - name: a/x\n    labels: {a: *a11}\n"
    recipe = hostile.recipe(text)
    error = hostile.refused("recipe", str(recipe), names=("through YAML aliases",))
    # the first value past the limit: a5 (line 6) stands for 1,111,111 values
    assert f"{recipe}:6:" in error, error


def test_a_recipe_past_the_size_limit_is_refused(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCIBUILD_MAX_RECIPE_SIZE", "100")
    recipe = hostile.recipe(image(files("{content: " + "x" * 200 + ", dest: /x}")))
    hostile.refused("recipe", str(recipe), names=(str(recipe), "larger than 100 bytes"))


def test_an_endless_recipe_file_is_refused(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCIBUILD_MAX_RECIPE_SIZE", "4096")
    big = hostile.root / "big.yaml"
    big.write_text("images:\n" + "# padding\n" * 1000)
    hostile.refused("recipe", str(big), names=(str(big), "larger than 4096 bytes"))
    hostile.refused("recipe", "/dev/zero", names=("/dev/zero", "not a regular file"))


def test_a_ups_expansion_bomb_is_refused_naming_the_table_line(hostile: Hostile) -> None:
    table = (
        'File=Table\nProduct=bomb\nGroup:\nFlavor=ANY\nQualifiers=""\nCommon:\n'
        "  Action=setup\n    envSet(BOMB, x)\n"
        + "    envSet(BOMB, ${BOMB}${BOMB})\n" * 40
        + "End:\n"
    )
    version = (
        'FILE = version\nPRODUCT = bomb\nVERSION = v1_0\n\nFLAVOR = NULL\nQUALIFIERS = ""\n'
        "  PROD_DIR = bomb/v1_0\n  UPS_DIR = ups\n  TABLE_FILE = bomb.table\n"
    )
    dbconfig = "FILE = DBCONFIG\nPROD_DIR_PREFIX = ${UPS_THIS_DB}\n"  # PROD_DIR under /products
    recipe = hostile.recipe(
        "images:\n  - name: a/bomb\n    layers:\n      - files:\n"
        f"          - {{content: {json.dumps(dbconfig)}, dest: /products/.upsfiles/dbconfig}}\n"
        f"          - {{content: {json.dumps(version)}, dest: /products/bomb/v1_0.version/NULL_}}\n"
        f"          - {{content: {json.dumps(table)}, dest: /products/bomb/v1_0/ups/bomb.table}}\n"
        "    setup: {product: bomb, version: v1_0}\n"
    )
    # x doubled: 2**20 characters at the 21st envSet, line 8 + 20 of the table
    hostile.refused(
        "recipe",
        str(recipe),
        names=("/products/bomb/v1_0/ups/bomb.table:29:", "OCIBUILD_MAX_ENV_VALUE"),
    )


def test_a_long_chain_of_images_is_ordered_without_recursion(tmp_path: Path) -> None:
    # build order used to recurse once per image (and copy the chain each time)
    count = 5000
    lines = ["images:"]
    for i in range(count):
        lines.append(f"  - name: a/i{i}")
        if i:
            lines.append(f"    from: a/i{i - 1}")
    path = tmp_path / "chain.yaml"
    path.write_text("\n".join(lines) + "\n")
    order = build_order(load_recipe(path))
    assert [i.name for i in order] == [f"a/i{i}" for i in range(count)]


def test_a_cycle_of_images_is_still_named(tmp_path: Path) -> None:
    path = tmp_path / "cycle.yaml"
    path.write_text(
        "images:\n  - {name: a/x, from: a/z}\n  - {name: a/y, from: a/x}\n"
        "  - {name: a/z, from: a/y}\n"
    )
    with pytest.raises(Exception, match="a cycle: a/x -> a/z -> a/y -> a/x"):
        build_order(load_recipe(path))
