"""Research prototype (not the exporter): write into a podman-hpc squash store, by hand, the
records `podman-hpc migrate` would leave for an image of an ocibuild store, as
docs/podman-hpc-layout.md specifies them, so that podman-hpc can run an image it has never seen.
It is what the experiments of that document ran; ocibuild's exporter is to be written properly
(streaming, atomic, locked, tested) from the spec, not from this.

    python3 handmade_store.py STORE REF SQUASH_DIR [--squashfs FILE] [--omit WHAT ...]

--squashfs: the image's squashfs (else `ocibuild export --format squashfs` writes one).
--omit: leave a record out, for the minimal-set experiments: tar-split, uidset, lock-files,
  big-data-names, sizes, digests (both), compressed-digest, metadata, names-history, created,
  layer-created, signature,
  manifest-key, manifest-digest-key, parents (the image's top layer only), link-symlink,
  diff-dir, lower-layers (no records for the layers under the top one), ...; --lower-files
writes `lower` files as podman's own graph root has them (migrate does not copy them).
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import gzip
import hashlib
import io
import json
import os
import random
import string
import subprocess
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path

POLY = 0xD800000000000000  # Go hash/crc64 ISO, reflected
_T = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ POLY if _c & 1 else _c >> 1
    _T.append(_c)


def crc64(data: bytes) -> bytes:
    c = 0xFFFFFFFFFFFFFFFF
    for b in data:
        c = _T[(c ^ b) & 0xFF] ^ (c >> 8)
    return (c ^ 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")


def tar_split(raw: bytes) -> tuple[bytes, list[int], list[int]]:
    """tar-split's JSON lines (storage/asm.NewInputTarStream) for an uncompressed layer tar,
    and its sorted uid and gid sets. Segments are every byte the tar reader reads that is not
    file content (headers, PAX/GNU records, padding, the end blocks); files carry crc64 ISO."""
    lines: list[dict] = []
    pos = 0
    uids: set[int] = set()
    gids: set[int] = set()
    consumed = 0
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tf:
        for m in tf:
            # raw bytes from the end of the previous entry's data to the start of this one's
            seg = raw[consumed : m.offset_data]
            lines.append({"type": 2, "payload": base64.b64encode(seg).decode(), "position": pos})
            pos += 1
            entry: dict = {
                "type": 1,
                "name": m.name + ("/" if m.isdir() and not m.name.endswith("/") else ""),
            }
            data = raw[m.offset_data : m.offset_data + m.size] if m.isreg() else b""
            if m.size and m.isreg():
                entry["size"] = m.size
                entry["payload"] = base64.b64encode(crc64(data)).decode()
            else:
                entry["payload"] = None
            entry["position"] = pos
            pos += 1
            lines.append(entry)
            consumed = m.offset_data + (m.size if m.isreg() else 0)
            uids.add(m.uid)
            gids.add(m.gid)
    lines.append({"type": 2, "payload": base64.b64encode(raw[consumed:]).decode(), "position": pos})
    lines.append({"type": 2, "payload": "", "position": pos + 1})
    body = b"".join(json.dumps(e, separators=(",", ":")).encode() + b"\n" for e in lines)
    return body, sorted(uids), sorted(gids)


def go_time(dt: datetime) -> str:
    """RFC 3339 with nanoseconds, trailing zeros dropped, as Go's time.MarshalJSON."""
    s = dt.strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{dt.microsecond:06d}000".rstrip("0")
    return s + (f".{frac}" if frac else "") + "Z"


