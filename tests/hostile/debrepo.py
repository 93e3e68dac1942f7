"""Hostile .deb files and a file:// apt repository of them, written byte by byte (no dpkg-deb:
it refuses to pack what these packages hold)."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

from tests.hostile.conftest import Member, tar_bytes


def deb_bytes(control: dict[str, str], members: list[Member], data: bytes | None = None) -> bytes:
    fields = {"Version": "1.0", "Architecture": "amd64", "Description": "hostile", **control}
    text = "".join(f"{k}: {v}\n" for k, v in fields.items()).encode()
    control_tar = io.BytesIO()
    with tarfile.open(fileobj=control_tar, mode="w:gz") as tar:
        info = tarfile.TarInfo("./control")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
    payload = data if data is not None else tar_bytes([("./", tarfile.DIRTYPE, "", b""), *members])
    parts = [
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", control_tar.getvalue()),
        ("data.tar", payload),
    ]
    out = bytearray(b"!<arch>\n")
    for name, content in parts:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(content):<10}`\n".encode()
        out += content + (b"\n" if len(content) % 2 else b"")
    return bytes(out)


def apt_repo(root: Path, debs: dict[str, bytes], fields: dict[str, dict[str, str]]) -> str:
    """A repository at `root` (suite `test`, component `main`) of `debs` (file name -> bytes),
    indexed with `fields` (file name -> Packages fields); returns its file:// URL."""
    pool = root / "pool"
    pool.mkdir(parents=True)
    paragraphs = []
    for name, data in debs.items():
        (pool / name).write_bytes(data)
        entry = {
            "Version": "1.0",
            "Architecture": "amd64",
            **fields[name],
            "Filename": f"pool/{name}",
            "Size": str(len(data)),
            "SHA256": hashlib.sha256(data).hexdigest(),
        }
        paragraphs.append("".join(f"{k}: {v}\n" for k, v in entry.items()))
    packages = "\n".join(paragraphs).encode()
    index = root / "dists" / "test" / "main" / "binary-amd64"
    index.mkdir(parents=True)
    (index / "Packages").write_bytes(packages)
    digest = hashlib.sha256(packages).hexdigest()
    (root / "dists" / "test" / "Release").write_text(
        "Suite: test\nArchitectures: amd64\nComponents: main\nSHA256:\n"
        f" {digest} {len(packages)} main/binary-amd64/Packages\n"
    )
    return root.as_uri()


def deb_recipe(url: str, package: str) -> str:
    return (
        "images:\n"
        "  - name: a/deb\n"
        "    layers:\n"
        "      - deb:\n"
        f"          repos: [{{url: {url!r}, suite: test, components: [main], trusted: true}}]\n"
        f"          packages: [{package!r}]\n"
    )
