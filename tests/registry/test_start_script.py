"""registry/start.py on its own: a free port, /v2/ answering, a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.registry.conftest import START


def test_start_answers_then_stops_and_cleans_up(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    process = subprocess.Popen(
        [sys.executable, str(START), "--log", str(tmp_path / "registry.log")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp)},
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "/v2/", timeout=5) as response:
            assert response.status == 200
            assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
        assert [p.name[:18] for p in tmp.iterdir()] == ["ocibuild-registry-"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/v2/", timeout=2)
    assert list(tmp.iterdir()) == []  # the temporary storage is gone


def test_stop_with_parent(tmp_path: Path) -> None:
    """A registry started with --stop-with-parent does not outlive the process that started it."""
    script = (
        "import subprocess, sys; "
        f"p = subprocess.Popen([sys.executable, {str(START)!r}, '--stop-with-parent', '--log', "
        f"{str(tmp_path / 'log')!r}], stdout=subprocess.PIPE, text=True); "
        "print(p.pid, p.stdout.readline().strip(), flush=True)"
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    pid, url = out.stdout.split()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/v2/", timeout=2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "htpasswd"], "--config htpasswd needs --htpasswd FILE"),
        (["--config", "token"], "--config token needs --token-realm and --token-certs"),
        (["--cert", "x.pem"], "--cert and --key go together"),
    ],
)
def test_start_refuses_incomplete_settings(args: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(START), *args], check=False, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2
    assert message in proc.stderr
