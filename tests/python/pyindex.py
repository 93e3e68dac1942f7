"""A package index on 127.0.0.1 over a directory of real wheels, as PyPI answers:

- `/simple/<project>/`: PEP 691 JSON when asked for it (Accept), else PEP 503 HTML, each file
  with its sha256 and, PEP 658/714, its METADATA served apart (`<file>.metadata`);
- `/html/<project>/`: PEP 503 HTML only, without METADATA files (so a client reads a wheel's
  own METADATA);
- `/broken/<project>/`: answers JSON that does not parse; `/empty/...`: 404 for everything.

Every request is logged, so tests can say what a build asked for.
"""

from __future__ import annotations

import hashlib
import html
import http.server
import json
import shutil
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote

from packaging.utils import canonicalize_name

from tests.loopback import LoopbackServer

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


def project_of(filename: str) -> str:
    return canonicalize_name(filename.split("-", 1)[0])


def wheel_metadata(path: Path) -> bytes:
    with zipfile.ZipFile(path) as z:
        name = next(
            n for n in z.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1
        )
        return z.read(name)


@dataclass
class IndexServer:
    directories: list[Path]
    url: str = ""
    requests: list[str] = field(default_factory=list)
    _files: dict[str, Path] = field(default_factory=dict)
    _hashes: dict[str, str] = field(default_factory=dict)

    def scan(self) -> None:
        self._files.clear()
        for directory in self.directories:
            for path in sorted(directory.glob("*.whl")):
                self._files[path.name] = path

    def sha256(self, filename: str) -> str:
        path = self._files[filename]
        key = f"{filename}:{path.stat().st_size}:{path.stat().st_mtime_ns}"
        if key not in self._hashes:
            self._hashes[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        return self._hashes[key]

    def files_of(self, project: str) -> list[str]:
        return [f for f in self._files if project_of(f) == project]

    @property
    def simple(self) -> str:
        return f"{self.url}/simple"


def _handler(server: IndexServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            server.requests.append(self.path)
            parts = [unquote(p) for p in self.path.split("?")[0].split("/") if p]
            if len(parts) == 2 and parts[0] == "files":
                return self._file(parts[1])
            if len(parts) == 2 and parts[0] in ("simple", "html", "broken"):
                return self._project(parts[0], canonicalize_name(parts[1]))
            self._send(404, b"not found")

        def _file(self, name: str) -> None:
            if name.endswith(".metadata") and name[: -len(".metadata")] in server._files:
                return self._send(200, wheel_metadata(server._files[name[: -len(".metadata")]]))
            if name not in server._files:
                return self._send(404, b"not found")
            path = server._files[name]
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(path.stat().st_size))
            self.end_headers()
            with open(path, "rb") as f:
                shutil.copyfileobj(f, self.wfile, 1 << 20)

        def _project(self, kind: str, project: str) -> None:
            files = server.files_of(project)
            if not files:
                return self._send(404, b"no such project")
            if kind == "broken":
                return self._send(200, b'{"meta": {"api-version": "1.1"}, "files": [', JSON_TYPE)
            wants_json = kind == "simple" and JSON_TYPE in self.headers.get("Accept", "")
            if wants_json:
                page = {
                    "meta": {"api-version": "1.1"},
                    "name": project,
                    "files": [
                        {
                            "filename": f,
                            "url": f"../../files/{quote(f)}",
                            "hashes": {"sha256": server.sha256(f)},
                            "core-metadata": {
                                "sha256": hashlib.sha256(
                                    wheel_metadata(server._files[f])
                                ).hexdigest()
                            },
                        }
                        for f in files
                    ],
                }
                return self._send(200, json.dumps(page).encode(), JSON_TYPE)
            links = []
            for f in files:
                extra = ""
                if kind == "simple":
                    digest = hashlib.sha256(wheel_metadata(server._files[f])).hexdigest()
                    extra = f' data-core-metadata="sha256={digest}"'
                href = f"../../files/{quote(f)}#sha256={server.sha256(f)}"
                links.append(f'<a href="{html.escape(href)}"{extra}>{html.escape(f)}</a><br>')
            body = "<!DOCTYPE html><html><body>" + "\n".join(links) + "</body></html>"
            self._send(200, body.encode(), "text/html")

    return Handler


@contextmanager
def serve_index(*directories: Path) -> Iterator[IndexServer]:
    index = IndexServer(list(directories))
    index.scan()
    httpd = LoopbackServer(("127.0.0.1", 0), _handler(index))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    index.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield index
    finally:
        httpd.shutdown()
        httpd.server_close()