def random_link() -> str:
    """26 characters of base32's alphabet, as the overlay driver's generateID."""
    return "".join(random.choice(string.ascii_uppercase + "234567") for _ in range(26))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("store", type=Path)
    ap.add_argument("ref")
    ap.add_argument("squash_dir", type=Path)
    ap.add_argument("--squashfs", type=Path)
    ap.add_argument("--omit", nargs="*", default=[])
    ap.add_argument("--lower-files", action="store_true")
    ap.add_argument("--squash-at", choices=["top", "base"], default="top")
    a = ap.parse_args()
    omit = set(a.omit)
    store, sq = a.store, a.squash_dir

    index = json.loads((store / "index.json").read_text())
    desc = next(
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == a.ref
    )
    blob = lambda d: (store / "blobs" / d.replace(":", "/")).read_bytes()  # noqa: E731
    manifest_bytes = blob(desc["digest"])
    manifest = json.loads(manifest_bytes)
    config_bytes = blob(manifest["config"]["digest"])
    config = json.loads(config_bytes)
    image_id = manifest["config"]["digest"].split(":", 1)[1]
    manifest_digest = desc["digest"]
    created = config.get("created", "1970-01-01T00:00:00Z")
    now = go_time(datetime.now(UTC))

    for sub in ("overlay/l", "overlay-images", "overlay-layers"):
        (sq / sub).mkdir(parents=True, exist_ok=True)
    for kind in ("images", "layers"):
        lock = sq / f"overlay-{kind}/{kind}.lock"
        if "lock-files" not in omit and not lock.exists():
            lock.write_bytes(b"")
    # writers: fcntl (POSIX) write locks on both lock files, as containers/storage takes them
    locks = []
    for kind in ("layers", "images"):
        lock = sq / f"overlay-{kind}/{kind}.lock"
        if lock.exists():
            fd = os.open(lock, os.O_RDWR)
            fcntl.lockf(fd, fcntl.LOCK_EX)
            locks.append(fd)

    layers_json = sq / "overlay-layers/layers.json"
    images_json = sq / "overlay-images/images.json"
    layers = json.loads(layers_json.read_text() or "[]") if layers_json.exists() else []
    images = json.loads(images_json.read_text() or "[]") if images_json.exists() else []
    known = {rec["id"]: rec for rec in layers}

    parent = ""
    records = []
    links = {}
    for ld in manifest["layers"]:
        comp = blob(ld["digest"])
        mt = ld["mediaType"]
        if mt.endswith("+gzip"):
            raw, compression = gzip.decompress(comp), 2
        elif mt.endswith("+zstd"):
            raw = subprocess.run(
                ["zstd", "-dc"], input=comp, capture_output=True, check=True
            ).stdout
            compression = 4
        else:
            raw, compression = comp, 0
        diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
        layer_id = (
            diff_id[7:]
            if not parent
            else hashlib.sha256(f"{parent}+{diff_id[7:]}".encode()).hexdigest()
        )
        body, uids, gids = tar_split(raw)
        rec: dict = {"id": layer_id}
        if parent and "parents" not in omit:
            rec["parent"] = parent
        if "layer-created" not in omit:
            rec["created"] = now
        if "digests" not in omit and "compressed-digest" not in omit:
            rec["compressed-diff-digest"] = ld["digest"]
        if "sizes" not in omit:
            rec["compressed-size"] = len(comp)
        if "digests" not in omit:
            rec["diff-digest"] = diff_id
        if "sizes" not in omit:
            rec["diff-size"] = len(raw)
        if compression:
            rec["compression"] = compression
        if "uidset" not in omit:
            rec["uidset"] = uids
            rec["gidset"] = gids
        records.append((rec, body))
        parent = layer_id
    top = parent
    if "lower-layers" in omit:
        records = records[-1:]
        records[0][0].pop("parent", None)

    for rec, body in records:
        lid = rec["id"]
        d = sq / "overlay" / lid
        if lid in known:
            links[lid] = (d / "link").read_text()
            continue
        d.mkdir(parents=True, exist_ok=True)
        if "diff-dir" not in omit:
            (d / "diff").mkdir(exist_ok=True)
        link = random_link()
        (d / "link").write_text(link)
        links[lid] = link
        if "link-symlink" not in omit:
            os.symlink(f"../{lid}/diff", sq / "overlay/l" / link)
        if "tar-split" not in omit:
            with gzip.open(sq / "overlay-layers" / f"{lid}.tar-split.gz", "wb") as f:
                f.write(body)
    if a.lower_files:
        ids = [r["id"] for r, _ in records]
        for i, lid in enumerate(ids):
            if i:
                lowers = [f"l/{links[x]}" for x in reversed(ids[:i])]
                (sq / "overlay" / lid / "lower").write_text(":".join(lowers))

    # the image's squashfs, named after the top layer's link (or the base's, for the experiment)
    at = top if a.squash_at == "top" else records[0][0]["id"]
    target = sq / "overlay/l" / f"{links[at]}.squash"
    if not target.exists():
        if a.squashfs:
            data = a.squashfs.read_bytes()
            target.write_bytes(data)
        else:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "ocibuild",
                    "--store",
                    str(store),
                    "export",
                    a.ref,
                    "--format",
                    "squashfs",
                    "-o",
                    str(target),
                ],
                check=True,
                capture_output=True,
            )

    # image record and big data
    idir = sq / "overlay-images" / image_id
    idir.mkdir(exist_ok=True, mode=0o700)
    big: list[tuple[str, bytes]] = [(manifest["config"]["digest"], config_bytes)]
    if "manifest-digest-key" not in omit:
        big.append((f"manifest-{manifest_digest}", manifest_bytes))
    if "manifest-key" not in omit:
        big.append(("manifest", manifest_bytes))
    if "signature" not in omit:
        big.append((f"signature-{manifest_digest[7:]}", b""))

    def fname(key: str) -> str:
        ok = all(c == "." or c.isdigit() or ("a" <= c <= "z") for c in key)
        return key if ok else "=" + base64.b64encode(key.encode()).decode()

    for key, data in big:
        (idir / fname(key)).write_bytes(data)
    img: dict = {"id": image_id}
    if "manifest-digest" not in omit:
        img["digest"] = manifest_digest
    img["names"] = [a.ref]
    if "names-history" not in omit:
        img["names-history"] = [a.ref]
    img["layer"] = top
    if "metadata" not in omit:
        img["metadata"] = json.dumps(
            {"signatures-sizes": {manifest_digest: []}}, separators=(",", ":")
        )
    if "big-data-names" not in omit:
        img["big-data-names"] = [k for k, _ in big]
        img["big-data-sizes"] = {k: len(v) for k, v in big}
        img["big-data-digests"] = {k: "sha256:" + hashlib.sha256(v).hexdigest() for k, v in big}
    if "created" not in omit:
        img["created"] = created

    for rec, _ in records:
        if rec["id"] not in known:
            layers.append(rec)
    for other in images:  # a name belongs to one image only (else: ErrDuplicateImageNames)
        if other["id"] != image_id:
            other["names"] = [n for n in other.get("names", []) if n not in img["names"]]
    images = [i for i in images if i["id"] != image_id] + [img]

    def atomic(path: Path, obj: object) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)

    atomic(layers_json, layers)  # layers first: an image record never points at missing layers
    atomic(images_json, images)
    for fd in locks:  # Touch(): a new last-writer id, so running readers reload
        os.pwrite(fd, os.urandom(64), 0)
        os.close(fd)
    print(json.dumps({"image": image_id, "top": top, "squash": str(target.relative_to(sq))}))


if __name__ == "__main__":
    main()
