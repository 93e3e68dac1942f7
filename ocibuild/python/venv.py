"""A virtual environment for the image's Python, as `python3 -m venv --without-pip DIR` run in
the image makes it: `pyvenv.cfg`, `bin/python` linking to the image's interpreter with
`python3` and `python3.X` linking to it, `lib/python3.X/site-packages`, and `lib64 -> lib`."""

from __future__ import annotations

import posixpath

from ocibuild.layer.entry import Entry, Kind, bytes_entry, clean_path, dir_entry


def venv_entries(root: str, base_interpreter: str, version: tuple[int, int, int]) -> list[Entry]:
    """The entries of a venv at image path `root` over `base_interpreter` (e.g.
    /usr/bin/python3)."""
    short = f"{version[0]}.{version[1]}"
    full = ".".join(map(str, version))
    root = clean_path(root, "target")
    home = posixpath.dirname(base_interpreter)
    config = (
        f"home = {home}\n"
        "include-system-site-packages = false\n"
        f"version = {full}\n"
        f"executable = {posixpath.join(home, 'python' + short)}\n"
        f"command = {base_interpreter} -m venv --without-pip /{root}\n"
    )
    return [
        dir_entry(root),
        dir_entry(f"{root}/bin"),
        Entry(f"{root}/bin/python", Kind.SYMLINK, mode=0o777, link=base_interpreter),
        Entry(f"{root}/bin/python{version[0]}", Kind.SYMLINK, mode=0o777, link="python"),
        Entry(f"{root}/bin/python{short}", Kind.SYMLINK, mode=0o777, link="python"),
        dir_entry(f"{root}/include"),
        dir_entry(f"{root}/lib"),
        dir_entry(f"{root}/lib/python{short}"),
        dir_entry(f"{root}/lib/python{short}/site-packages"),
        Entry(f"{root}/lib64", Kind.SYMLINK, mode=0o777, link="lib"),
        bytes_entry(f"{root}/pyvenv.cfg", config.encode()),
    ]
