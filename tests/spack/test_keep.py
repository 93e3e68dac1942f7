"""A layer's small tarballs are parsed once: the first pass keeps their members and contents,
within one budget per layer, and the second pass takes them instead of reading the tarball
again. The entries are the same either way (the oracle test builds the image both ways)."""

from __future__ import annotations

import shutil
from pathlib import Path

from ocibuild.layer.entry import Entry
from ocibuild.spack.cache import parse_spec_file
from ocibuild.spack.layerjob import relocation
from ocibuild.spack.layout import InstallTree
from ocibuild.spack.tarball import KeepBudget, PackageTarball, layer_entries, scan
from tests.spack.conftest import UNSIGNED

BUILD_CACHE = UNSIGNED / "build_cache"
TREE = InstallTree("/opt/spack", 64)


def package(name: str, where: Path) -> PackageTarball:
    """The fixture package `name`'s tarball, copied to `where`."""
    spec_file = next(BUILD_CACHE.glob(f"*-{name}-*.spec.json"))
    spec = parse_spec_file(spec_file.read_bytes(), str(spec_file))
    source = next(BUILD_CACHE.rglob(f"*-{name}-*.spack"))
    copy = where / source.name
    shutil.copyfile(source, copy)
    return PackageTarball(spec.node, str(copy), copy, copy.stat().st_size, spec.checksum)


def entries(tarball: PackageTarball, keep: KeepBudget | None) -> list[tuple[object, ...]]:
    """The layer's entries, with their contents, from a scan made with `keep`."""
    prefixes = {tarball.node.hash: TREE.prefix(tarball.node)}
    found = scan(tarball, keep)
    move = relocation(tarball, found, TREE.prefix(tarball.node), TREE, prefixes)
    if keep is not None:
        tarball.path.write_bytes(b"")  # a second read of it would fail
    return [_content(e) for e in layer_entries([move], "opt/spack", 1)]


def _content(entry: Entry) -> tuple[object, ...]:
    data = entry.open().read() if entry.open is not None else b""
    return (entry.path, entry.kind, entry.mode, entry.link, entry.size, data)


def test_a_kept_tarball_is_not_read_again(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    read_twice = entries(package("xz-5.4.1", tmp_path / "a"), None)
    kept = entries(package("xz-5.4.1", tmp_path / "b"), KeepBudget())
    assert kept == read_twice
    assert len(kept) > 300


def test_one_budget_for_a_layer_and_what_does_not_fit_is_given_back(tmp_path: Path) -> None:
    zlib, xz = package("zlib-1.2.13", tmp_path), package("xz-5.4.1", tmp_path)
    zlib_bytes = sum(
        len(content)
        for _, content in (scan(zlib, KeepBudget()).kept.take() or [])  # type: ignore[union-attr]
    )
    budget = KeepBudget(zlib_bytes + 1000)
    assert scan(zlib, budget).kept is not None
    assert scan(xz, budget).kept is None  # xz's files are more than the 1000 bytes left
    assert budget.take(1000) and not budget.take(1)  # what xz took on the way was given back


def test_a_tarball_larger_than_what_is_left_is_not_kept_at_all(tmp_path: Path) -> None:
    """Its contents are more than its compressed bytes: not a byte of it is taken."""
    xz = package("xz-5.4.1", tmp_path)

    class Counted(KeepBudget):
        taken = 0

        def take(self, size: int) -> bool:
            self.taken += 1
            return super().take(size)

    small, large = Counted(xz.size - 1), Counted(xz.size)
    assert scan(xz, small).kept is None and small.taken == 0
    assert scan(xz, large).kept is None and large.taken > 0  # tried: its files are larger
