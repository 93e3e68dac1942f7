"""The base image's rpm database: a real one written by rpm (sqlite), the same packages in a
Berkeley DB hash file written by libdb 5.3 and checked with rpm's own bdb_ro reader, and an rpm
layer built on a base image carrying the database."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import struct
import subprocess
from pathlib import Path

import pytest

from ocibuild.builder import BuildSettings, build_recipe
from ocibuild.errors import SourceError
from ocibuild.ospkg.rpmdb import read_rpmdb
from ocibuild.ospkg.rpmresolve import InstalledRpm
from ocibuild.store import Store
from ocibuild.store.rootfs import ImageFS
from tests.events import Events
from tests.ospkg.conftest import RpmRepo

SQLITE = "var/lib/rpm/rpmdb.sqlite"
BDB = "var/lib/rpm/Packages"

# Only in the base image, in no repository: its file and Provides must come from the database.
# Its many Provides make a header that spans several Berkeley DB overflow pages.
BASEONLY_SPEC = """\
Name: baseonly
Epoch: 2
Version: 1.5
Release: 3
Summary: ocibuild test package installed in a base image only
License: BSD
BuildArch: noarch
AutoReqProv: no
Provides: docs-common = 0.1-1
{provides}

%description
Test package.

%install
mkdir -p %{{buildroot}}/usr/bin
printf '#!/bin/sh\\n' > %{{buildroot}}/usr/bin/gamma-tool

%files
/usr/bin/gamma-tool
"""

# Debian's python3 has dbm.ndbm on Berkeley DB 5.3 (the libdb of CentOS 7 and RHEL 8): a hash
# database keyed by the record number in native order, record 0 holding rpm's counter.
WRITE_BDB = """\
import dbm.ndbm, sqlite3, struct, sys
rows = sqlite3.connect(sys.argv[1]).execute("SELECT hnum, blob FROM Packages").fetchall()
db = dbm.ndbm.open(sys.argv[2], "n")
db[struct.pack("<I", 0)] = struct.pack("<I", max(h for h, _ in rows) + 1)
for hnum, blob in rows:
    db[struct.pack("<I", hnum)] = bytes(blob)
db.close()
"""


def rpm(root: Path, *args: str) -> str:
    cmd = ["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def base_root(rpm_repo: RpmRepo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with `delta` (from the test repository) and `baseonly` installed by rpm."""
    work = tmp_path_factory.mktemp("rpmdb")
    spec = work / "baseonly.spec"
    provides = "\n".join(f"Provides: baseonly-capability-number-{i} = 1" for i in range(400))
    spec.write_text(BASEONLY_SPEC.format(provides=provides))
    subprocess.run(
        ["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {work / 'build'}", str(spec)],
        check=True,
        capture_output=True,
    )
    (baseonly,) = (work / "build" / "RPMS").rglob("*.rpm")
    root = work / "root"
    rpm(root, "--initdb")
    rpm(root, "--nodeps", "--noscripts", "-i", str(rpm_repo.rpm("delta-1.0-1.noarch.rpm")))
    rpm(root, "--nodeps", "--noscripts", "-i", str(baseonly))
    return root


@pytest.fixture(scope="module")
def bdb_file(base_root: Path) -> Path:
    out = base_root.parent / "bdb"
    out.mkdir()
    subprocess.run(
        ["/usr/bin/python3", "-c", WRITE_BDB, str(base_root / SQLITE), str(out / "Packages")],
        check=True,
    )
    (out / "Packages.db").rename(out / "Packages")  # ndbm names the file *.db
    return out / "Packages"


def described(packages: list[InstalledRpm]) -> list[tuple[str, str, str, set[str], set[str]]]:
    return [(p.name, p.evr, p.arch, {str(c) for c in p.provides}, set(p.files)) for p in packages]


def rpm_says(root: Path, dbpath: str = "/var/lib/rpm", *define: str) -> list[tuple]:  # type: ignore[type-arg]
    """What rpm itself lists of the database: NEVRA, Provides and files of each package."""
    fmt = (
        "@%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH}\n[P%{PROVIDENEVRS}\n][F%{FILENAMES}\n]"
    )
    cmd = ["rpm", "--root", str(root), "--dbpath", dbpath, *define, "-qa", "--qf", fmt]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    found = []
    for package in out.split("@")[1:]:
        head, *lines = package.splitlines()
        name, evr, arch = head.split()
        provides = {line[1:] for line in lines if line.startswith("P")}
        files = {line[1:] for line in lines if line.startswith("F")}
        found.append((name, evr.removeprefix("0:"), arch, provides, files))
    return sorted(found)


def test_the_sqlite_database_lists_what_rpm_lists(base_root: Path) -> None:
    packages = read_rpmdb({SQLITE: (base_root / SQLITE).read_bytes()})
    assert [p.name for p in packages] == ["baseonly", "delta"]
    assert packages[0].evr == "2:1.5-3"
    assert "docs-common = 0.1-1" in {str(c) for c in packages[0].provides}
    assert packages[0].files == {"/usr/bin/gamma-tool"}
    assert described(packages) == rpm_says(base_root)


