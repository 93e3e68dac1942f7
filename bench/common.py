"""Shared by the benchmarks: their command line and work directory, the payload image's recipe,
timing commands with peak memory, and printing ratio tables."""

from __future__ import annotations

import argparse
import compileall
import contextlib
import http.server
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from payload import generate

PAYLOAD_RECIPE = """\
source_date_epoch: 1451606400
images:
  - name: localhost/bench/payload:latest
    layers:
{layers}"""
PROJECT = Path(__file__).resolve().parent.parent
PAYLOAD_PRODUCTS = 30  # top-level directories of the payload (bench/payload.py)


def argument_parser(description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def size_list(text: str) -> list[int]:
    try:
        sizes = [int(word) for word in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes in MB, comma-separated: {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive: {text!r}")
    return sizes


def add_payload_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--size-mb",
        type=size_list,
        default=[1000],
        help="Payload size in MB; several, comma-separated, give a row per size "
        "(e.g. 250,500,1000,2000) [default: 1000].",
    )
    parser.add_argument(
        "--files", type=int, default=12000, help="Files per 1000 MB of payload [default: 12000]."
    )


def files_for(size_mb: int, files_per_gb: int) -> int:
    return max(1, files_per_gb * size_mb // 1000)


def workdir(given: Path | None, prefix: str) -> Path:
    """The directory given, or a new temporary one; ocibuild's bytecode is compiled first."""
    compiled()
    work = given or Path(tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    return work


def compiled(*trees: Path) -> None:
    """The bytecode of ocibuild (and of the other Python `trees` timed), written as `pip install`
    writes it: with PYTHONDONTWRITEBYTECODE set, each run would otherwise time the compiler."""
    for tree in (PROJECT / "ocibuild", *trees):
        compileall.compile_dir(tree, quiet=1, workers=0)


def payload_recipe(work: Path, size_mb: int, files: int, layers: int = 1) -> Path:
    """WORK/payload.yaml, an image of the payload WORK/payload (generated once): one layer, or
    its product directories dealt round-robin into `layers` layers."""
    payload = work / "payload"
    if not payload.exists():
        print(f"generating {size_mb} MB payload in {files} files under {payload} ...", flush=True)
        generate(payload, size_mb, files)
    if layers == 1:
        lines = ["      - files: [{src: payload, dest: /payload}]"]
    else:
        lines = []
        for layer in range(layers):
            products = [f"product{i:02d}" for i in range(layer, PAYLOAD_PRODUCTS, layers)]
            items = ", ".join(f"{{src: payload/{p}, dest: /payload/{p}}}" for p in products)
            lines.append(f"      - files: [{items}]")
    recipe = work / "payload.yaml"
    recipe.write_text(PAYLOAD_RECIPE.format(layers="".join(line + "\n" for line in lines)))
    return recipe


def fresh(work: Path, name: str) -> Path:
    """WORK/NAME, removed if it was there."""
    path = work / name
    shutil.rmtree(path, ignore_errors=True)
    return path


@dataclass(frozen=True)
class Timing:
    name: str
    seconds: float
    peak_mb: float


def median(name: str, timings: list[Timing]) -> Timing:
    """Several runs of one thing: the median seconds, the largest peak."""
    return Timing(
        name, statistics.median(t.seconds for t in timings), max(t.peak_mb for t in timings)
    )


def timed(
    name: str, command: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> Timing:
    """Run a shell command under GNU time: its wall seconds, and the peak memory of its whole
    process tree (the sum of its processes' RSS, sampled every 50 ms), or the peak RSS of its
    largest process (GNU time's) when that is more."""
    with (
        tempfile.NamedTemporaryFile("r", suffix=".time") as out,
        tempfile.TemporaryFile("w+") as errors,
    ):
        proc = subprocess.Popen(
            [
                "/usr/bin/time",
                "-o",
                out.name,
                "-f",
                "%e %M",
                "bash",
                "-o",
                "pipefail",
                "-c",
                command,
            ],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        tree_kb = 0
        while proc.poll() is None:
            tree_kb = max(tree_kb, tree_rss_kb(proc.pid))
            time.sleep(0.05)
        if proc.returncode != 0:
            errors.seek(0)
            raise SystemExit(
                f"{name} failed ({proc.returncode}): {command}\n{errors.read()[-2000:]}"
            )
        seconds, peak_kb = out.read().split()[-2:]
    return Timing(name, float(seconds), max(int(peak_kb), tree_kb) / 1024)


def process_tree(pid: int) -> list[int]:
    """Process `pid` and all its descendants, from /proc (those ended meanwhile left out)."""
    found, waiting = [], [pid]
    while waiting:
        process = waiting.pop()
        try:
            for task in os.listdir(f"/proc/{process}/task"):  # children hang off their thread
                with open(f"/proc/{process}/task/{task}/children") as children:
                    waiting += [int(child) for child in children.read().split()]
        except OSError:  # ended meanwhile
            continue
        found.append(process)
    return found


def tree_rss_kb(pid: int) -> int:
    """The summed RSS of process `pid` and all its descendants, in KiB (0 once it is gone)."""
    total = 0
    for process in process_tree(pid):
        with contextlib.suppress(OSError), open(f"/proc/{process}/status") as status:
            total += next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0)
    return total


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def table(timings: list[Timing], reference: str) -> str:
    ref = next(t for t in timings if t.name == reference)
    lines = [f"{'tool':<44} {'seconds':>8} {'peak MB':>8} {'x ' + reference:>20}"]
    for t in timings:
        lines.append(
            f"{t.name:<44} {t.seconds:>8.2f} {t.peak_mb:>8.0f} {t.seconds / ref.seconds:>20.2f}"
        )
    return "\n".join(lines)


def series_table(rows: list[tuple[int, dict[str, Timing]]], names: list[str]) -> str:
    """A row per payload size: each tool's seconds, seconds per GB and peak memory; then, per tool,
    how its time per GB and its peak memory moved from the smallest size to the largest (time
    growing linearly keeps s/GB flat; streaming keeps memory flat)."""
    header = f"{'size MB':>8}"
    for name in names:
        header += f" | {name[:26]:>26} s  s/GB  MB"
    lines = [header]
    for size, timings in rows:
        line = f"{size:>8}"
        for name in names:
            t = timings.get(name)
            line += (
                f" | {t.seconds:>28.2f} {t.seconds / (size / 1000):>5.2f} {t.peak_mb:>3.0f}"
                if t
                else f" | {'-':>38}"
            )
        lines.append(line)
    if len(rows) > 1:
        (small, first), (large, last) = rows[0], rows[-1]
        for name in names:
            if name in first and name in last:
                per_gb = (last[name].seconds / large) / (first[name].seconds / small)
                memory = last[name].peak_mb / max(first[name].peak_mb, 1)
                lines.append(
                    f"{name}: x{large / small:.0f} size -> s/GB x{per_gb:.2f}, peak memory x{memory:.2f}"
                )
    return "\n".join(lines)


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of process `pid` and its descendants (the registry that
    registry/start.py runs), from /proc."""
    total = 0.0
    for each in process_tree(pid):
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


@contextmanager
def registry(
    work: Path, name: str, tls: tuple[Path, Path] | None = None
) -> Iterator[tuple[str, Callable[[], float]]]:
    """A fresh local registry (HTTPS with `tls`, a certificate and its key; else plain HTTP);
    yields its host:port and a function giving its CPU seconds."""
    directory = fresh(work / "registries", name)
    directory.mkdir(parents=True)
    process = subprocess.Popen(
        [
            sys.executable,
            str(PROJECT / "registry" / "start.py"),
            "--storage",
            str(directory / "storage"),
            "--log",
            str(directory / "registry.log"),
            *(["--cert", str(tls[0]), "--key", str(tls[1])] if tls else []),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url:
        raise SystemExit(f"registry/start.py failed: see {directory / 'registry.log'}")
    try:
        yield url.split("://", 1)[1], lambda: cpu_seconds(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait()
        shutil.rmtree(directory, ignore_errors=True)


class Link:
    """A link of `mb_per_s` shared by every download (a remote mirror's bandwidth, on
    loopback): each chunk waits for its slot."""

    def __init__(self, mb_per_s: float) -> None:
        self.bytes_per_s = mb_per_s * 1e6
        self.free_at = 0.0
        self.lock = threading.Lock()

    def send(self, chunk: bytes, out: BinaryIO) -> None:
        with self.lock:
            start = max(time.monotonic(), self.free_at)
            self.free_at = start + len(chunk) / self.bytes_per_s
            wait = self.free_at - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        out.write(chunk)


def serve(root: Path, mb_per_s: float = 0.0) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve `root` over HTTP on 127.0.0.1; with `mb_per_s`, through a link that fast."""
    link = Link(mb_per_s) if mb_per_s else None

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def copyfile(self, source: BinaryIO, outputfile: BinaryIO) -> None:  # type: ignore[override]
            if link is None:
                return super().copyfile(source, outputfile)
            while chunk := source.read(256 << 10):
                link.send(chunk, outputfile)

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def cpu_timed(name: str, command: str, env: dict[str, str] | None = None) -> tuple[Timing, float]:
    """`timed`, and the CPU seconds (user + system) the command's processes used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    timing = timed(name, command, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return timing, cpu
