# A benchmark package for bench/spack_bench.py (made by scripts/make-spack-bench-cache, never in
# CI). Each version is a slice of this machine's /usr: real ELF programs and libraries, Python
# trees, headers and data, copied into the prefix. Every dynamic ELF file gets an RPATH naming its
# own prefix and zlib's, so that Spack's push lists it for relocation and `spack install
# --cache-only` relocates it, as it does a compiled package; symlinks leaving the slice are
# dropped, and a text file names the prefixes.
import os
import shutil
import stat
import subprocess

from spack.package import *

# version -> (source directory on this machine, where it goes in the prefix)
SLICES = {
    "python": [("/usr/lib/python3", "lib/python3"), ("/usr/lib/python3.11", "lib/python3.11")],
    "gcc": [("/usr/lib/gcc", "lib/gcc")],
    "libs": [("/usr/lib/x86_64-linux-gnu", "lib")],
    "bin": [("/usr/bin", "bin")],
    "jvm": [("/usr/lib/jvm", "jvm")],
    "share": [("/usr/share", "share")],
}


class OcibuildBenchTree(Package):
    """A slice of the host's /usr as an installed package, for benchmarks."""

    homepage = "https://example.invalid/ocibuild-bench-tree"
    has_code = False  # nothing to fetch: the install copies from this machine

    for _name in SLICES:
        version(_name)

    depends_on("zlib")

    def install(self, spec, prefix):
        rpath = "%s:%s" % (prefix.lib, spec["zlib"].prefix.lib)
        for source, dest in SLICES[str(spec.version)]:
            copy_slice(source, join_path(prefix, dest), rpath)
        share = join_path(prefix, "share", "ocibuild-bench-tree")
        mkdirp(share)
        with open(join_path(share, "prefixes.txt"), "w") as f:
            f.write("self %s\nzlib %s\n" % (prefix, spec["zlib"].prefix))


def copy_slice(source, dest, rpath):
    for top, dirs, files in os.walk(source):
        rel = os.path.relpath(top, source)
        target_dir = os.path.normpath(join_path(dest, rel))
        mkdirp(target_dir)
        for name in dirs + files:
            src = join_path(top, name)
            dst = join_path(target_dir, name)
            st = os.lstat(src)
            if stat.S_ISLNK(st.st_mode):
                link = os.readlink(src)
                resolved = os.path.normpath(join_path(top, link))
                if os.path.commonpath([resolved, source]) != source:
                    continue  # leaves the slice
                os.symlink(
                    link
                    if not os.path.isabs(link)
                    else join_path(dest, os.path.relpath(resolved, source)),
                    dst,
                )
                if name in dirs:
                    dirs.remove(name)  # not walked twice
            elif stat.S_ISREG(st.st_mode):
                shutil.copyfile(src, dst)
                os.chmod(dst, 0o755 if st.st_mode & 0o111 else 0o644)
                with open(dst, "rb") as f:
                    elf = f.read(4) == b"\x7fELF"
                if elf:  # static programs and objects without a dynamic section refuse it
                    subprocess.run(
                        ["patchelf", "--set-rpath", rpath, dst],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        check=False,
                    )
