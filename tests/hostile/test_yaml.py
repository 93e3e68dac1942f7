"""One reader for YAML written by others (`ocibuild.yamlread`): depth and aliases counted on the
parser's event stream before any loader recurses; every YAML load of ocibuild is its or the
recipe reader's (the guard below fails on a new one)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ocibuild.errors import SourceError
from ocibuild.spack.buildinfo import BuildInfo, parse_buildinfo
from ocibuild.yamlread import MAX_DEPTH, YAMLInputError, read_yaml

PACKAGE = Path(__file__).resolve().parents[2] / "ocibuild"
READERS = ("yamlread.py", "yamldecode.py")
LOADS = ("load", "safe_load", "full_load", "unsafe_load", "load_all", "safe_load_all", "compose")


def laughs(levels: int, width: int = 10) -> bytes:
    """Nested aliases: `levels` anchors, each a list of `width` aliases of the one before."""
    lines = [b'a0: &a0 "lol"']
    lines += [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]".encode() for i in range(1, levels)
    ]
    return b"\n".join(lines) + b"\n"


BAD: dict[str, tuple[bytes, str]] = {
    "deep-flow": (b"[" * 300_000 + b"]" * 300_000, f"nested deeper than {MAX_DEPTH} levels"),
    "deep-unclosed": (b"[" * 300_000, f"nested deeper than {MAX_DEPTH} levels"),
    "deep-block": (
        b"".join(b" " * i + b"k:\n" for i in range(MAX_DEPTH + 2)) + b" " * 200 + b"v\n",
        f"nested deeper than {MAX_DEPTH} levels",
    ),
    "laughs": (laughs(9), "more than 1000000 values with its aliases expanded"),
    "not-yaml": (b"a: [1, 2\n", "not YAML"),
    "two-documents": (b"a: 1\n---\nb: 2\n", "not YAML"),
    "no-such-day": (b"a: 2001-02-30\n", "day is out of range for month"),
    "huge-integer": (b"a: 1" + b"0" * 5000 + b"\n", "a value it cannot hold (Exceeds the limit"),
    "empty-integer": (b"a: !!int ''\n", "a value it cannot hold (string index out of range)"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_the_reader_refuses_naming_the_document(case: str, tmp_path: Path) -> None:
    """In a process of its own: were the depth not checked first, libyaml's loader would not
    raise but crash the process."""
    data, message = BAD[case]
    (tmp_path / "doc.yaml").write_bytes(data)
    program = (
        "import sys\n"
        "from ocibuild.yamlread import YAMLInputError, read_yaml\n"
        "try:\n"
        "    read_yaml(open(sys.argv[1], 'rb').read(), 'doc.yaml')\n"
        "except YAMLInputError as e:\n"
        "    print(e)\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", program, str(tmp_path / "doc.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.startswith("doc.yaml: ") and message in ran.stdout, ran.stdout
    assert ran.stdout.count("\n") == 1


def test_the_reader_takes_what_yaml_allows() -> None:
    good = b"a: [1, 2.5, true, null, 'x']\nb: {c: [d, e]}\nf: &f [g]\nh: *f\n"
    assert read_yaml(good, "x") == yaml.safe_load(good)
    nested = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert read_yaml(nested, "x") == yaml.safe_load(nested)
    assert read_yaml(laughs(6), "x") == yaml.safe_load(laughs(6))  # 111,111 values


def test_the_alias_limit_is_a_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCIBUILD_MAX_YAML_NODES", "30")
    assert read_yaml(laughs(2), "x") is not None  # 2 + 1 + 10 + 1 values with the mapping
    with pytest.raises(YAMLInputError, match=r"x: more than 30 values .*OCIBUILD_MAX_YAML_NODES"):
        read_yaml(laughs(3), "x")


# what YAML is made of, and what a buildinfo holds: random documents of these pieces reach the
# parser's corners (flow and block nesting, anchors, tags, timestamps, huge numbers)
PIECES = st.sampled_from(
    [
        "[",
        "]",
        "{",
        "}",
        ", ",
        ": ",
        "- ",
        "\n",
        "  ",
        "&a ",
        "*a",
        "&b ",
        "*b",
        "? ",
        "'",
        '"',
        "!!binary ",
        "!!str ",
        "!!int ",
        "!!python/name:os.system ",
        "2001-02-30",
        "2001-02-03",
        "0x" + "f" * 5000,
        "1e999",
        "-.inf",
        "~",
        "null",
        "true",
        "x",
        "/opt/p",
        "\t",
        "#",
        "%YAML 1.1\n",
        "---\n",
        "...\n",
        "buildpath: ",
        "relative_prefix: ",
        "hash_to_prefix: ",
        "relocate_textfiles: ",
        "relocate_binaries: ",
        "relocate_links: ",
        "prefix_to_hash: ",
        "\xe9",
        "\ud800",
    ]
)
DOCUMENTS = st.lists(PIECES, max_size=60).map(
    lambda pieces: "".join(pieces).encode("utf-8", "surrogatepass")
)
VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=40,
)


@settings(max_examples=500)
@given(DOCUMENTS)
def test_any_document_is_a_value_or_one_refusal(data: bytes) -> None:
    """Whatever the bytes, the reader gives a value or a one-line YAMLInputError (no other
    exception), and a buildinfo is a BuildInfo or a one-line SourceError."""
    try:
        read_yaml(data, "doc.yaml")
    except YAMLInputError as e:
        assert str(e).startswith("doc.yaml: ") and "\n" not in str(e)
    try:
        assert isinstance(parse_buildinfo(data, "p.spack"), BuildInfo)
    except SourceError as e:
        assert str(e).startswith("p.spack: ") and "\n" not in str(e)


@settings(max_examples=200)
@given(VALUES, st.booleans())
def test_what_yaml_writes_reads_back_as_pyyaml_reads_it(value: object, flow: bool) -> None:
    data = yaml.safe_dump(value, default_flow_style=flow).encode()
    assert read_yaml(data, "x") == yaml.safe_load(data)


def yaml_loads(path: Path) -> list[str]:
    """`yaml.load`, `yaml.safe_load` and their kin: a YAML parse without the readers' checks."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "yaml"
            and node.func.attr in LOADS
        ):
            found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    return found


def test_no_yaml_is_loaded_outside_the_readers() -> None:
    loads = [
        load
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name not in READERS
        for load in yaml_loads(path)
    ]
    assert loads == []


def test_the_guard_sees_them() -> None:
    bad = PACKAGE / "_yaml_guard_probe.py"
    try:
        bad.write_text("import yaml\n\ndef f(b):\n    return yaml.safe_load(b), yaml.load(b)\n")
        assert yaml_loads(bad) == ["ocibuild/_yaml_guard_probe.py:4"] * 2
    finally:
        bad.unlink()
