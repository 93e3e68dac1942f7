"""The HTTP module: every failure named by its cause and URL, the one retry policy, file://
mirrors, the User-Agent, and the TLS rules per host (loopback, the insecure list, certs.d).

The failures are real and stay on the machine: a name under `.invalid` (which never resolves),
a closed port on 127.0.0.1, a TLS server with an unknown CA, a socket that accepts and never
answers, and an HTTP server answering 500 with a message."""

from __future__ import annotations

import dataclasses
import http.server
import io
import socket
import ssl
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ocibuild import __version__
from ocibuild.errors import FetchError, MissingDownloadError, Origin
from ocibuild.fetch import Fetcher
from ocibuild.net.policy import Deadlines, NetworkPolicy
from ocibuild.net.retry import RetryPolicy, parse_retry_after
from ocibuild.net.tls import CERTS_DIRS_ENV, INSECURE_ENV, host_tls, is_local, listed_insecure
from ocibuild.progress import Event, Message
from tests.registry.pki import make_ca, make_server_cert

ORIGIN = Origin("recipe.yaml", 7, 9)
HINT = "to use a mirror, set $SOME_MIRROR"
QUICK = RetryPolicy(retries=2, backoff=0.01, max_backoff=0.02, max_retry_after=0.5)


@dataclass
class Seen:
    messages: list[str] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        if isinstance(event, Message):
            self.messages.append(event.message)


def fetcher(tmp_path: Path, seen: Seen, **settings: Any) -> Fetcher:
    network = settings.pop("network", NetworkPolicy())
    defaults: dict[str, Any] = {
        "report": seen,
        "origin": ORIGIN,
        "hint": HINT,
        "retry": QUICK,
        "network": dataclasses.replace(network, deadlines=Deadlines(connect=2.0, idle=0.3)),
    }
    cache = settings.pop("cache_dir", tmp_path / "cache")
    return Fetcher(cache, **{**defaults, **settings})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    requests: list[tuple[str, dict[str, str]]]


