#!/usr/bin/env python3
"""Reports, for every regular file under ROOT, the strings that name an install prefix and, for
ELF files, the dynamic section as `readelf` shows it: what Spack's relocation changed.

    prefix_report.py ROOT NEEDLE [NEEDLE ...] > report.json

For each file (path relative to ROOT) holding one of the NEEDLEs (e.g. /opt/spack), "strings"
lists each enclosing string (bytes between the previous and next NUL or newline, at most 1024
bytes either side of the needle) with its byte offset in the file; trailing NUL padding after a string is counted in
"nul_run" (how many NUL bytes follow it). ELF files get "elf": the interpreter, RPATH, RUNPATH,
NEEDED and SONAME from `readelf -d -l`. Spack's metadata (`.spack-db/`, `<prefix>/.spack/`) is
left out: Spack never relocates it (the tree listing has its bytes).
"""

import json
import os
import re
import stat
import subprocess
import sys


def elf_info(path):
    out = subprocess.run(
        ["readelf", "-W", "-d", "-l", path], capture_output=True, text=True, check=False
    ).stdout
    info = {}
    m = re.search(r"\[Requesting program interpreter: (.*)\]", out)
    if m:
        info["interpreter"] = m.group(1)
    for tag in ("RPATH", "RUNPATH", "SONAME", "NEEDED"):
        vals = re.findall(r"\(" + tag + r"\)\s+[^\[]*\[(.*)\]", out)
        if vals:
            info[tag] = vals if tag == "NEEDED" else vals[0]
    return info


def strings_with(data, needles):
    found = []
    seen = set()
    for needle in needles:
        for m in re.finditer(re.escape(needle), data):
            start = max(data.rfind(b"\0", 0, m.start()), data.rfind(b"\n", 0, m.start())) + 1
            start = max(start, m.start() - 1024)
            ends = [i for i in (data.find(b"\0", m.end()), data.find(b"\n", m.end())) if i >= 0]
            end = min(ends) if ends else len(data)
            end = min(end, m.end() + 1024)
            if any(a <= m.start() < b for a, b in seen):
                continue
            seen.add((start, end))
            nul = 0
            while end + nul < len(data) and data[end + nul] == 0:
                nul += 1
            found.append(
                {
                    "offset": start,
                    "text": data[start:end].decode("utf-8", "backslashreplace"),
                    "nul_run": nul,
                }
            )
    found.sort(key=lambda s: s["offset"])
    return found


def main(argv):
    root = argv[1]
    needles = [n.encode() for n in argv[2:]]
    report = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in (".spack", ".spack-db"))
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                continue
            with open(path, "rb") as f:
                data = f.read()
            rel = os.path.relpath(path, root)
            entry = {}
            if data[:4] == b"\x7fELF":
                entry["elf"] = elf_info(path)
            strings = strings_with(data, needles)
            if strings:
                entry["strings"] = strings
            if entry:
                report[rel] = entry
    json.dump(report, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv)
