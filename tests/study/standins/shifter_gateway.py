#!/usr/bin/env python3
"""TEST DOUBLE, NOT SHIFTER: a stand-in for NERSC Shifter's image gateway (`imagegw`), which
cannot run on the test machines. Standard library only; loopback only.

What it does the way the gateway does it:

- a docker pull (`shifterimg pull docker:HOST:PORT/REPO:TAG`, run in process by the stand-in
  `shifterimg`): what the gateway's `dockerv2.py` does. It GETs `/v2/REPO/manifests/TAG` with no
  Accept header, requires schema 1 with fsLayers, history and signatures, checks the digest the
  registry announces against the signed payload (`formatLength`, `formatTail`), chains the
  layers through their v1Compatibility `id`/`parent`, downloads and checks every layer, expands
  them eldest first (whiteouts applied, `dev/*` left out), and takes Env, Entrypoint, Cmd and
  WorkingDir from the youngest v1Compatibility. Only registries named `HOST:PORT` (plain HTTP on
  loopback) are known.
- an import (`serve`): an HTTP server on 127.0.0.1 with `POST /api/doimport/SYSTEM/custom/TAG/`
  (body `{"filepath": ..., "format": "squashfs"}`, header `authentication:` a munge credential,
  checked with `unmunge`) and `GET /api/lookup/SYSTEM/TYPE/TAG/`, answering records of the
  gateway's form (id, system, itype, tag, status, ENV, ENTRY, WORKDIR, ...). An import copies the
  squashfs into the image store, as the gateway copies it to its shared location: the answer
  says PENDING, and lookups say READY once the copy is done.

Images live under $SHIFTER_STANDIN_IMAGES: docker/KEY/ (the expanded tree) and custom/KEY.squashfs,
each with KEY.json (the record) beside it. The stand-in `shifter` runs them with ch-run. What
it cannot show: the gateway's mksquashfs of pulled images, its queue and workers, per-node loop
mounts, and running jobs as the invoking user.

    python3 shifter_gateway.py --images DIR --system cori [--munge-socket SOCKET]
prints `http://127.0.0.1:PORT` and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
# What Shifter's runtime provides in every container, and ch-run wants to bind onto.
BIND_DIRS = ("dev", "proc", "sys", "tmp", "mnt", "home")
BIND_FILES = ("etc/passwd", "etc/group", "etc/hosts", "etc/resolv.conf")


class GatewayError(Exception):
    pass


def images_root() -> Path:
    root = os.environ.get("SHIFTER_STANDIN_IMAGES")
    if not root:
        raise GatewayError("SHIFTER_STANDIN_IMAGES is not set (the stand-in gateway's image store)")
    return Path(root)


def image_key(tag: str) -> str:
    return re.sub(r"[^\w.-]", "_", tag)


def record_path(itype: str, tag: str) -> Path:
    return images_root() / itype / f"{image_key(tag)}.json"


def lookup(itype: str, tag: str) -> dict[str, Any] | None:
    try:
        return json.loads(record_path(itype, tag).read_text())
    except FileNotFoundError:
        return None


def write_record(itype: str, tag: str, record: dict[str, Any]) -> None:
    path = record_path(itype, tag)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(path)


# -- the docker pull, as dockerv2.py does it ----------------------------------------------------


def _unpad(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def fetch_manifest(host: str, repo: str, tag: str) -> dict[str, Any]:
    connection = http.client.HTTPConnection(host, timeout=60)
    try:
        connection.request("GET", f"/v2/{repo}/manifests/{tag}")  # no Accept header
        response = connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise GatewayError(
                f"Bad response from registry status={response.status}: {data[:300]!r}"
            )
        announced = response.getheader("docker-content-digest") or ""
    finally:
        connection.close()
    if not announced:
        raise GatewayError("No docker-content-digest header found")
    manifest = json.loads(data)
    if manifest.get("schemaVersion") != 1:
        raise GatewayError(f"Incompatible manifest schema {manifest.get('schemaVersion')}")
    if not all(k in manifest for k in ("fsLayers", "history", "signatures")):
        raise GatewayError("Manifest in incorrect format")
    lengths, tails = set(), set()
    for signature in manifest["signatures"]:
        protected = json.loads(_unpad(signature["protected"]))
        lengths.add(protected["formatLength"])
        tails.add(_unpad(protected["formatTail"]))
    if len(lengths) != 1 or len(tails) != 1:
        raise GatewayError("signature blocks disagree")
    payload = data[: lengths.pop()] + tails.pop()
    if "sha256:" + hashlib.sha256(payload).hexdigest() != announced:
        raise GatewayError("Failed to match manifest digest to downloaded content")
    return manifest


def layer_chain(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The layers eldest first, each its v1Compatibility with its blobSum (constructImageMetadata)."""
    if len(manifest["fsLayers"]) != len(manifest["history"]):
        raise GatewayError("Manifest layer size mismatch")
    children: dict[str, dict[str, Any]] = {}
    eldest = None
    for entry, fs_layer in zip(manifest["history"], manifest["fsLayers"], strict=True):
        layer = json.loads(entry["v1Compatibility"])
        layer["blobSum"] = fs_layer["blobSum"]
        if "id" not in layer:
            raise GatewayError("Malformed layer, missing id")
        if "parent" not in layer:
            if eldest is not None:
                raise GatewayError("Found more than one layer with no parent")
            eldest = layer
        elif layer["parent"] in children:
            raise GatewayError("Multiple inheritance from a layer")
        else:
            children[layer["parent"]] = layer
    if eldest is None:
        raise GatewayError("Unable to find single layer without parent")
    chain = [eldest]
    while chain[-1]["id"] in children:
        chain.append(children.pop(chain[-1]["id"]))
    return chain


