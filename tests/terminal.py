"""Run a real command on a pseudo-terminal and read back its final screen: a small emulator of
what rich's live display sends (text, CR, LF, cursor up, erase line; colours ignored)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
from pathlib import Path

WIDTH, HEIGHT = 120, 50
_TOKEN = re.compile(r"(\x1b\[[0-9;?]*[A-Za-z]|\r|\n)")


def run_on_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, bytes]:
    """Run `args` with stdin, stdout and stderr on one pseudo-terminal; its exit status and
    everything it wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", HEIGHT, WIDTH, 0, 0))
    process = subprocess.Popen(
        args,
        cwd=cwd,
        env={**env, "TERM": "xterm", "COLUMNS": str(WIDTH), "LINES": str(HEIGHT)},
        stdin=slave,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    data = bytearray()
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        data += chunk
    os.close(master)
    return process.wait(timeout=300), bytes(data)


def screen(data: bytes, width: int = WIDTH) -> list[str]:
    """The lines left on the terminal after `data` (scrollback included), trailing blanks cut."""
    lines: list[list[str]] = [[]]
    row = col = 0
    for token in _TOKEN.split(data.decode("utf-8", "replace")):
        if not token:
            continue
        if token == "\r":
            col = 0
        elif token == "\n":
            row += 1
        elif token.startswith("\x1b["):
            final, arg = token[-1], token[2:-1]
            if final == "A":
                row = max(0, row - int(arg or 1))
            elif final == "B":
                row += int(arg or 1)
            elif final == "G":
                col = int(arg or 1) - 1
            elif final == "K":
                while len(lines) <= row:
                    lines.append([])
                lines[row] = [] if arg == "2" else lines[row][:col]
            # colours (m) and cursor visibility (?25h/l) change nothing on the screen
        else:
            for ch in token:
                if col >= width:  # autowrap, deferred as xterm does
                    row, col = row + 1, 0
                while len(lines) <= row:
                    lines.append([])
                line = lines[row]
                line.extend(" " * (col - len(line)))
                if col < len(line):
                    line[col] = ch
                else:
                    line.append(ch)
                col += 1
        while len(lines) <= row:
            lines.append([])
    text = ["".join(line).rstrip() for line in lines]
    while text and not text[-1]:
        text.pop()
    return text
