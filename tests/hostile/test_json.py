"""One reader for JSON written by others (`ocibuild.jsonread`): size, depth without recursion,
duplicate keys, numbers, lone surrogates; every caller goes through it (the guard below fails on
a new `json.loads`), and the store's own files and a registry's documents are refused through
it with one line naming the file or reference."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from ocibuild.jsonread import MAX_DEPTH, JSONInputError, read_json
from tests.hostile.conftest import Hostile, verify_store

PACKAGE = Path(__file__).resolve().parents[2] / "ocibuild"

BAD: dict[str, tuple[bytes, str]] = {
    "deep-array": (b"[" * 5000 + b"]" * 5000, f"nested deeper than {MAX_DEPTH} levels"),
    "deep-object": (b'{"a":' * 5000 + b"1" + b"}" * 5000, f"nested deeper than {MAX_DEPTH}"),
    "deep-unclosed": (b"[" * 100_000, "nested deeper than"),
    "duplicate-key": (b'{"layers": [], "layers": [1]}', "the key 'layers' is given twice"),
    "duplicate-nested": (b'{"a": {"b": 1, "b": 2}}', "the key 'b' is given twice"),
    "huge-int": (b'{"size": ' + b"9" * 5000 + b"}", "has more than 20 digits"),
    "inf-float": (b'{"size": 1e400}', "the number 1e400 is out of range"),
    "nan": (b"[NaN]", "NaN is not a JSON number"),
    "infinity": (b"[-Infinity]", "-Infinity is not a JSON number"),
    "lone-surrogate": (b'{"a": "\\ud800"}', "a lone UTF-16 surrogate"),
    "surrogate-key": (b'{"\\udfff": 1}', "a lone UTF-16 surrogate"),
    "not-utf8": (b'{"a": "\xff"}', "not JSON"),
    "truncated": (b'{"a": [1, 2', "not JSON"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_the_reader_refuses_naming_the_document(case: str) -> None:
    data, message = BAD[case]
    with pytest.raises(JSONInputError) as refused:
        read_json(data, "doc.json")
    assert str(refused.value).startswith("doc.json: ") and message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_the_reader_takes_what_json_allows() -> None:
    good = b'{"a": [1, -2, 3.5, true, null, "\\ud83d\\ude00 \\"]\\" [{"], "b": {}}'
    assert read_json(good, "x") == json.loads(good)
    assert read_json(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, "x") is not None
    assert read_json(b'"[[[[' + b"[" * 1000 + b'"', "x") == "[[[[" + "[" * 1000  # in a string


def test_the_size_limit_is_a_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCIBUILD_MAX_JSON_SIZE", "100")
    with pytest.raises(JSONInputError, match=r"x: a JSON document of 200 bytes, more than 100"):
        read_json(b" " * 198 + b"{}", "x")
    with pytest.raises(JSONInputError, match="more than 10"):
        read_json(b"[1, 2, 3, 4, 5]", "x", limit=10)


def unbounded_reads(path: Path) -> list[str]:
    """`json.loads`/`json.load` calls, and `requests`' own body readers (`.json()` of a
    response, `.iter_content()`): what would parse or read without the limits."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        func, receiver = node.func, node.func.value
        name = receiver.id if isinstance(receiver, ast.Name) else ""
        if (
            (func.attr in ("loads", "load") and name == "json")
            or (func.attr == "json" and name.endswith(("response", "resp")))
            or func.attr == "iter_content"
        ):
            found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    return found


def test_no_json_is_parsed_nor_a_body_read_outside_the_readers() -> None:
    """Every `json.loads` of ocibuild is `jsonread`'s, every body read `net.body`'s: a new one
    would bypass their limits."""
    calls = [
        call
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "jsonread.py" and path.parent.name != "net"
        for call in unbounded_reads(path)
    ]
    assert calls == []


def test_the_guard_sees_them() -> None:
    bad = PACKAGE / "_guard_probe.py"
    try:
        bad.write_text(
            "import json\n\ndef f(b, response):\n"
            "    return json.loads(b), response.json(), response.iter_content(5)\n"
        )
        assert unbounded_reads(bad) == ["ocibuild/_guard_probe.py:4"] * 3
    finally:
        bad.unlink()


DEEP = "[" * 3000 + "]" * 3000


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: (s / "index.json").write_text(DEEP), "index.json: JSON nested deeper"),
        (
            lambda s: (s / "index.json").write_text('{"manifests": [], "manifests": []}'),
            "the key 'manifests' is given twice",
        ),
        (lambda s: (s / "oci-layout").write_text(DEEP), "oci-layout: JSON nested deeper"),
    ],
)
def test_the_stores_own_files_are_read_by_the_reader(
    change: object, expected: str, hostile: Hostile
) -> None:
    change(hostile.store)  # type: ignore[operator]
    before = hostile.snapshot()
    outcome = hostile.run("images")
    assert outcome.code == 1 and "Traceback" not in outcome.err
    assert outcome.err.startswith("error: ") and expected in outcome.err, outcome.err
    assert len(outcome.err.strip().splitlines()) == 1
    assert hostile.snapshot() == before


def test_a_deep_lock_file_is_one_error(hostile: Hostile) -> None:
    recipe = hostile.recipe(
        "images:\n  - name: a/x\n    layers:\n      - files: [{content: x, dest: /x}]\n"
    )
    Path(f"{recipe}.lock").write_text(DEEP)
    error = hostile.refused("recipe", str(recipe))
    assert "recipe.yaml.lock: JSON nested deeper" in error
    verify_store(hostile.store)