class _Handler(http.server.BaseHTTPRequestHandler):
    answers: dict[str, tuple[int, dict[str, str], bytes]] = {}
    requests: list[tuple[str, dict[str, str]]] = []

    def do_GET(self) -> None:
        self.requests.append((self.path, dict(self.headers)))
        status, headers, body = self.answers.get(self.path, (404, {}, b"no such page\n"))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def serve(
    answers: dict[str, tuple[int, dict[str, str], bytes]], context: ssl.SSLContext | None = None
) -> Iterator[Server]:
    handler = type("Handler", (_Handler,), {"answers": answers, "requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if context else "http"
    try:
        yield Server(f"{scheme}://127.0.0.1:{server.server_address[1]}", handler.requests)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def web() -> Iterator[Server]:
    answers = {
        "/ok.txt": (200, {"Content-Type": "text/plain"}, b"hello\n"),
        "/fire": (500, {"Content-Type": "text/plain"}, b"the database is on fire\nmore\n"),
        "/json": (503, {"Content-Type": "application/json", "Retry-After": "0"}, b'{"message": "down for maintenance"}'),
        "/html": (502, {"Content-Type": "text/html"}, b"<html><body>Bad gateway</body></html>"),
    }  # fmt: skip
    yield from serve(answers)


@pytest.fixture
def tls_web(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    ca = make_ca()
    ca_cert, _ = ca.write(tmp_path, "ca")
    cert, key = make_server_cert(ca).write(tmp_path, "server")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    for server in serve({"/ok.txt": (200, {}, b"over tls\n")}, context):
        yield server, ca_cert


@pytest.fixture
def silent_socket() -> Iterator[str]:
    """A loopback socket that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()
    for conn in held:
        conn.close()


# -- failures, each with its cause and URL -------------------------------------------------


def test_a_name_that_does_not_resolve_is_named_and_not_retried(tmp_path: Path) -> None:
    seen = Seen()
    url = "http://mirror.ocibuild-test.invalid/x.tar.bz2"
    with pytest.raises(FetchError) as raised:
        fetcher(tmp_path, seen).fetch(url, "x v1")
    assert str(raised.value) == (
        f"recipe.yaml:7:9: x v1: GET {url}: the host name mirror.ocibuild-test.invalid could not "
        f"be resolved (DNS); {HINT}"
    )
    assert seen.messages == []


def test_a_refused_connection_is_named_and_not_retried(tmp_path: Path) -> None:
    seen = Seen()
    port = free_port()
    url = f"http://127.0.0.1:{port}/x"
    with pytest.raises(FetchError) as raised:
        fetcher(tmp_path, seen).fetch(url, "x")
    assert str(raised.value) == (
        f"recipe.yaml:7:9: x: GET {url}: connection refused (nothing listens on 127.0.0.1:{port}); "
        f"{HINT}"
    )
    assert seen.messages == []


def test_a_certificate_from_an_unknown_ca_is_named_and_not_retried(
    tmp_path: Path, tls_web: tuple[Server, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, ca_cert = tls_web
    monkeypatch.setenv(CERTS_DIRS_ENV, str(tmp_path / "no-certs"))
    seen = Seen()
    with pytest.raises(
        FetchError,
        match=r"x: GET https://127.0.0.1:\d+/ok.txt: TLS verification failed \(unable to get local issuer certificate\); ",
    ):
        fetcher(tmp_path, seen).fetch(f"{server.url}/ok.txt", "x")
    assert seen.messages == []
    assert server.requests == []
    unverified = fetcher(tmp_path, seen, network=NetworkPolicy(insecure=True)).fetch(
        f"{server.url}/ok.txt", "x"
    )
    assert unverified.path.read_bytes() == b"over tls\n"
    server.requests.clear()

    # the same server, its CA in a certs.d directory: trusted, and verified
    (tmp_path / "cache").rename(tmp_path / "old-cache")
    certs = tmp_path / "certs.d" / server.url.split("://")[1]
    certs.mkdir(parents=True)
    (certs / "ca.crt").write_bytes(ca_cert.read_bytes())
    monkeypatch.setenv(CERTS_DIRS_ENV, str(tmp_path / "certs.d"))
    fetched = fetcher(tmp_path, seen).fetch(f"{server.url}/ok.txt", "x")
    assert fetched.path.read_bytes() == b"over tls\n"
    assert len(server.requests) == 1


def test_a_server_that_never_answers_times_out_after_the_retries(
    tmp_path: Path, silent_socket: str
) -> None:
    seen = Seen()
    url = f"http://{silent_socket}/slow"
    with pytest.raises(FetchError) as raised:
        fetcher(tmp_path, seen).fetch(url, "x")
    assert str(raised.value) == (
        f"recipe.yaml:7:9: x: GET {url}: timed out: no answer within 0.3 s (read timeout) "
        f"(gave up after 3 attempts); {HINT}"
    )
    assert len(seen.messages) == 2
    assert all("(read timeout); retrying in" in m for m in seen.messages)


def test_a_server_error_gives_its_status_and_message(tmp_path: Path, web: Server) -> None:
    seen = Seen()
    with pytest.raises(FetchError) as raised:
        fetcher(tmp_path, seen).fetch(f"{web.url}/fire", "x")
    assert str(raised.value) == (
        f"recipe.yaml:7:9: x: {web.url}/fire: HTTP 500 the database is on fire "
        f"(gave up after 3 attempts); {HINT}"
    )
    assert len(seen.messages) == 2
    with pytest.raises(FetchError, match=r"HTTP 503 down for maintenance \(gave up"):
        fetcher(tmp_path, seen).fetch(f"{web.url}/json", "x")
    with pytest.raises(FetchError, match=r"/html: HTTP 502 Bad Gateway \(gave up"):
        fetcher(tmp_path, seen).fetch(f"{web.url}/html", "x")
    assert len([p for p, _ in web.requests if p == "/fire"]) == 3


def test_a_missing_file_is_reported_at_once_without_the_mirror_hint(
    tmp_path: Path, web: Server
) -> None:
    seen = Seen()
    with pytest.raises(MissingDownloadError) as raised:
        fetcher(tmp_path, seen).fetch(f"{web.url}/gone", "x")
    assert str(raised.value) == f"recipe.yaml:7:9: x: {web.url}/gone: HTTP 404 no such page"
    assert not fetcher(tmp_path, seen).exists(f"{web.url}/gone")
    assert fetcher(tmp_path, seen).exists(f"{web.url}/ok.txt")
    assert seen.messages == []


def test_the_user_agent_names_ocibuild(tmp_path: Path, web: Server) -> None:
    fetcher(tmp_path, Seen()).fetch(f"{web.url}/ok.txt")
    (_, headers), *_ = web.requests
    assert headers["User-Agent"] == f"ocibuild/{__version__}"


def test_file_urls_and_paths_are_a_mirror_too(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "a.txt").write_bytes(b"a\n")
    seen = Seen()
    assert fetcher(tmp_path, seen).fetch((mirror / "a.txt").as_uri()).size == 2
    assert fetcher(tmp_path, seen, cache_dir=tmp_path / "c2").fetch(str(mirror / "a.txt")).size == 2
    with pytest.raises(MissingDownloadError) as raised:
        fetcher(tmp_path, seen).fetch(str(mirror / "b.txt"), "b")
    assert str(raised.value) == f"recipe.yaml:7:9: b: {mirror}/b.txt: no such file"


# -- the retry policy ------------------------------------------------------------------------


def test_backoff_is_jittered_and_capped_and_retry_after_wins() -> None:
    policy = RetryPolicy(retries=5, backoff=1.0, max_backoff=4.0, max_retry_after=10.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 4.0)]:
        delays = {policy.delay(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1
    assert policy.delay(1, retry_after=3.0) == 3.0
    assert policy.delay(1, retry_after=300.0) == 10.0
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None


# -- TLS rules per host ------------------------------------------------------------------------


def test_loopback_localhost_and_dot_local_may_be_plain_http() -> None:
    for host in [
        "127.0.0.1:5000",
        "127.1.2.3",
        "[::1]:5000",
        "localhost",
        "localhost:5000",
        "registry.local:443",
    ]:
        assert is_local(host), host
        assert host_tls(host).plain_http and host_tls(host).verify is True
    for host in ["10.0.0.1:5000", "example.org", "localhost.example.org", "[2001:db8::1]", "local"]:
        assert not is_local(host), host
        assert not host_tls(host).plain_http


def test_the_insecure_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(INSECURE_ENV, " registry.site.org:5000 , other.org,[fd00::1]:80")
    assert listed_insecure("registry.site.org:5000")
    assert not listed_insecure("registry.site.org:5001")
    assert listed_insecure("other.org") and listed_insecure("OTHER.org:443")
    assert listed_insecure("[fd00::1]:80")
    tls = host_tls("other.org:8443")
    assert (tls.verify, tls.plain_http, tls.insecure) == (False, True, True)
    assert host_tls("example.org", insecure=True).verify is False
    assert host_tls("example.org").verify is True


def test_certs_d_gives_cas_and_a_client_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = make_ca()
    podman, docker = tmp_path / "containers", tmp_path / "docker"
    (podman / "site.org:5000").mkdir(parents=True)
    (docker / "site.org:5000").mkdir(parents=True)
    ca.write(podman / "site.org:5000", "extra")
    (podman / "site.org:5000" / "extra.pem").rename(podman / "site.org:5000" / "extra.crt")
    (docker / "site.org:5000" / "ca.crt").write_bytes(
        (podman / "site.org:5000" / "extra.crt").read_bytes()
    )
    (docker / "site.org:5000" / "client.cert").write_text("cert")
    (docker / "site.org:5000" / "client.key").write_text("key")
    monkeypatch.setenv(CERTS_DIRS_ENV, f"{podman}:{docker}")

    tls = host_tls("site.org:5000")
    assert isinstance(tls.verify, str)
    bundle = Path(tls.verify).read_text()
    assert bundle.count("BEGIN CERTIFICATE") > 2  # the system's CAs and both of these
    assert tls.cert == (
        str(docker / "site.org:5000/client.cert"),
        str(docker / "site.org:5000/client.key"),
    )
    assert "ca.crt" in tls.ca_source and "extra.crt" in tls.ca_source
    assert host_tls("site.org").verify is True  # another port is another directory
    assert host_tls("site.org:5000", ca_cert=Path("/x/ca.pem")).verify == "/x/ca.pem"


# -- as the user sees it -------------------------------------------------------------------


RECIPE = """\
images:
  - name: localhost/t/mirrors:1
    layers:
      - rpm:
          repos: [{{url: "${{SITE_VAULT:-http://127.0.0.1:{port}/vault}}/os/", trusted: true}}]
          packages: [bash]
  - name: localhost/t/ups:1
    layers:
      - ups: {{bundle: art-v1_18_03, os: slf6, qualifiers: "e9:prof"}}
"""


def test_download_failures_name_the_recipe_line_and_the_mirror_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ocibuild.cli import main

    port = free_port()
    recipe = tmp_path / "mirrors.yaml"
    recipe.write_text(RECIPE.format(port=port))
    monkeypatch.setenv("OCIBUILD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OCIBUILD_SCISOFT", f"http://127.0.0.1:{port}/scisoft")
    monkeypatch.delenv("SITE_VAULT", raising=False)
    store = str(tmp_path / "store")

    def error_of(image: str) -> str:
        assert main(["--store", store, "recipe", str(recipe), "--image", image]) == 1
        return capsys.readouterr().err.splitlines()[-1]

    assert error_of("localhost/t/mirrors:1") == (
        f"error: {recipe}:5:11: http://127.0.0.1:{port}/vault/os repository index: "
        f"GET http://127.0.0.1:{port}/vault/os/repodata/"
        f"repomd.xml: connection refused (nothing listens on 127.0.0.1:{port}); to use a mirror, "
        "set $SITE_VAULT"
    )
    assert error_of("localhost/t/ups:1") == (
        f"error: {recipe}:9:9: manifest of art-v1_18_03: GET http://127.0.0.1:{port}/scisoft/"
        "bundles/art/v1_18_03/manifest/art-1.18.03-Linux64bit+2.6-2.12-e9-prof_MANIFEST.txt: "
        f"connection refused (nothing listens on 127.0.0.1:{port}); to use another scisoft "
        "mirror, give --mirror, $OCIBUILD_SCISOFT or mirror: in the recipe"
    )


def test_the_http_module_stands_on_the_ground_floor() -> None:
    import subprocess
    import sys

    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import importlib, pkgutil, sys, ocibuild.net\n"
            "for m in pkgutil.iter_modules(ocibuild.net.__path__):\n"
            "    importlib.import_module(f'ocibuild.net.{m.name}')\n"
            "print(*sorted(sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    ours = {m for m in loaded if m.startswith("ocibuild") and not m.startswith("ocibuild.net.")}
    assert ours == {
        "ocibuild",
        "ocibuild.errors",
        "ocibuild.secrets",
        "ocibuild.limits",
        "ocibuild.jsonread",
        "ocibuild.net",
    }


def test_a_password_in_a_mirror_url_is_never_shown(tmp_path: Path) -> None:
    from ocibuild.secrets import clear, redact

    password = "pw-in-the-url-8d1f"
    url = f"https://mirror:{password}@mirror.ocibuild-test.invalid/x.tar.bz2"
    try:
        with pytest.raises(FetchError) as raised:
            fetcher(tmp_path, Seen(), network=NetworkPolicy(offline=True)).fetch(url, "x")
        assert password not in str(raised.value)  # the message shows the URL without it...
        assert "mirror:" not in redact(str(raised.value))  # ...and the CLI's filter too
        with pytest.raises(FetchError) as raised:
            fetcher(tmp_path, Seen()).fetch(url, "x")
        assert "GET https://mirror.ocibuild-test.invalid/x.tar.bz2: the host name" in str(
            raised.value
        )
    finally:
        clear()


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET after 0.2 s, counting how many requests are under way at once."""

    lock = threading.Lock()
    active = 0
    most = 0

    def do_GET(self) -> None:
        cls = type(self)
        with cls.lock:
            cls.active += 1
            cls.most = max(cls.most, cls.active)
        time.sleep(0.2)
        name = self.path.rsplit("/", 1)[-1].removesuffix(".tar.bz2")
        body = product_tarball(name)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with cls.lock:
            cls.active -= 1

    def log_message(self, *args: Any) -> None:
        pass


def product_tarball(name: str) -> bytes:
    """A UPS product tarball holding `<name>/v1_0/README`."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:bz2") as tar:
        info = tarfile.TarInfo(f"{name}/v1_0/README")
        info.size = len(name)
        tar.addfile(info, io.BytesIO(name.encode()))
    return out.getvalue()


@pytest.mark.parametrize("downloads", [1, 3])
def test_downloads_at_once_follow_the_downloads_option(tmp_path: Path, downloads: int) -> None:
    """`recipe --downloads N` reaches the downloader through the build's NetworkPolicy: the
    tarballs of a UPS product list are fetched N at a time."""
    from ocibuild.cli import main

    handler = type("Handler", (_CountingHandler,), {"active": 0, "most": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        products = ", ".join(f"[p{i}, v1_0, '', p{i}.tar.bz2]" for i in range(6))
        (tmp_path / "r.yaml").write_text(
            "images:\n  - name: example.org/t:1\n    layers:\n"
            f"      - ups: {{os: slf7, products: [{products}], layering: bundle}}\n"
        )
        args = ["--store", str(tmp_path / "store"), "-q", "recipe", str(tmp_path / "r.yaml")]
        assert main([*args, "--mirror", url, "--downloads", str(downloads)]) == 0
    finally:
        server.shutdown()
        server.server_close()
    assert handler.most == downloads
