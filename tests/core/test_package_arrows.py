"""The package picture holds: the domain packages never import the layers above them, and
reading the recipe format does not load the sources, their domains, the store or the network."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ocibuild"
GROUND = ("oci", "layer", "store", "fetch", "ups", "ospkg", "remote")
ABOVE = (
    "ocibuild.sources",
    "ocibuild.recipe",
    "ocibuild.builder",
    "ocibuild.cli",
    "ocibuild.study",
)


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


@pytest.mark.parametrize("package", GROUND)
def test_ground_floor_packages_import_nothing_above_them(package: str) -> None:
    files = sorted((PACKAGE / package).rglob("*.py"))
    assert files
    upward = {
        f"{path.relative_to(PACKAGE.parent)}: {module}"
        for path in files
        for module in imported_modules(path)
        if module.startswith(tuple(f"{a}." for a in ABOVE)) or module in ABOVE
    }
    assert upward == set()


def test_the_arrow_check_sees_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from ocibuild.sources.base import input_key\n")
    assert "ocibuild.sources.base" in imported_modules(bad)


def loaded_after(code: str) -> list[str]:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys\n{code}\n"
            "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('ocibuild'))))",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=PACKAGE.parent,
    )
    return out.stdout.split()


def test_importing_the_recipe_package_loads_at_most_15_modules() -> None:
    modules = loaded_after("import ocibuild.recipe")
    assert "ocibuild.recipe" in modules
    assert len(modules) <= 15, modules


def test_reading_a_recipe_loads_spec_types_but_no_source() -> None:
    recipes = PACKAGE.parent / "recipes"
    modules = loaded_after(
        f"from ocibuild.recipe import load_recipe\nload_recipe({str(recipes / 'art-1.18.yaml')!r})"
    )
    assert "ocibuild.sources.specs" in modules
    assert not [m for m in modules if m.startswith(("ocibuild.sources.ups", "ocibuild.store"))]
    assert not [m for m in modules if m.startswith(("ocibuild.fetch", "ocibuild.ospkg"))]
    assert len(modules) <= 25, modules