def save_layer(host: str, repo: str, digest: str, cache: Path) -> Path:
    path = cache / f"{digest}.tar"
    if path.exists() and "sha256:" + _sha256_file(path) == digest:
        return path
    connection = http.client.HTTPConnection(host, timeout=60)
    try:
        connection.request("GET", f"/v2/{repo}/blobs/{digest}")
        response = connection.getresponse()
        if response.status != 200:
            raise GatewayError(f"got status {response.status} for layer {digest}")
        partial = path.with_suffix(".partial")
        with open(partial, "wb") as out:
            shutil.copyfileobj(response, out, 4 << 20)
    finally:
        connection.close()
    if "sha256:" + _sha256_file(partial) != digest:
        partial.unlink()
        raise GatewayError(f"checksum mismatch for layer {digest}")
    partial.replace(path)
    return path


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def expand_layer(tar_path: Path, root: Path) -> None:
    """One layer over the tree below it: whiteouts and opaque directories first, then the rest."""
    with tarfile.open(tar_path) as tar:
        members = tar.getmembers()
        kept = []
        for member in members:
            name = member.name.lstrip("./") if member.name != "." else ""
            if name == "dev" or name.startswith("dev/"):
                continue  # the gateway's tar --exclude=dev/*
            directory, _, base = name.rpartition("/")
            if base == OPAQUE:
                for child in (root / directory).glob("*") if (root / directory).is_dir() else ():
                    _remove(child)
            elif base.startswith(WHITEOUT):
                _remove(root / directory / base[len(WHITEOUT) :])
            else:
                kept.append(member)
        # the "tar" filter (names kept inside root) where this Python has extraction filters
        safe = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
        tar.extractall(root, members=kept, **safe)  # type: ignore[arg-type]


def pull_docker(name: str) -> dict[str, Any]:
    """Pull docker:NAME (NAME = HOST:PORT/REPO[:TAG]) the way the gateway does; its record."""
    host, _, rest = name.partition("/")
    if ":" not in host or not rest:
        raise GatewayError(f"the stand-in knows only registries named HOST:PORT, not in {name!r}")
    repo, _, tag = rest.rpartition(":") if ":" in rest else (rest, "", "latest")
    manifest = fetch_manifest(host, repo, tag)
    chain = layer_chain(manifest)
    base = images_root() / "docker"
    cache = images_root() / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    blobs = [save_layer(host, repo, layer["blobSum"], cache) for layer in chain]
    base.mkdir(parents=True, exist_ok=True)
    expanded = Path(tempfile.mkdtemp(prefix=".expand-", dir=base))
    for blob in blobs:
        expand_layer(blob, expanded)
    for directory in BIND_DIRS:
        (expanded / directory).mkdir(exist_ok=True)
    for file in BIND_FILES:
        path = expanded / file
        if not path.exists() and not path.is_symlink():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    expanded.chmod(0o755)
    rootfs = base / image_key(name)
    _remove(rootfs)
    expanded.rename(rootfs)
    config = chain[-1].get("config") or {}
    env_file = base / f"{image_key(name)}.env"
    env_file.write_text("".join(f"{item}\n" for item in config.get("Env") or []))
    record = {
        "id": chain[-1]["id"],
        "system": os.environ.get("SHIFTER_STANDIN_SYSTEM", ""),
        "itype": "docker",
        "tag": name,
        "status": "READY",
        "ENV": config.get("Env"),
        "ENTRY": config.get("Entrypoint"),
        "CMD": config.get("Cmd"),
        "WORKDIR": config.get("WorkingDir"),
        "last_pull": time.time(),
        "layers": [layer["blobSum"] for layer in chain],
        "rootfs": str(rootfs),
        "env_file": str(env_file),
    }
    write_record("docker", name, record)
    return record


