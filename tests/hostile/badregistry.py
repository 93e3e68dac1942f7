"""A misbehaving registry on loopback: a Distribution API for one image, written over raw
sockets so that every fault a hostile or broken server can commit is a switch (`Faults`):
headers or bodies sent a byte at a time, bodies that never end, sizes it lies about, malformed
headers, Retry-After, redirects anywhere (`file://`, a FIFO), pagination loops, documents of any
shape. The real registry behind the fault proxy (tests/registry/proxy.py) covers faults at the
HTTP level; this one covers those no real registry can be made to commit."""

from __future__ import annotations

import hashlib
import io
import json
import re
import socket
import tarfile
import threading
import time
from dataclasses import dataclass, field
from typing import BinaryIO

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
REPO = "t/img"


def layer_blob(text: bytes = b"hello\n") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
    return buffer.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Faults:
    """What the registry does wrong; the defaults serve the image correctly.

    `slow_headers`/`slow_body`: seconds between the bytes of the answer's head / of a blob's
    body; `endless`: a regex of request paths whose bodies never end; `declared_size`: the
    layer's size in the manifest; `content_length`: the Content-Length sent with a blob;
    `status`: path regex -> (status, headers) answered instead; `redirect`: path regex ->
    Location of a 302; `next_link`: `loop` (each tag page links to itself), `forever` (a new
    page each time) or a URL for the tags list's `Link: <...>; rel="next"`; `manifest`,
    `config`, `token`: bodies sent instead of the real documents; `bearer`: ask for a token."""

    slow_headers: float = 0.0
    slow_body: float = 0.0
    endless: str = ""
    declared_size: int | None = None
    content_length: str | None = None
    status: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)
    redirect: dict[str, str] = field(default_factory=dict)
    next_link: str = ""
    manifest: bytes | None = None
    config: bytes | None = None
    token: bytes | None = None
    bearer: bool = False


class BadRegistry:
    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.layer = layer_blob()
        self.config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [sha(self.layer)]},
                "config": {},
            }
        ).encode()
        self.requests: list[str] = []
        self.headers: list[dict[str, str]] = []  # of each request, with its "path"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def ref(self) -> str:
        return f"{self.address}/{REPO}:1"

    def manifest(self) -> bytes:
        if self.faults.manifest is not None:
            return self.faults.manifest
        size = self.faults.declared_size
        config = self.faults.config or self.config
        return json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": sha(config),
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": sha(self.layer),
                        "size": len(self.layer) if size is None else size,
                    }
                ],
            }
        ).encode()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()

    def __enter__(self) -> BadRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- serving -----------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                rfile = conn.makefile("rb")
                if rfile.peek(1)[:1] == b"\x16":  # a TLS handshake: answer as Go's plain server
                    conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request")
                    return
                line = rfile.readline().decode("latin-1").strip()
                if not line:
                    return
                headers = {}
                while (raw := rfile.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = raw.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                _skip(rfile, int(headers.get("content-length", "0") or 0))
                method, target, _ = line.split(" ", 2)
                self.requests.append(f"{method} {target}")
                self.headers.append({**headers, "path": target.partition("?")[0]})
                self._answer(conn, method, target)
            except (OSError, ValueError):
                return  # a client gone, or not speaking HTTP

    def _answer(self, conn: socket.socket, method: str, target: str) -> None:
        f = self.faults
        path = target.partition("?")[0]
        for pattern, (status, extra) in f.status.items():
            if re.search(pattern, path):
                return self._send(conn, method, status, b'{"errors": []}', extra)
        for pattern, location in f.redirect.items():
            if re.search(pattern, path):
                return self._send(conn, method, 302, b"", {"Location": location})
        if path == "/token":
            return self._send(conn, method, 200, f.token or b'{"token": "t0ken"}', {}, path)
        if path == "/v2/":
            if f.bearer:
                realm = f'Bearer realm="http://{self.address}/token",service="bad"'
                return self._send(conn, method, 401, b"{}", {"WWW-Authenticate": realm})
            return self._send(conn, method, 200, b"{}", {})
        if path.startswith(f"/v2/{REPO}/manifests/"):
            kind = {"Content-Type": OCI_MANIFEST}
            return self._send(conn, method, 200, self.manifest(), kind, path)
        if path == f"/v2/{REPO}/tags/list":
            return self._tags(conn, method, target)
        if path.startswith(f"/v2/{REPO}/blobs/"):
            digest = path.rpartition("/")[2]
            config = f.config or self.config
            blobs = {sha(self.layer): self.layer, sha(config): config}
            if digest not in blobs:
                return self._send(conn, method, 404, b'{"errors": []}', {})
            return self._send(conn, method, 200, blobs[digest], {}, path, blob=True)
        return self._send(conn, method, 404, b"{}", {})

    def _tags(self, conn: socket.socket, method: str, target: str) -> None:
        page = int(re.search(r"last=(\d+)", target).group(1)) if "last=" in target else 0
        body = json.dumps({"name": REPO, "tags": [f"t{page}"]}).encode()
        link = {
            "loop": target,
            "forever": f"/v2/{REPO}/tags/list?last={page + 1}",
        }.get(self.faults.next_link, self.faults.next_link)
        extra = {"Link": f'<{link}>; rel="next"'} if link else {}
        self._send(conn, method, 200, body, extra, target)

    def _send(
        self,
        conn: socket.socket,
        method: str,
        status: int,
        body: bytes,
        extra: dict[str, str],
        path: str = "",
        blob: bool = False,
    ) -> None:
        f = self.faults
        endless = bool(f.endless and path and re.search(f.endless, path))
        length = f.content_length if blob and f.content_length is not None else str(len(body))
        lines = [f"HTTP/1.1 {status} X", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in extra.items()]
        if not endless:
            lines.append(f"Content-Length: {length}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        _write(conn, head, f.slow_headers, self._closed)
        if method == "HEAD":
            return
        if endless:
            chunk = body or b"x"
            while not self._closed.is_set():
                _write(conn, chunk * max(1, 65536 // len(chunk)), f.slow_body, self._closed)
        _write(conn, body, f.slow_body if blob else 0.0, self._closed)


def _write(conn: socket.socket, data: bytes, pause: float, closed: threading.Event) -> None:
    if not pause:
        conn.sendall(data)
        return
    for i in range(len(data)):
        if closed.is_set():
            raise OSError("closed")
        conn.sendall(data[i : i + 1])
        time.sleep(pause)


def _skip(rfile: BinaryIO, length: int) -> None:
    while length > 0:
        chunk = rfile.read(min(65536, length))
        if not chunk:
            return
        length -= len(chunk)
