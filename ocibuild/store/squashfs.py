"""A flattened image tar stream -> a squashfs image, through `tar2sqfs` (squashfs-tools-ng).

tar2sqfs compresses blocks on all cores and reads the tar from a pipe, so the image is never
unpacked. Its output depends only on its input and options: timestamps come from the stream,
the superblock's from SOURCE_DATE_EPOCH, and the block order does not depend on the threads.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ocibuild.errors import ExportError
from ocibuild.outpath import OutputPath, output_name

SQUASHFS_COMPRESSIONS = ("gzip", "xz", "lz4", "zstd")
# (lowest, highest, default). gzip 4, not tar2sqfs's 9: on the bench payload it makes an image
# 6% larger than mksquashfs's level 9 in a third of the compression time (docs/hpc.md).
LEVELS: dict[str, tuple[int, int, int] | None] = {
    "gzip": (1, 9, 4),
    "xz": (0, 9, 6),
    "lz4": None,
    "zstd": (1, 22, 6),
}
TAR2SQFS_PACKAGE = (
    "tar2sqfs not found: install squashfs-tools-ng "
    "(Debian/Ubuntu: apt install squashfs-tools-ng; EL: dnf install squashfs-tools-ng from EPEL)"
)


@dataclass(frozen=True)
class SquashfsOptions:
    compression: str = "gzip"
    level: int | None = None
    xattrs: bool = False
    mtime: int = 0  # the superblock's time and that of directories no entry names

    def __post_init__(self) -> None:
        if self.compression not in SQUASHFS_COMPRESSIONS:
            raise ExportError(
                f"unknown squashfs compression {self.compression!r} "
                f"(one of {', '.join(SQUASHFS_COMPRESSIONS)})"
            )
        levels = LEVELS[self.compression]
        if self.level is not None and levels is None:
            raise ExportError(f"{self.compression} has no compression levels")
        if self.level is not None and levels and not levels[0] <= self.level <= levels[1]:
            raise ExportError(
                f"{self.compression} level {self.level} is outside {levels[0]}..{levels[1]}"
            )

    @property
    def effective_level(self) -> int | None:
        levels = LEVELS[self.compression]
        return None if levels is None else self.level if self.level is not None else levels[2]


F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
PIPE_BYTES = 1 << 20  # Linux's default limit for an unprivileged pipe (/proc/sys/fs/pipe-max-size)


def tar2sqfs() -> str:
    tool = shutil.which("tar2sqfs")
    if tool is None:
        raise ExportError(TAR2SQFS_PACKAGE)
    return tool


def tar2sqfs_command(tool: str, output: Path, options: SquashfsOptions) -> list[str]:
    argv = [tool, "--quiet", "--force", "--no-skip", "--compressor", options.compression]
    if options.effective_level is not None:
        argv += ["--comp-extra", f"level={options.effective_level}"]
    argv += ["--num-jobs", str(len(os.sched_getaffinity(0)))]
    argv += ["--defaults", f"mtime={options.mtime}"]
    if not options.xattrs:
        argv.append("--no-xattr")
    return [*argv, str(output)]


def write_squashfs(
    tar_chunks: Iterable[bytes], output: OutputPath, options: SquashfsOptions
) -> None:
    """Write the squashfs of a tar stream to `output` (under a temporary name until complete,
    or straight to a device or FIFO)."""
    tool = tar2sqfs()
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(options.mtime)}
    with output_name(output) as tmp, tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            tar2sqfs_command(tool, tmp, options),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=env,
        )
        assert proc.stdin is not None
        with contextlib.suppress(OSError):  # a bigger pipe: tar2sqfs' readers wait less
            fcntl.fcntl(proc.stdin.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
        try:
            for chunk in tar_chunks:
                proc.stdin.write(chunk)
            proc.stdin.close()
        except BrokenPipeError:
            pass  # tar2sqfs stopped: its exit status and messages say why
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if proc.wait() != 0 or not proc.stdin.closed:
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip().splitlines()[-3:]
            raise ExportError(
                f"tar2sqfs failed ({proc.returncode}) writing {output}: {' '.join(message)}"
            )