# -- the import API -----------------------------------------------------------------------------


def import_custom(system: str, tag: str, body: dict[str, Any], user: str) -> dict[str, Any]:
    filepath, fmt = body.get("filepath"), body.get("format")
    if fmt != "squashfs":
        raise GatewayError(f"format {fmt!r}: only squashfs images are imported")
    if not isinstance(filepath, str) or not os.path.isabs(filepath):
        raise GatewayError("filepath required for direct image import (an absolute path)")
    source = Path(filepath)
    try:
        with open(source, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise GatewayError(f"cannot read {filepath}: {e.strerror}") from None
    if magic != b"hsqs":
        raise GatewayError(f"{filepath} is not a squashfs image")
    target = images_root() / "custom" / f"{image_key(tag)}.squashfs"
    target.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "id": None,
        "system": system,
        "itype": "custom",
        "tag": tag,
        "status": "PENDING",
        "userACL": [],
        "groupACL": [],
        "ENV": None,
        "ENTRY": None,
        "WORKDIR": None,
        "LABELS": None,
        "last_pull": time.time(),
        "status_message": f"imported by {user}",
        "squashfs": str(target),
    }
    write_record("custom", tag, record)

    def copy() -> None:  # as the gateway's worker does, after the request was answered
        tmp = target.with_suffix(".partial")
        shutil.copyfile(source, tmp)
        tmp.replace(target)
        # the gateway's fasthash stands for this
        write_record("custom", tag, {**record, "id": _sha256_file(target), "status": "READY"})

    threading.Thread(target=copy).start()
    return record


RESPONSE_FIELDS = ("id", "system", "itype", "tag", "status", "userACL", "groupACL", "ENV",
                   "ENTRY", "WORKDIR", "LABELS", "last_pull", "status_message")  # fmt: skip


def unmunge(credential: str, socket: str | None) -> str:
    """The user a munge credential names; GatewayError if munge does not vouch for it."""
    argv = ["unmunge", *([f"--socket={socket}"] if socket else [])]
    proc = subprocess.run(argv, input=credential, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise GatewayError(f"Authentication Error: {proc.stderr.strip()}")
    found = re.search(r"^UID:\s+(\S+)", proc.stdout, re.MULTILINE)
    return found.group(1) if found else "unknown"


class Handler(BaseHTTPRequestHandler):
    systems: tuple[str, ...] = ()
    munge_socket: str | None = None

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write("shifter_gateway (stand-in): " + format % args + "\n")

    def answer(self, status: int, data: dict[str, Any]) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def route(self, call: str) -> tuple[str, str, str] | None:
        match = re.fullmatch(rf"/api/{call}/([^/]+)/([^/]+)/(.+?)/?", self.path)
        if not match:
            self.answer(404, {"status": 404, "error": "Not Found", "message": self.path})
            return None
        system, itype, tag = match.groups()
        if system not in self.systems:
            self.answer(404, {"status": 404, "error": f"unknown system {system}"})
            return None
        return system, itype, tag

    def do_POST(self) -> None:
        found = self.route("doimport")
        if not found:
            return
        system, itype, tag = found
        try:
            user = unmunge(self.headers.get("authentication") or "", self.munge_socket)
        except GatewayError as e:
            self.answer(401, {"status": 401, "error": str(e)})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if itype != "custom":
                raise GatewayError(f"image type {itype}: only custom images are imported")
            record = import_custom(system, tag, body, user)
        except (GatewayError, ValueError) as e:
            self.answer(404, {"status": 404, "error": str(e)})
            return
        self.answer(200, {k: record.get(k, "MISSING") for k in RESPONSE_FIELDS})

    def do_GET(self) -> None:
        found = self.route("lookup")
        if not found:
            return
        _, itype, tag = found
        record = lookup(itype, tag)
        if record is None:
            self.answer(404, {"status": 404, "error": "image not found"})
            return
        self.answer(200, {k: record.get(k, "MISSING") for k in RESPONSE_FIELDS})


def serve(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="stand-in of Shifter's image gateway")
    parser.add_argument("--images", required=True, help="the image store ($SHIFTER_STANDIN_IMAGES)")
    parser.add_argument("--system", action="append", required=True, help="a system it serves")
    parser.add_argument("--munge-socket", help="munged's socket, to check credentials")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ["SHIFTER_STANDIN_IMAGES"] = args.images
    Handler.systems = tuple(args.system)
    Handler.munge_socket = args.munge_socket
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
