"""A small apt repository made in the tests: .debs built by the real `dpkg-deb`, plus one
hand-made .deb whose payload tries to escape the root; indexes and Release written here, the
Release signed by the real `gpg` (InRelease and Release.gpg) with a test key."""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import subprocess
import tarfile
from pathlib import Path

from tests.ospkg.signing import SigningKey

DEBS: dict[str, dict[str, object]] = {
    "app_1.0": {
        "control": {
            "Pre-Depends": "base-thing",
            "Depends": "libfoo (>= 1.0) | libbar, virt-thing",
            "Description": "an application\n with a long description",
        },
        "files": {
            "usr/bin/app": (b"#!/bin/sh\necho app\n", 0o755),
            "etc/app.conf": (b"setting=1\n", 0o644),
            "usr/share/app/a": (b"linked\n", 0o644),
        },
        "symlinks": {"usr/bin/app-link": "app"},
        "hardlinks": {"usr/share/app/b": "usr/share/app/a"},
        "conffiles": ["/etc/app.conf"],
        "scripts": {"postinst": "#!/bin/sh\nexit 0\n"},
    },
    "libfoo_0.9": {"files": {"usr/lib/libfoo.so.0": (b"old\n", 0o644)}},
    "libfoo_1.2": {"files": {"usr/lib/libfoo.so.1": (b"new\n", 0o644)}},
    "libbar_1.0": {"files": {"usr/lib/libbar.so.1": (b"bar\n", 0o644)}},
    "provider_1.0": {
        "control": {"Provides": "virt-thing"},
        "files": {"usr/share/provider": (b"p\n", 0o644)},
    },
    "base-thing_1.0": {
        "files": {"usr/share/base-thing": (b"b\n", 0o644)},
        "scripts": {"preinst": "#!/bin/sh\n"},
    },
    "clash-x_1.0": {"files": {"etc/clash": (b"x\n", 0o644)}},
    "clash-y_1.0": {"files": {"etc/clash": (b"y\n", 0o644)}},
    "same-x_1.0": {"files": {"usr/share/same": (b"same\n", 0o644), "usr/share/x": (b"x\n", 0o644)}},
    "same-y_1.0": {"files": {"usr/share/same": (b"same\n", 0o644), "usr/share/y": (b"y\n", 0o644)}},
}


def build_deb(work: Path, name: str, version: str, spec: dict[str, object]) -> Path:
    root = work / f"{name}_{version}"
    (root / "DEBIAN").mkdir(parents=True)
    control = {
        "Package": name,
        "Version": version,
        "Architecture": "amd64",
        "Maintainer": "ocibuild tests <tests@example.org>",
        "Description": f"test package {name}",
        **spec.get("control", {}),  # type: ignore[dict-item]
    }
    (root / "DEBIAN" / "control").write_text("".join(f"{k}: {v}\n" for k, v in control.items()))
    for path, (data, mode) in spec.get("files", {}).items():  # type: ignore[attr-defined]
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(mode)
    for path, link in spec.get("symlinks", {}).items():  # type: ignore[attr-defined]
        (root / path).symlink_to(link)
    for path, target in spec.get("hardlinks", {}).items():  # type: ignore[attr-defined]
        (root / path).hardlink_to(root / target)
    if spec.get("conffiles"):
        (root / "DEBIAN" / "conffiles").write_text("".join(f"{c}\n" for c in spec["conffiles"]))  # type: ignore[attr-defined]
    for script, text in spec.get("scripts", {}).items():  # type: ignore[attr-defined]
        (root / "DEBIAN" / script).write_text(text)
        (root / "DEBIAN" / script).chmod(0o755)
    out = work / f"{name}_{version}_amd64.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(out)],
        check=True,
        capture_output=True,
    )
    return out


def escaping_deb(path: Path) -> None:
    """A .deb whose data.tar holds `./../escaped`: what dpkg-deb would never build."""

    def tar_gz(members: dict[str, bytes]) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    control = b"Package: evil\nVersion: 1.0\nArchitecture: amd64\nDescription: escapes\n"
    members = [
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", tar_gz({"./control": control})),
        ("data.tar.gz", tar_gz({"./usr/share/ok": b"ok\n", "./../escaped": b"evil\n"})),
    ]
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        out += data + (b"\n" if len(data) % 2 else b"")
    path.write_bytes(bytes(out))


def make_apt_repo(root: Path, key: SigningKey) -> None:
    pool = root / "pool" / "main"
    pool.mkdir(parents=True)
    work = root.parent / "debs"
    debs = [build_deb(work, *key.split("_"), spec) for key, spec in DEBS.items()]
    evil = work / "evil_1.0_amd64.deb"
    escaping_deb(evil)
    paragraphs = []
    for deb in [*debs, evil]:
        (pool / deb.name).write_bytes(deb.read_bytes())
        fields = subprocess.run(
            ["dpkg-deb", "-f", str(deb)], check=True, capture_output=True, text=True
        ).stdout
        data = deb.read_bytes()
        paragraphs.append(
            fields.rstrip("\n")
            + f"\nFilename: pool/main/{deb.name}\nSize: {len(data)}\n"
            + f"SHA256: {hashlib.sha256(data).hexdigest()}\n"
        )
    packages = "\n".join(paragraphs).encode()
    index_dir = root / "dists" / "test" / "main" / "binary-amd64"
    index_dir.mkdir(parents=True)
    written = {
        "Packages": packages,
        "Packages.gz": gzip.compress(packages, mtime=0),
        "Packages.xz": lzma.compress(packages),
    }
    for name, data in written.items():
        (index_dir / name).write_bytes(data)
    write_release(root / "dists" / "test")
    sign_release(root / "dists" / "test", key)


def write_release(suite: Path, fields: str = "") -> None:
    """`suite`/Release listing the indexes under it by SHA256 (`fields`: more header lines)."""
    lines = []
    for index in sorted(suite.glob("*/binary-*/Packages*")):
        data = index.read_bytes()
        name = index.relative_to(suite).as_posix()
        lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data)} {name}")
    release = (
        "Origin: ocibuild tests\nLabel: ocibuild tests\nSuite: test\nCodename: test\n"
        "Date: Sat, 01 Jan 2022 00:00:00 UTC\n"
        f"{fields}Architectures: amd64\nComponents: main\nSHA256:\n"
    )
    (suite / "Release").write_text(release + "\n".join(lines) + "\n")


def sign_release(suite: Path, key: SigningKey) -> None:
    """InRelease (clearsigned) and Release.gpg (detached, armored) of `suite`/Release."""
    key.clearsign(suite / "Release", suite / "InRelease")
    key.detach_sign(suite / "Release", suite / "Release.gpg")
