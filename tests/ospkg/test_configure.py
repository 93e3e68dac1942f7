"""The pieces of the `configure` source on their own: the update-alternatives calls read from
maintainer scripts of the shapes Debian's postinsts have, dpkg's choice, and OpenSSL's subject
hash against the real `openssl x509 -subject_hash` over the host's CA certificates."""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path

from cryptography import x509

from ocibuild.ospkg.alternatives import Install, Slave, groups, install_calls, state_file
from ocibuild.ospkg.cacerts import pem_name, subject_hash

GXX = """#!/bin/sh
set -e
update-alternatives \\
    --install /usr/bin/c++ c++ /usr/bin/g++ 20 \\
    #--slave /usr/share/man/man1/c++.1.gz c++.1.gz /usr/share/man/man1/g++.1.gz
update-alternatives --remove c++ /usr/bin/g++-old || true
"""
XZ = """#!/bin/sh
set -e

slave () {
\tdir=$1 filename=$2 target=$3
\techo "--slave $dir/$filename $filename $dir/$target"
}

update-alternatives --install /usr/bin/lzma lzma /usr/bin/xz 20 $(
\tslave /usr/share/man/man1 lzma.1.gz xz.1.gz
\tfor util in cat more
\tdo
\t\tslave /usr/bin lz$util xz$util
\tdone
)
"""
UNKNOWN = """if [ "$1" = configure ]; then
    update-alternatives --install /usr/bin/x x /usr/lib/x/$VERSION/x 10 --slave /a a /b
fi
"""


def test_a_commented_slave_is_no_slave() -> None:
    calls, notes = install_calls("g++", GXX)
    assert calls == [Install("g++", "/usr/bin/c++", "c++", "/usr/bin/g++", 20)] and notes == []


def test_slaves_listed_by_a_command_substitution() -> None:
    (call,), notes = install_calls("xz-utils", XZ)
    assert notes == []
    assert (call.link, call.name, call.path, call.priority) == (
        "/usr/bin/lzma",
        "lzma",
        "/usr/bin/xz",
        20,
    )
    assert call.slaves == (
        Slave("lzma.1.gz", "/usr/share/man/man1/lzma.1.gz", "/usr/share/man/man1/xz.1.gz"),
        Slave("lzcat", "/usr/bin/lzcat", "/usr/bin/xzcat"),
        Slave("lzmore", "/usr/bin/lzmore", "/usr/bin/xzmore"),
    )


def test_a_word_from_elsewhere_is_said() -> None:
    calls, notes = install_calls("x", UNKNOWN)
    assert calls == []
    assert notes == [
        "x: update-alternatives /usr/bin/x x /usr/lib/x/$VERSION/x ...: not evaluated from '/usr/lib/x/$VERSION/x' on"
    ]


def test_auto_mode_takes_the_highest_priority_then_the_first_path() -> None:
    calls = [
        Install(
            "mawk",
            "/usr/bin/awk",
            "awk",
            "/usr/bin/mawk",
            5,
            (Slave("nawk", "/usr/bin/nawk", "/usr/bin/mawk"),),
        ),
        Install("gawk", "/usr/bin/awk", "awk", "/usr/bin/gawk", 10),
        Install("busybox", "/usr/bin/awk", "awk", "/usr/bin/bbawk", 10),
        Install("original-awk", "/usr/bin/awk", "awk", "/usr/bin/original-awk", 50),
    ]
    (group,) = groups(calls, lambda path: path != "/usr/bin/original-awk")  # not installed
    assert group.best.path == "/usr/bin/bbawk"
    assert state_file(group).decode().split("\n") == [
        "auto", "/usr/bin/awk", "nawk", "/usr/bin/nawk", "",
        "/usr/bin/bbawk", "10", "", "/usr/bin/gawk", "10", "", "/usr/bin/mawk", "5", "/usr/bin/mawk", "", "",
    ]  # fmt: skip


def test_subject_hash_is_openssls() -> None:
    certs = sorted(Path("/usr/share/ca-certificates/mozilla").glob("*.crt"))
    assert len(certs) > 100, "the host's ca-certificates (scripts/setup-test-env) is missing"
    ours = []
    for path in certs:
        with warnings.catch_warnings():  # old CAs' serial numbers
            warnings.simplefilter("ignore")
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        ours.append(f"{subject_hash(cert.subject):08x}")
    theirs = [
        subprocess.run(
            ["openssl", "x509", "-noout", "-subject_hash", "-in", str(path)],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        for path in certs
    ]  # fmt: skip
    assert ours == theirs


def test_pem_names_are_update_ca_certificates() -> None:
    assert pem_name("mozilla/NetLock_Arany_(Class_Gold)_Főtanúsítvány.crt") == (
        "NetLock_Arany_=Class_Gold=_Főtanúsítvány.pem"
    )
    assert pem_name("local/a b,c.crt") == "a_b_c.pem"