def test_changes_still_in_the_write_ahead_log_count(base_root: Path, tmp_path: Path) -> None:
    db = tmp_path / "rpmdb.sqlite"
    shutil.copy(base_root / SQLITE, db)
    with contextlib.closing(sqlite3.connect(db)) as conn:  # closing would checkpoint the log
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("DELETE FROM Packages WHERE hnum = (SELECT min(hnum) FROM Packages)")
        conn.commit()
        files = {
            SQLITE: db.read_bytes(),
            SQLITE + "-wal": (tmp_path / "rpmdb.sqlite-wal").read_bytes(),
        }
    assert len(read_rpmdb({SQLITE: files[SQLITE]})) == 2
    assert [p.name for p in read_rpmdb(files)] == ["baseonly"]  # delta went in first


def test_the_berkeley_db_file_reads_as_the_sqlite_one(base_root: Path, bdb_file: Path) -> None:
    # rpm's own read-only Berkeley DB backend reads the file (it warns of the missing indexes)
    assert rpm_says(Path("/"), str(bdb_file.parent), "--define", "_db_backend bdb_ro") == (
        rpm_says(base_root)
    )
    data = bdb_file.read_bytes()
    pagesize = struct.unpack_from("<I", data, 20)[0]
    pages = [data[i : i + pagesize] for i in range(0, len(data), pagesize)]
    chained = [p for p in pages if p[25] == 7 and struct.unpack_from("<I", p, 16)[0]]
    assert chained, "the test needs a header spanning several overflow pages"
    from_bdb = read_rpmdb({BDB: data})
    assert described(from_bdb) == described(read_rpmdb({SQLITE: (base_root / SQLITE).read_bytes()}))
    assert read_rpmdb({BDB: data, SQLITE: (base_root / SQLITE).read_bytes()}) == from_bdb


def test_malformed_databases_are_clear_errors(bdb_file: Path) -> None:
    data = bdb_file.read_bytes()
    pagesize = struct.unpack_from("<I", data, 20)[0]
    with pytest.raises(SourceError, match=r"^/var/lib/rpm/Packages: truncated Berkeley DB file"):
        read_rpmdb({BDB: data[: 2 * pagesize]})
    with pytest.raises(SourceError, match="not a Berkeley DB hash database"):
        read_rpmdb({BDB: bytes(4096)})
    looped = bytearray(data)  # an overflow page whose chain points back at itself
    for pgno in range(1, len(data) // pagesize):
        page = pgno * pagesize
        if data[page + 25] == 7 and struct.unpack_from("<I", data, page + 16)[0]:
            struct.pack_into("<I", looped, page + 16, pgno)
            break
    with pytest.raises(SourceError, match=r"^/var/lib/rpm/Packages: page \d+: broken overflow"):
        read_rpmdb({BDB: bytes(looped)})
    with pytest.raises(SourceError, match=r"^/var/lib/rpm/rpmdb.sqlite: not a readable rpm"):
        read_rpmdb({SQLITE: b"SQLite format 3\0" + bytes(4096)})
    assert read_rpmdb({}) == []


RECIPE = """\
images:
  - name: localhost/ocibuild-test/rpmdb:1
    layers:
      - files:
          - {{src: {db}, dest: /var/lib/rpm/rpmdb.sqlite}}
          - {{content: "root:x:0:0:root:/root:/bin/sh\\n", dest: /etc/passwd}}
          - {{content: "root:x:0:\\n", dest: /etc/group}}
      - rpm: {{repos: [{{url: "{repo}", gpgkey: "{key}"}}], packages: [alpha]}}
"""


def test_an_rpm_layer_skips_what_the_base_database_has(
    base_root: Path, rpm_repo: RpmRepo, tmp_path: Path
) -> None:
    # alpha needs beta (-> docs-common), /usr/bin/gamma-tool (gamma), delta-api >= 3 (delta) and
    # /bin/sh (minishell); the base has delta, and baseonly's file and Provides stand for gamma
    # and docs-common
    db = tmp_path / "rpmdb.sqlite"
    shutil.copy(base_root / SQLITE, db)
    recipe = tmp_path / "rpmdb.yaml"
    recipe.write_text(RECIPE.format(db=db, repo=rpm_repo.url, key=rpm_repo.key.public))
    store = Store.open(tmp_path / "store")
    events = Events()
    (built,) = build_recipe(
        recipe,
        store,
        BuildSettings(cache_dir=tmp_path / "cache"),
        events,
    )
    assert "rpm: 2 packages already in the base image (rpm database)" in events.messages()
    image = ImageFS(store, built.manifest.layers)
    record = json.loads(image.read("var/lib/ocibuild/packages.json") or b"")
    # without the database: also delta, docs-common and gamma
    assert [p["name"] for p in record["packages"]] == ["alpha", "beta", "minishell"]
    files = image.collect(lambda p: p.startswith(("usr/share/", "usr/bin/")))
    assert not any(p.startswith(("usr/share/delta", "usr/share/doc/docs-common")) for p in files)
    assert "usr/bin/gamma-tool" not in files
