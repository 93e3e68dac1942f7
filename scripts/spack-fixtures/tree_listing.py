#!/usr/bin/env python3
"""Lists a directory tree as JSON: every path under ROOT (relative to it, sorted), with its type
("dir", "file", "symlink"), mode (octal string, permission bits), symlink target, size and sha256 of
a file's bytes, and, for a hard-linked file, the first path (in sorted order) sharing its inode.

    tree_listing.py ROOT [--exclude RELPATH ...] > listing.json
"""

import hashlib
import json
import os
import stat
import sys


def listing(root, exclude=()):
    entries = []
    inodes = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        names = sorted(dirnames + filenames)
        for name in names:
            path = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if any(rel == e or rel.startswith(e + "/") for e in exclude):
                continue
            st = os.lstat(path)
            entry = {"path": rel, "mode": f"{stat.S_IMODE(st.st_mode):04o}"}
            if stat.S_ISLNK(st.st_mode):
                entry["type"] = "symlink"
                entry["target"] = os.readlink(path)
                del entry["mode"]
            elif stat.S_ISDIR(st.st_mode):
                entry["type"] = "dir"
            elif stat.S_ISREG(st.st_mode):
                entry["type"] = "file"
                entry["size"] = st.st_size
                h = hashlib.sha256()
                with open(path, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                entry["sha256"] = h.hexdigest()
                if st.st_nlink > 1:
                    inodes.setdefault((st.st_dev, st.st_ino), []).append(entry)
            else:
                entry["type"] = "other"
            entries.append(entry)
        # os.walk does not descend into symlinked dirs (followlinks=False): they are listed
    for group in inodes.values():
        if len(group) > 1:
            group.sort(key=lambda e: e["path"])
            for e in group[1:]:
                e["hardlink_to"] = group[0]["path"]
    entries.sort(key=lambda e: e["path"])
    return entries


def main(argv):
    root = argv[1]
    exclude = []
    i = 2
    while i < len(argv):
        if argv[i] == "--exclude":
            exclude.append(argv[i + 1])
            i += 2
        else:
            raise SystemExit(f"unknown argument {argv[i]!r}")
    # one entry a line: small and diff-friendly
    entries = listing(root, exclude)
    sys.stdout.write('{"root": ' + json.dumps(os.path.abspath(root)) + ', "entries": [\n')
    sys.stdout.write(",\n".join(json.dumps(e, sort_keys=True) for e in entries))
    sys.stdout.write("\n]}\n")


if __name__ == "__main__":
    main(sys.argv)
