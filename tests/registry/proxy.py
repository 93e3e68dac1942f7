"""A loopback HTTP proxy between the client and a real registry that logs every request and
injects faults: error statuses (with Retry-After), delays, held requests, connections cut in the
middle of a request body, truncated or corrupted response bodies.

It relays requests as they come (Host unchanged, so the registry's Location headers point back
at the proxy); each request gets its own upstream connection, closed after the answer.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import BinaryIO

BUFFER = 1 << 16


@dataclass
class Fault:
    """What to do to requests whose `METHOD /path?query` matches `match` (a regex).

    action: `status` answers `status` (+ `headers`, and `body` instead of an error document)
    without asking the registry; `headers` adds
    `headers` to the registry's answer; `delay` holds the registry's answer `seconds` before
    relaying it; `hold` keeps the request until the proxy is released or closed, then drops it;
    `cut` reads `after` bytes of the request body (passing them on if `forward`) and closes both
    connections; `truncate` relays `after` bytes of the answer's body and closes; `corrupt`
    flips one byte of the answer's body. With `echo` (request header names), a `status` answer's
    error message quotes those headers of the request, as a careless registry or proxy might.
    The first `skip` matches pass untouched, then `times` matches get the fault (-1: all).
    """

    match: str
    action: str
    times: int = 1
    skip: int = 0
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    after: int = 0
    forward: bool = False
    echo: tuple[str, ...] = ()
    body: bytes | None = None
    hits: int = 0


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    query: str
    status: int | None  # None: the connection was cut
    fault: str = ""
    content_range: str = ""  # the request's Content-Range header

    @property
    def line(self) -> str:
        return f"{self.method} {self.path}" + (f"?{self.query}" if self.query else "")


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.faults: list[Fault] = []
        self.log: list[Exchange] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.log.clear()
        self._released.set()
        self._released = threading.Event()

    def close(self) -> None:
        self._released.set()
        self._listener.close()

    def requests(self, pattern: str = "") -> list[Exchange]:
        """The logged exchanges whose line matches `pattern` (a regex)."""
        with self._lock:
            return [e for e in self.log if re.search(pattern, e.line)]

    def _pick(self, line: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if re.search(fault.match, line):
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    if fault.times == 0:
                        continue
                    fault.times -= fault.times > 0
                    fault.hits += 1
                    return fault
        return None

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self.log.append(exchange)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            rfile = conn.makefile("rb")
            try:
                while self._exchange(conn, rfile):
                    pass
            except OSError:
                pass

    def _exchange(self, conn: socket.socket, rfile: BinaryIO) -> bool:
        """Relay one request; False when the client connection is done."""
        if rfile.peek(1)[:1] == b"\x16":  # a TLS handshake: answer as Go's plain HTTP server does
            conn.sendall(
                b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
            )
            return False
        head = _read_head(rfile)
        if not head:
            return False
        request_line, headers = head
        method, target, _ = request_line.split(" ", 2)
        path, _, query = target.partition("?")
        length = int(_header(headers, "Content-Length") or 0)
        content_range = _header(headers, "Content-Range") or ""
        if _header(headers, "Transfer-Encoding"):
            conn.sendall(
                b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            return False
        fault = self._pick(f"{method} {target}")
        action = fault.action if fault else ""

        if fault and action == "status":
            _skip(rfile, length)
            body = fault.body
            if body is None:
                message = f"injected {fault.status}"
                for name in fault.echo:
                    message += f"; {name}: {_header(headers, name)}"
                body = json.dumps({"errors": [{"code": "INJECTED", "message": message}]}).encode()
            extra = "".join(f"{k}: {v}\r\n" for k, v in fault.headers.items())
            # logged before answering: once the client has its answer, the log has the exchange
            self._record(Exchange(method, path, query, fault.status, action, content_range))
            conn.sendall(
                f"HTTP/1.1 {fault.status} Injected\r\nContent-Type: application/json\r\n{extra}"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + (body if method != "HEAD" else b"")
            )
            return True
        if fault and action == "hold":
            self._released.wait()
            self._record(Exchange(method, path, query, None, action, content_range))
            return False
        if fault and action == "cut" and not fault.forward:
            rfile.read(min(fault.after, length))
            self._record(Exchange(method, path, query, None, action, content_range))
            conn.shutdown(socket.SHUT_RDWR)
            return False

        with socket.create_connection(self.upstream) as upstream:
            sent = [request_line] + [f"{k}: {v}" for k, v in headers if k.lower() != "connection"]
            upstream.sendall(("\r\n".join([*sent, "Connection: close"]) + "\r\n\r\n").encode())
            if fault and action == "cut":
                upstream.sendall(rfile.read(min(fault.after, length)))
                time.sleep(0.1)  # let the registry take in what it got before the cut
                self._record(Exchange(method, path, query, None, action, content_range))
                conn.shutdown(socket.SHUT_RDWR)
                return False
            _copy(rfile, upstream, length)
            ufile = upstream.makefile("rb")
            status_line, response_headers = _read_head(ufile) or ("HTTP/1.1 502 Bad Gateway", [])
            status = int(status_line.split(" ", 2)[1])
            if fault and action == "delay":
                time.sleep(fault.seconds)
            kept = [(k, v) for k, v in response_headers if k.lower() != "connection"]
            if fault and action == "headers":
                kept += list(fault.headers.items())
            framed = (
                method == "HEAD"
                or status in (204, 304)
                or any(k.lower() in ("content-length", "transfer-encoding") for k, _ in kept)
            )
            if not framed:
                kept.append(("Connection", "close"))
            out = [status_line] + [f"{k}: {v}" for k, v in kept]
            self._record(Exchange(method, path, query, status, action, content_range))
            conn.sendall(("\r\n".join(out) + "\r\n\r\n").encode())
            if method == "HEAD":
                return True
            return self._relay_body(ufile, conn, fault) and framed

    @staticmethod
    def _relay_body(ufile: BinaryIO, conn: socket.socket, fault: Fault | None) -> bool:
        offset = 0
        flipped = False
        while chunk := ufile.read1(BUFFER):
            if fault and fault.action == "truncate" and offset + len(chunk) >= fault.after:
                conn.sendall(chunk[: fault.after - offset])
                conn.shutdown(socket.SHUT_RDWR)
                return False
            if fault and fault.action == "corrupt" and not flipped and chunk:
                index = min(fault.after, len(chunk) - 1)
                chunk = chunk[:index] + bytes([chunk[index] ^ 0xFF]) + chunk[index + 1 :]
                flipped = True
            conn.sendall(chunk)
            offset += len(chunk)
        return True


def _read_head(rfile: BinaryIO) -> tuple[str, list[tuple[str, str]]] | None:
    first = rfile.readline()
    if not first:
        return None
    headers = []
    while (line := rfile.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    return first.decode("latin-1").rstrip("\r\n"), headers


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name.lower():
            return value
    return None


def _copy(rfile: BinaryIO, sock: socket.socket, length: int) -> None:
    while length > 0:
        chunk = rfile.read(min(BUFFER, length))
        if not chunk:
            raise ConnectionError("client closed in the middle of its request body")
        sock.sendall(chunk)
        length -= len(chunk)


def _skip(rfile: BinaryIO, length: int) -> None:
    while length > 0:
        chunk = rfile.read(min(BUFFER, length))
        if not chunk:
            return
        length -= len(chunk)
