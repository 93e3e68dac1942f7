"""What base-files' postinst makes on a fresh install (`configure` with no old version),
without running it: its calls of its own helper functions, read from the script, done as the
functions do them (with `$DPKG_ROOT` the image's root):

- `install_from_default NAME PATH`: /usr/share/base-files/NAME copied to PATH if PATH is
  missing (/etc/profile, /root/.profile, /root/.bashrc, /etc/motd, /usr/share/info/dir);
- `install_directory DIR MODE GROUP`: the directory, if missing (/opt, /srv, /var/mail, ...);
- `install_local_dir DIR`: the /usr/local tree's directories (root:staff 2775 when
  /etc/staff-group-for-usr-local exists, else as they are);
- `migrate_directory DIR TARGET`: DIR replaced by a symlink to TARGET (/var/run -> /run);
- `ensure_file_owner_mode PATH OWNER MODE`: an empty file (/var/log/wtmp, btmp, lastlog);
- `ln -s[f] TARGET LINK` lines with literal words (/var/spool/mail, /usr/local/man,
  /etc/dpkg/origins/default).

`update_to_current_default` (upgrades only) is not done. Groups are named by the image's
/etc/group, else base-passwd's master copy.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ocibuild.layer.entry import Entry, bytes_entry, dir_entry, symlink_entry

SCRIPT = "var/lib/dpkg/info/base-files.postinst"
DEFAULTS = "usr/share/base-files/"
STAFF_MARK = "etc/staff-group-for-usr-local"


@dataclass(frozen=True)
class Made:
    """One thing the postinst makes: a file, directory or symlink at `path` (image-relative)."""

    path: str
    kind: str  # file, dir, link
    mode: int = 0o644
    gid: int = 0
    data: bytes = b""
    target: str = ""

    def entry(self) -> Entry:
        if self.kind == "dir":
            return dir_entry(self.path, self.mode, gid=self.gid)
        if self.kind == "link":
            return symlink_entry(self.path, self.target)
        return bytes_entry(self.path, self.data, self.mode, gid=self.gid)


def made(
    script: str,
    files: dict[str, bytes],
    exists: Callable[[str], bool],
    groups: dict[str, int],
) -> tuple[list[Made], list[str]]:
    """What the fresh-install postinst `script` makes over the image (`exists` takes absolute
    paths); and notes on calls it makes that are not done."""
    out: dict[str, Made] = {}
    notes: list[str] = []
    staff = STAFF_MARK in files
    for line in script.splitlines():
        try:
            words = shlex.split(
                line.replace('"$DPKG_ROOT', '"').replace("$DPKG_ROOT", ""), comments=True
            )
        except ValueError:
            continue
        if not words or any("$" in w for w in words):
            continue  # the helpers' own bodies, and what is not literal
        call, args = words[0], words[1:]
        if call == "install_from_default" and len(args) == 2:
            path = args[1].lstrip("/")
            source = files.get(DEFAULTS + args[0])
            if source is not None and not exists("/" + path):
                out.setdefault(path, Made(path, "file", 0o644, data=source))
        elif call == "install_directory" and len(args) == 3:
            path = args[0].lstrip("/")
            if not exists("/" + path) and args[2] in groups:
                out.setdefault(path, Made(path, "dir", int(args[1], 8), groups[args[2]]))
        elif call == "install_local_dir" and len(args) == 1:
            path = args[0].lstrip("/")
            if staff and "staff" in groups:
                out[path] = Made(path, "dir", 0o2775, groups["staff"])
            elif not exists("/" + path):
                out.setdefault(path, Made(path, "dir", 0o755))
        elif call == "migrate_directory" and len(args) == 2:
            path = args[0].lstrip("/")
            if exists("/" + path):
                out[path] = Made(path, "link", target=args[1])
        elif call == "ensure_file_owner_mode" and len(args) == 3:
            path = args[0].lstrip("/")
            group = args[1].partition(":")[2]
            if not exists("/" + path) and group in groups:
                out.setdefault(path, Made(path, "file", int(args[2], 8), groups[group]))
        elif call == "ln" and len(args) == 3 and args[0] in ("-s", "-sf"):
            path = args[2].lstrip("/")
            if args[0] == "-sf" or not exists("/" + path):
                out[path] = Made(path, "link", target=args[1])
        elif call in ("install_from_default", "install_directory", "install_local_dir"):
            notes.append(f"base-files: {line.strip()}: not understood")
    return [out[p] for p in sorted(out)], notes


def group_ids(group_file: bytes) -> dict[str, int]:
    """Group names -> ids of an /etc/group (or base-passwd master) file."""
    out = {}
    for line in group_file.decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[2].isdigit():
            out[fields[0]] = int(fields[2])
    return out


def entries(found: list[Made]) -> Iterator[Entry]:
    for item in found:
        yield item.entry()
