"""The synthetic build cache's tarballs, made at test time (tests/spack/fixtures/synthetic keeps
only what `spack buildcache push` wrote as text: index.json, the spec files, the environments'
locks). Each tarball is laid out as Spack writes one (`spack/util/archive.py`: gzip with mtime
0 of a PAX tar, every parent directory of the prefix first, the buildinfo last) and holds what
`spack install --fake` installs (empty `bin/<name>`, `include/<name>.h`, `lib/lib<name>.{a,so}`,
`man/man1/`) with the prefix's `.spack/spec.json`; each spec file's checksum is set to its
tarball's sha256."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

BUILD_ROOT = "/opt/spack-fake"
PADDED_LENGTH = 128


def _padded_root() -> str:
    from ocibuild.spack.layout import add_padding

    return add_padding(BUILD_ROOT, PADDED_LENGTH)


def write_synthetic_cache(src: Path, dest: Path) -> Path:
    """A copy of the build cache at `src` (index.json and spec files) in `dest`, with a tarball
    for every spec file; returns `dest`."""
    from ocibuild.spack.cache import parse_spec_file, tarball_url

    cache = dest / "build_cache"
    cache.mkdir(parents=True)
    for name in ("index.json", "index.json.hash"):
        shutil.copy(src / "build_cache" / name, cache / name)
    root = _padded_root()
    for spec_path in sorted((src / "build_cache").glob("*.spec.json")):
        doc = json.loads(spec_path.read_bytes())
        node = parse_spec_file(spec_path.read_bytes(), str(spec_path)).node
        relative = f"{node.arch}/{node.compiler}/{node.name}-{node.version}-{node.hash}"
        data = _tarball(
            f"{root}/{relative}".lstrip("/"),
            node.name,
            doc["spec"]["nodes"][0],
            root,
            relative,
            node.hash,
        )
        doc["binary_cache_checksum"]["hash"] = hashlib.sha256(data).hexdigest()
        (cache / spec_path.name).write_text(json.dumps(doc, indent=0, separators=(",", ":")))
        target = dest / tarball_url("", node).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return dest


def _tarball(
    prefix: str, name: str, node: dict[str, object], root: str, relative: str, hash_: str
) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        parts = prefix.split("/")
        for i in range(1, len(parts) + 1):
            _add(tar, "/".join(parts[:i]), tarfile.DIRTYPE)
        files = {
            ".spack/spec.json": json.dumps(
                {"spec": {"_meta": {"version": 4}, "nodes": [node]}}
            ).encode(),
            f"bin/{name}": b"",
            f"include/{name}.h": b"",
            f"lib/lib{name}.a": b"",
            f"lib/lib{name}.so": b"",
        }
        for directory in (".spack", "bin", "include", "lib", "man", "man/man1"):
            _add(tar, f"{prefix}/{directory}", tarfile.DIRTYPE)
            for path, data in sorted(files.items()):
                if path.rpartition("/")[0] == directory:
                    _add(tar, f"{prefix}/{path}", tarfile.REGTYPE, data)
        buildinfo = (
            f"sbang_install_path: {BUILD_ROOT}/bin/sbang\nbuildpath: {root}\n"
            f"spackprefix: /work/spack\nrelative_prefix: {relative}\nrelocate_textfiles: []\n"
            f"relocate_binaries: []\nrelocate_links: []\nhardlinks_deduped: true\n"
            f"hash_to_prefix:\n  {hash_}: {root}/{relative}\n"
        ).encode()
        _add(tar, f"{prefix}/.spack/binary_distribution", tarfile.REGTYPE, buildinfo)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _add(tar: tarfile.TarFile, name: str, kind: bytes, data: bytes = b"") -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
