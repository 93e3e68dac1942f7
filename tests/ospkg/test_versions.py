"""Version comparison: rpm's own rpmvercmp test list (rpm's tests/rpmvercmp.at), checked also
against the installed rpm; Debian's ordering checked against `dpkg --compare-versions`."""

from __future__ import annotations

import subprocess

import pytest

from ocibuild.ospkg.debver import Relation, compare_versions, parse_relations
from ocibuild.ospkg.rpmver import EQUAL, EVR, GREATER, LESS, ranges_overlap, rpmvercmp

# rpm's tests/rpmvercmp.at (RPMVERCMP(a, b, expected)), including tilde and caret sorting
RPMVERCMP_CASES = [
    ("1.0", "1.0", 0), ("1.0", "2.0", -1), ("2.0", "1.0", 1),
    ("2.0.1", "2.0.1", 0), ("2.0", "2.0.1", -1), ("2.0.1", "2.0", 1),
    ("2.0.1a", "2.0.1a", 0), ("2.0.1a", "2.0.1", 1), ("2.0.1", "2.0.1a", -1),
    ("5.5p1", "5.5p1", 0), ("5.5p1", "5.5p2", -1), ("5.5p2", "5.5p1", 1),
    ("5.5p10", "5.5p10", 0), ("5.5p1", "5.5p10", -1), ("5.5p10", "5.5p1", 1),
    ("10xyz", "10.1xyz", -1), ("10.1xyz", "10xyz", 1),
    ("xyz10", "xyz10", 0), ("xyz10", "xyz10.1", -1), ("xyz10.1", "xyz10", 1),
    ("xyz.4", "xyz.4", 0), ("xyz.4", "8", -1), ("8", "xyz.4", 1), ("xyz.4", "2", -1), ("2", "xyz.4", 1),
    ("5.5p2", "5.6p1", -1), ("5.6p1", "5.5p2", 1),
    ("5.6p1", "6.5p1", -1), ("6.5p1", "5.6p1", 1),
    ("6.0.rc1", "6.0", 1), ("6.0", "6.0.rc1", -1),
    ("10b2", "10a1", 1), ("10a2", "10b2", -1),
    ("1.0aa", "1.0aa", 0), ("1.0a", "1.0aa", -1), ("1.0aa", "1.0a", 1),
    ("10.0001", "10.0001", 0), ("10.0001", "10.1", 0), ("10.1", "10.0001", 0),
    ("10.0001", "10.0039", -1), ("10.0039", "10.0001", 1),
    ("4.999.9", "5.0", -1), ("5.0", "4.999.9", 1),
    ("20101121", "20101121", 0), ("20101121", "20101122", -1), ("20101122", "20101121", 1),
    ("2_0", "2_0", 0), ("2.0", "2_0", 0), ("2_0", "2.0", 0),
    ("a", "a", 0), ("a+", "a+", 0), ("a+", "a_", 0), ("a_", "a+", 0), ("+a", "+a", 0),
    ("+a", "_a", 0), ("_a", "+a", 0), ("+_", "+_", 0), ("_+", "+_", 0), ("_+", "_+", 0),
    ("+", "_", 0), ("_", "+", 0),
    ("1.0~rc1", "1.0~rc1", 0), ("1.0~rc1", "1.0", -1), ("1.0", "1.0~rc1", 1),
    ("1.0~rc1", "1.0~rc2", -1), ("1.0~rc2", "1.0~rc1", 1),
    ("1.0~rc1~git123", "1.0~rc1~git123", 0), ("1.0~rc1~git123", "1.0~rc1", -1),
    ("1.0~rc1", "1.0~rc1~git123", 1),
    ("1.0^", "1.0^", 0), ("1.0^", "1.0", 1), ("1.0", "1.0^", -1),
    ("1.0^git1", "1.0^git1", 0), ("1.0^git1", "1.0", 1), ("1.0", "1.0^git1", -1),
    ("1.0^git1", "1.0^git2", -1), ("1.0^git2", "1.0^git1", 1),
    ("1.0^git1", "1.01", -1), ("1.01", "1.0^git1", 1),
    ("1.0^20160101", "1.0^20160101", 0), ("1.0^20160101", "1.0.1", -1), ("1.0.1", "1.0^20160101", 1),
    ("1.0^20160101^git1", "1.0^20160101^git1", 0), ("1.0^20160102", "1.0^20160101^git1", 1),
    ("1.0^20160101^git1", "1.0^20160102", -1),
    ("1.0~rc1^git1", "1.0~rc1^git1", 0), ("1.0~rc1^git1", "1.0~rc1", 1), ("1.0~rc1", "1.0~rc1^git1", -1),
    ("1.0^git1~pre", "1.0^git1~pre", 0), ("1.0^git1", "1.0^git1~pre", 1), ("1.0^git1~pre", "1.0^git1", -1),
]  # fmt: skip


