#!/usr/bin/env python3
"""Run a local CNCF distribution registry (Debian's `docker-registry`) on a free 127.0.0.1 port.

    python3 registry/start.py                                   # plain HTTP, storage in a temp dir
    python3 registry/start.py --config htpasswd --htpasswd FILE
    python3 registry/start.py --config token --token-realm URL --token-certs SIGNER.pem
    python3 registry/start.py --cert server.pem --key server-key.pem   # TLS, with any --config

It waits until `/v2/` answers, prints the registry's address (`http://127.0.0.1:PORT`) on
stdout, and runs until SIGTERM or SIGINT, then stops the registry (and removes the storage if it
made a temporary one). The YAML files beside this script are the configurations; paths and the
address are passed as REGISTRY_* environment variables, the registry's own override mechanism.
Standard library only: sites can use it for a local mirror without installing ocibuild.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIGS = ("plain", "htpasswd", "token", "tls")
PORT_ATTEMPTS = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def registry_env(args: argparse.Namespace, port: int, storage: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "REGISTRY_HTTP_ADDR": f"127.0.0.1:{port}",
        "REGISTRY_HTTP_SECRET": args.secret or secrets.token_hex(16),
        "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(storage),
    }
    if args.htpasswd:
        env["REGISTRY_AUTH_HTPASSWD_PATH"] = str(Path(args.htpasswd).resolve())
    for option, name in (
        ("token_realm", "REALM"),
        ("token_service", "SERVICE"),
        ("token_issuer", "ISSUER"),
        ("token_certs", "ROOTCERTBUNDLE"),
    ):
        if value := getattr(args, option):
            env[f"REGISTRY_AUTH_TOKEN_{name}"] = (
                str(Path(value).resolve()) if option == "token_certs" else value
            )
    if args.cert:
        env["REGISTRY_HTTP_TLS_CERTIFICATE"] = str(Path(args.cert).resolve())
        env["REGISTRY_HTTP_TLS_KEY"] = str(Path(args.key).resolve())
    return env


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> bool:
    """True once `/v2/` answers (200 or 401); False if the registry exited first."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # a readiness probe only: clients verify for real
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url + "/v2/", timeout=1, context=context):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"registry at {url} did not answer /v2/ within {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config", choices=CONFIGS, default="plain", help="which YAML beside this script"
    )
    parser.add_argument("--storage", help="blob storage directory (default: a temporary one)")
    parser.add_argument("--port", type=int, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--htpasswd", help="htpasswd file (bcrypt) for --config htpasswd")
    parser.add_argument("--token-realm", help="URL of the token service, for --config token")
    parser.add_argument("--token-service", help="service name the tokens are issued for")
    parser.add_argument("--token-issuer", help="issuer the tokens name")
    parser.add_argument("--token-certs", help="PEM bundle of the certificates that sign tokens")
    parser.add_argument("--cert", help="TLS certificate (PEM); serves HTTPS")
    parser.add_argument("--key", help="TLS private key (PEM)")
    parser.add_argument("--secret", help="HTTP secret (default: random)")
    parser.add_argument("--log", help="registry log file (default: this script's stderr)")
    parser.add_argument("--ready-timeout", type=float, default=30.0)
    parser.add_argument(
        "--stop-with-parent",
        action="store_true",
        help="also stop when the process that started this one ends (tests, scripts)",
    )
    args = parser.parse_args(argv)
    if bool(args.cert) != bool(args.key):
        parser.error("--cert and --key go together")
    if args.config == "tls" and not args.cert:
        parser.error("--config tls needs --cert and --key")
    if args.config == "htpasswd" and not args.htpasswd:
        parser.error("--config htpasswd needs --htpasswd FILE")
    if args.config == "token" and not (args.token_realm and args.token_certs):
        parser.error("--config token needs --token-realm and --token-certs")
    registry = shutil.which("docker-registry")
    if registry is None:
        raise SystemExit("docker-registry is not installed (Debian package docker-registry)")

    made_storage = args.storage is None
    storage = Path(args.storage or tempfile.mkdtemp(prefix="ocibuild-registry-"))
    log = open(args.log, "ab") if args.log else None
    scheme = "https" if args.cert else "http"
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    process = None
    try:
        for _ in range(1 if args.port else PORT_ATTEMPTS):
            port = args.port or free_port()
            process = subprocess.Popen(
                [registry, "serve", str(HERE / f"{args.config}.yml")],
                env=registry_env(args, port, storage),
                stdin=subprocess.DEVNULL,
                stdout=log or sys.stderr,
                stderr=subprocess.STDOUT,
            )
            url = f"{scheme}://127.0.0.1:{port}"
            if wait_ready(url, process, args.ready_timeout):
                break
            process.wait()  # exited early: the port was taken in the meantime, or bad config
        else:
            raise SystemExit(
                f"docker-registry did not start (exit {process and process.returncode})"
            )
        print(url, flush=True)
        parent = os.getppid()
        while not stopping and process.poll() is None:
            time.sleep(0.1)
            if args.stop_with_parent and os.getppid() != parent:
                break
        if stopping or process.poll() is None:
            return 0
        return process.returncode or 1  # the registry exited by itself
    finally:
        if process is not None:
            stop(process)
        if log:
            log.close()
        if made_storage:
            shutil.rmtree(storage, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
