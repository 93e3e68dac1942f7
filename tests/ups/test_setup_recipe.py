"""`setup:` in a recipe, end to end through `ocibuild recipe`: a products tree copied in with a
`files:` layer; missing products refused as the real setup refuses them, or warned about
(`missing: warn`), and the table lines the Env cannot hold warned about once per build and
counted in the build summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocibuild.cli import main

F = "Linux64bit+3.10-2.17"
TABLE = """\
File=Table
Product=app
Group:
Flavor=ANY
Qualifiers=""
Common:
  Action=setup
    setupEnv()
    prodDir()
    pathPrepend(PATH, ${UPS_PROD_DIR}/bin)
    addAlias(app, ${UPS_PROD_DIR}/bin/app -v)
    setupRequired( nosuch v1_0 )
    envSet(APP_AFTER, yes)
End:
"""


def products(root: Path) -> Path:
    db = root / "products"
    (db / ".upsfiles").mkdir(parents=True)
    (db / ".upsfiles/dbconfig").write_text("FILE = DBCONFIG\nPROD_DIR_PREFIX = ${UPS_THIS_DB}\n")
    (db / "app/v1/ups").mkdir(parents=True)
    (db / "app/v1/ups/app.table").write_text(TABLE)
    (db / "app/v1.version").mkdir()
    (db / f"app/v1.version/{F}_").write_text(
        f'FILE = version\nPRODUCT = app\nVERSION = v1\n\nFLAVOR = {F}\nQUALIFIERS = ""\n'
        "  PROD_DIR = app/v1\n  UPS_DIR = ups\n  TABLE_FILE = app.table\n"
    )
    return db


def recipe(root: Path, missing: str | None) -> Path:
    extra = f", missing: {missing}" if missing else ""
    images = "".join(
        f"  - name: example.org/app/{name}:1\n"
        "    from: example.org/app/base:1\n"
        f"    setup: {{product: app, version: v1{extra}}}\n"
        for name in ("one", "two")
    )
    path = root / "r.yaml"
    path.write_text(
        "images:\n"
        "  - name: example.org/app/base:1\n"
        "    layers:\n      - files: [{src: products, dest: /products}]\n"
        "    env: {PATH: /usr/bin:/bin}\n" + images
    )
    return path


def test_missing_warn_and_lines_not_frozen_in_the_build_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    products(tmp_path)
    store = tmp_path / "store"
    assert main(["--store", str(store), "-v", "recipe", str(recipe(tmp_path, "warn"))]) == 0
    err = capsys.readouterr().err
    assert err.count("app.table:11: addAlias(app, ${UPS_PROD_DIR}/bin/app -v): not in the") == 1
    refused = 'app.table:12: ERROR: Action parsing failed on "setupRequired( nosuch v1_0 )"'
    assert err.count(refused) == 1
    assert err.count("the real setup is refused; missing: warn goes on without") == 1
    summaries = [line for line in err.splitlines() if line.startswith("built example.org/app/")]
    assert [("1 UPS table line not in the Env" in s) for s in summaries] == [False, True, True]
    capsys.readouterr()
    assert main(["--store", str(store), "inspect", "--config", "example.org/app/two:1"]) == 0
    config = json.loads(capsys.readouterr().out)
    env = dict(e.split("=", 1) for e in config.get("config", config)["Env"])
    assert env["APP_AFTER"] == "yes"
    assert env["PATH"] == "/products/app/v1/bin:/usr/bin:/bin"
    assert env["SETUP_APP"] == f"app v1 -f {F} -z /products"
    assert "SETUP_NOSUCH" not in env


def test_missing_products_are_refused_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    products(tmp_path)
    assert main(["--store", str(tmp_path / "s"), "-q", "recipe", str(recipe(tmp_path, None))]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and "/r.yaml:8:12: setup app v1: " in line
    assert (
        '/products/app/v1/ups/app.table:12: ERROR: Action parsing failed on "setupRequired( '
        'nosuch v1_0 )": the real setup is refused' in line
    )
    assert "Found no match for product 'nosuch'" in line and "missing: warn" in line


def test_missing_takes_refuse_or_warn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    products(tmp_path)
    assert main(["--store", str(tmp_path / "s"), "recipe", str(recipe(tmp_path, "maybe"))]) == 1
    err = capsys.readouterr().err
    assert "r.yaml:8:" in err and "missing: expected one of ups, refuse, warn, got 'maybe'" in err
