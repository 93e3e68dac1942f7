"""Run a real command on a pseudo-terminal and read back its screen: a small emulator of what
rich's live display sends (text, CR, LF, cursor up, erase line; colours ignored), which also
notes every line the terminal had to wrap (text written past its last column)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
from dataclasses import dataclass, field
from pathlib import Path

WIDTH, HEIGHT = 120, 50
_TOKEN = re.compile(r"(\x1b\[[0-9;?]*[A-Za-z]|\r|\n)")
REDRAW = b"\r\x1b[2K"  # where rich's live display starts redrawing its rows


def run_on_terminal(
    args: list[str], cwd: Path, env: dict[str, str], width: int = WIDTH, height: int = HEIGHT
) -> tuple[int, bytes]:
    """Run `args` with stdin, stdout and stderr on one pseudo-terminal `width` columns wide;
    its exit status and everything it wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
    process = subprocess.Popen(
        args,
        cwd=cwd,
        env={**env, "TERM": "xterm", "COLUMNS": str(width), "LINES": str(height)},
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


@dataclass
class Screen:
    """The lines left on the terminal (scrollback included, trailing blanks cut), and the rows
    the terminal continued onto the next line because text went past its last column."""

    lines: list[str]
    wrapped: list[str] = field(default_factory=list)


def emulate(data: bytes, width: int = WIDTH) -> Screen:
    lines: list[list[str]] = [[]]
    wrapped: set[int] = set()  # rows that are the continuation of the row above
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
                if arg == "2" or col == 0:
                    wrapped.discard(row)
            # colours (m) and cursor visibility (?25h/l) change nothing on the screen
        else:
            for ch in token:
                if col >= width:  # autowrap, deferred as xterm does
                    row, col = row + 1, 0
                    wrapped.add(row)
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
    return Screen(text, ["".join(lines[r - 1]) for r in sorted(wrapped) if r < len(text)])


def screen(data: bytes, width: int = WIDTH) -> list[str]:
    """The lines left on the terminal after `data` (scrollback included), trailing blanks cut."""
    return emulate(data, width).lines


def frames(data: bytes, width: int = WIDTH) -> list[Screen]:
    """The screen just before each redraw of the live rows: what a user saw along the way."""
    marks = [m.start() for m in re.finditer(re.escape(REDRAW), data)]
    return [emulate(data[:mark], width) for mark in marks]


STATUSES = {
    "downloading",
    "downloaded",
    "cached",
    "building",
    "built",
    "uploading",
    "uploaded",
    "skipped",
    "mounted",
    "present",
    "copying",
    "copied",
}
SIZE = r"\d+(?:\.\d)? (?:B|kB|MB|GB|TB)"
_ROW_END = re.compile(
    rf"(?: (?:\d+(?:\.\d)?/\d+(?:\.\d)? (?:B|kB|MB|GB|TB)|{SIZE}))"  # bytes, done/total or all
    rf"(?: +{SIZE}/s)?"  # the rate
    r"(?: +(?:eta )?(?:\d+:\d\d|\d+h\d\dm))?$"  # time taken or left
)


def rows(lines: list[str]) -> list[str]:
    """The progress rows among `lines` (a status right-aligned in 11 columns, then what it is
    about, then the numbers), each checked whole: no number cut from its unit, no cell
    wrapped onto a line of its own (messages and results start in the first column)."""
    found = []
    for line in lines:
        if line[:11].strip() in STATUSES and line[11:12] == " " and line[:1] in (" ", "d"):
            assert _ROW_END.search(line), f"a row without its numbers: {line!r}"
            found.append(line)
        else:  # a message, a result (from the first column): never a fragment of a row
            assert not line.startswith(" ") or line.strip().startswith("… and "), line
    return found