@pytest.mark.parametrize(("a", "b", "expected"), RPMVERCMP_CASES)
def test_rpmvercmp(a: str, b: str, expected: int) -> None:
    assert rpmvercmp(a, b) == expected


def test_rpmvercmp_agrees_with_the_installed_rpm() -> None:
    pairs = "".join(f'{{"{a}","{b}"}},' for a, b, _ in RPMVERCMP_CASES)
    lua = f"%{{lua: for _, p in ipairs({{{pairs}}}) do print(rpm.vercmp(p[1], p[2]) .. ' ') end}}"
    out = subprocess.run(["rpm", "--eval", lua], capture_output=True, text=True, check=True).stdout
    assert [int(x) for x in out.split()] == [rpmvercmp(a, b) for a, b, _ in RPMVERCMP_CASES]


@pytest.mark.parametrize(
    ("provide", "requirement", "overlaps"),
    [
        ((EQUAL, "1:0.5-1"), (GREATER | EQUAL, "2.0"), True),  # an epoch beats any version
        ((EQUAL, "0.5-1"), (GREATER | EQUAL, "2.0"), False),
        ((EQUAL, "0:2.0-1"), (GREATER | EQUAL, "2.0"), True),  # epoch 0 is no epoch
        ((EQUAL, "2.0-3"), (EQUAL, "2.0"), True),  # a requirement without release: any release
        ((EQUAL, "2.0-3"), (LESS, "2.0-4"), True),
        ((EQUAL, "2.0-3"), (GREATER, "2.0-3"), False),
        ((EQUAL, "1.0~rc1-1"), (GREATER | EQUAL, "1.0"), False),
        ((0, ""), (GREATER, "9"), True),  # an unversioned provide satisfies everything
        ((EQUAL, "3"), (0, ""), True),
    ],
)
def test_dependency_ranges(
    provide: tuple[int, str], requirement: tuple[int, str], overlaps: bool
) -> None:
    assert (
        ranges_overlap(provide[0], EVR.parse(provide[1]), requirement[0], EVR.parse(requirement[1]))
        is overlaps
    )


def test_evr_ordering_and_text() -> None:
    assert EVR.parse("1:0.5-1").compare(EVR.parse("2.0-1")) == 1
    assert EVR.parse("2.0-1.el6").compare(EVR.parse("2.0-1.el6_7")) == -1
    assert str(EVR.parse("1:0.5-1")) == "1:0.5-1" and str(EVR.parse("0:2.0-3")) == "2.0-3"


DEB_CASES = [
    ("1.0", "1.0"), ("1.0", "1.0-1"), ("1.0~rc1", "1.0"), ("1.0~~", "1.0~"), ("1.0~", "1.0"),
    ("1.0", "1.0+b1"), ("1.0a", "1.0"), ("1:0.1", "2.0"), ("0:1.0", "1.0"), ("2.36-9+deb12u4", "2.36-9"),
    ("2.36-9+deb12u10", "2.36-9+deb12u9"), ("1.2.3", "1.2.10"), ("1.001", "1.1"), ("1.0-1ubuntu1", "1.0-1"),
    ("9.1-1", "9.1-1+b1"), ("5.2.15-2+b2", "5.2.15-2"), ("1.0.0+dfsg-1", "1.0.0-1"), ("1a", "1b"),
    ("1.0-0.1", "1.0-0~bpo1"), ("7.88.1-10+deb12u5", "7.88.1-10+deb12u14"), ("1:2.4.44", "2.5.1"),
]  # fmt: skip


@pytest.mark.parametrize(("a", "b"), DEB_CASES)
def test_debian_versions_agree_with_dpkg(a: str, b: str) -> None:
    ours = compare_versions(a, b)
    for op, holds in (("lt", ours < 0), ("eq", ours == 0), ("gt", ours > 0)):
        dpkg = subprocess.run(["dpkg", "--compare-versions", a, op, b], check=False).returncode == 0
        assert dpkg is holds, f"{a} {op} {b}"


def test_debian_relations() -> None:
    assert parse_relations("libc6 (>= 2.34), awk | mawk:any (<< 2), python3:any") == [
        [Relation("libc6", ">=", "2.34")],
        [Relation("awk"), Relation("mawk", "<<", "2")],
        [Relation("python3")],
    ]
    assert Relation("x", ">>", "1.0").allows("1.0+b1") and not Relation("x", "<<", "1.0").allows(
        "1.0"
    )
    with pytest.raises(ValueError, match="malformed"):
        parse_relations("foo (~ 1)")
