"""The package picture holds (docs/design.md): every import points to a lower floor, and
reading the recipe format does not load the sources, their domains, the store or the network."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ocibuild"

# docs/design.md's picture, floor by floor: a unit (a package or a top-level module of
# ocibuild) imports only units of lower floors
FLOORS: dict[str, int] = {
    **dict.fromkeys(
        ("errors", "atomicfile", "infile", "variables", "secrets", "progress", "cputime", "heap", "decoders", "__init__"),
        0,
    ),
    "limits": 1,
    **dict.fromkeys(("jsonread", "yamlread"), 2),
    **dict.fromkeys(("outpath", "oci", "net", "sbom", "signing"), 3),
    **dict.fromkeys(("yamldecode", "compression", "trust"), 4),
    **dict.fromkeys(("layer", "fetch"), 5),
    **dict.fromkeys(("ups", "ospkg", "store", "python"), 6),
    **dict.fromkeys(("remote", "spack"), 7),
    "sources": 8,
    "recipe": 9,
    **dict.fromkeys(("builder", "study"), 10),
    "cli": 11,
    "__main__": 12,
}  # fmt: skip


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def unit_of(module: str) -> str:
    """`ocibuild.sources.ups` -> `sources`; `ocibuild.errors` -> `errors`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_unit_has_a_floor() -> None:
    units = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()}
    units = {u for u in units if u not in ("py", "__pycache__") and not u.startswith(".")}
    units = {u for u in units if (PACKAGE / u).is_dir() or (PACKAGE / f"{u}.py").is_file()}
    assert units - set(FLOORS) == set(), "give the new unit a floor here and in docs/design.md"


@pytest.mark.parametrize("unit", sorted(FLOORS))
def test_imports_point_down(unit: str) -> None:
    path = PACKAGE / unit
    files = sorted(path.rglob("*.py")) if path.is_dir() else [PACKAGE / f"{unit}.py"]
    upward = {
        f"{file.relative_to(PACKAGE.parent)}: {module} (floor {FLOORS[unit_of(module)]})"
        for file in files
        for module in imported_modules(file)
        if module.startswith("ocibuild.")
        and unit_of(module) != unit
        and FLOORS[unit_of(module)] >= FLOORS[unit]
    }
    assert upward == set(), f"{unit} is on floor {FLOORS[unit]}"


def test_the_arrow_check_sees_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from ocibuild.sources.base import input_key\n")
    assert "ocibuild.sources.base" in imported_modules(bad)
    assert FLOORS[unit_of("ocibuild.sources.base")] > FLOORS["store"]


def loaded_after(code: str) -> list[str]:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys\n{code}\n"
            "print('\\n'.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('ocibuild', 'requests', 'urllib3', 'rich', 'zstandard', 'isal', 'indexed_bzip2'))))",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=PACKAGE.parent,
    )
    return out.stdout.split()


# what reading a recipe must not load: no source's module, no domain beyond the name checks the
# spec types run (ups.names, ups.layering), no store, no downloads, no network, no compressor
NOT_FOR_RECIPES = (
    "ocibuild.sources.files",
    "ocibuild.sources.ups",
    "ocibuild.sources.deb",
    "ocibuild.sources.rpm",
    "ocibuild.sources.base",
    "ocibuild.sources.session",
    "ocibuild.ups.database",
    "ocibuild.ups.tarball",
    "ocibuild.spack.cache",
    "ocibuild.spack.tarball",
    "ocibuild.ospkg",
    "ocibuild.python",
    "ocibuild.store",
    "ocibuild.fetch",
    "ocibuild.net",
    "ocibuild.remote",
    "ocibuild.builder",
    "requests",
    "urllib3",
    "rich",
    "zstandard",
    "isal",
    "indexed_bzip2",
)


def test_reading_a_recipe_loads_the_spec_types_and_nothing_heavy() -> None:
    recipes = PACKAGE.parent / "recipes"
    modules = loaded_after(
        f"from ocibuild.recipe import load_recipe\nload_recipe({str(recipes / 'art-1.18.yaml')!r})"
    )
    assert {"ocibuild.sources.registry", "ocibuild.sources.specs"} <= set(modules)
    assert [m for m in modules if m.startswith(NOT_FOR_RECIPES)] == []


def test_the_recipe_check_sees_a_heavy_import() -> None:
    modules = loaded_after("import ocibuild.sources.base")
    assert [m for m in modules if m.startswith(NOT_FOR_RECIPES)]
