# A fixture package for ocibuild's `spack` layer source (tests/spack/fixtures).
# Its source is zlib's examples/zpipe.c from Debian's zlib source package plus the small where.c
# that scripts/make-spack-fixtures writes; the install exercises every kind of relocation Spack
# does: RPATHs to a dependency, prefixes compiled into a binary, a text file and a script naming
# prefixes, a long shebang (sbang), absolute and relative symlinks and a hard link.
import os

from spack.package import *


class OcibuildZpipe(Package):
    """zlib's zpipe example and a program printing its compiled-in prefixes."""

    homepage = "https://zlib.net/zlib_how.html"
    url = "https://example.invalid/ocibuild-zpipe-1.0.tar.gz"

    version("1.0")

    depends_on("zlib")
    depends_on("gmake", type=("build", "run"))

    def install(self, spec, prefix):
        zlib = spec["zlib"].prefix
        cc = Executable(spack_cc)
        mkdirp(prefix.bin)
        share = join_path(prefix.share, "ocibuild-zpipe")
        mkdirp(share)
        cc(
            "-O2",
            "-o",
            join_path(prefix.bin, "zpipe"),
            "zpipe.c",
            "-I" + zlib.include,
            "-L" + zlib.lib,
            "-lz",
        )
        cc(
            "-O2",
            "-o",
            join_path(prefix.bin, "zpipe-where"),
            "where.c",
            '-DZPIPE_PREFIX="%s"' % prefix,
            '-DZLIB_PREFIX="%s"' % zlib,
            "-I" + zlib.include,
            "-L" + zlib.lib,
            "-lz",
        )
        # a script whose interpreter lives in a (padded, long) Spack prefix: Spack's sbang hook
        # rewrites its shebang after the install
        script = join_path(prefix.bin, "zpipe-roundtrip")
        with open(script, "w") as f:
            f.write("#!%s -f\n" % spec["gmake"].prefix.bin.make)
            f.write("# compresses and decompresses a line through %s\n" % prefix.bin.zpipe)
            f.write("ZPIPE = %s\n" % prefix.bin.zpipe)
            f.write("all:\n")
            f.write("\t@printf 'ocibuild zpipe round trip\\n' | $(ZPIPE) | $(ZPIPE) -d\n")
        os.chmod(script, 0o755)
        with open(join_path(share, "prefixes.txt"), "w") as f:
            f.write("zpipe %s\nzlib %s\ngmake %s\n" % (prefix, zlib, spec["gmake"].prefix))
        # links: relative, absolute into the own prefix, absolute into a dependency, a hard link
        with working_dir(prefix.bin):
            os.symlink("zpipe", "unzpipe")
            os.symlink(join_path(prefix.bin, "zpipe-where"), "zpipe-where-abs")
            os.link("zpipe", "zpipe-hardlink")
        mkdirp(prefix.lib)
        os.symlink(join_path(zlib.lib, "libz.so"), join_path(prefix.lib, "libz-of-zlib.so"))
