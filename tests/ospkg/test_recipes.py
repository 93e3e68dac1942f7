"""The package recipes parse, carry the paper's package list, and end with a non-root user."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocibuild.recipe import load_recipe
from ocibuild.sources.specs import rpm_repo
from ocibuild.variables import canonical, expand

RECIPES = Path(__file__).parents[2] / "recipes"

# Listing 3.1 of the paper, one list per `yum install`
PAPER_LISTING_3_1 = [
    ["gcc"],
    ["redhat-lsb-core"],
    [
        "atk-devel",
        "apr-devel",
        "asciidoc",
        "cairo-devel",
        "libconfuse-devel",
        "libcurl-devel",
        "fontconfig-devel",
        "freetype-devel",
        "glib2-devel",
        "gtk2-devel",
        "krb5-devel",
        "libICE-devel",
        "libSM-devel",
        "libX11-devel",
        "libXext-devel",
        "libXft-devel",
        "libXi-devel",
        "libXrender-devel",
        "libXt-devel",
        "libpng-devel",
        "libstdc++-devel",
        "mesa-libGL-devel",
        "mesa-libGLU-devel",
        "ncurses-devel",
        "nss-devel",
        "openssl-devel",
        "openldap-devel",
        "pango-devel",
        "qt-devel",
        "swig",
        "texinfo",
        "xmlto",
        "zlib-devel",
        "readline-devel",
        "expat-devel",
        "libXpm-devel",
        "libXmu-devel",
        "bzip2-devel",
        "texinfo",
        "tk-devel",
        "tcl-devel",
        "gcc-c++",
        "libgcc.i686",
        "glibc-devel.i686",
        "libstdc++.i686",
    ],
    ["epel-release"],
    ["libconfuse-devel"],
]


def test_centos67_base_is_listing_3_1() -> None:
    recipe = load_recipe(RECIPES / "centos67-base.yaml")
    (image,) = recipe.images
    assert (image.name, image.from_, image.cmd) == (
        "docker.io/paterno/centos67base:latest",
        "scratch",
        ["/bin/bash", "-l"],
    )
    assert image.labels == {"Vendor": "FNAL", "License": "BSD"}
    rpm_layers = [layer.spec for layer in image.layers if layer.source == "rpm"]
    base, *runs = rpm_layers
    assert {"centos-release", "bash", "yum"} <= set(base.packages)
    paper = [list(run) for run in PAPER_LISTING_3_1]
    paper[2].remove("libconfuse-devel")  # yum skipped it: EPEL was not enabled yet
    assert [run.packages for run in runs] == paper
    assert all(rpm_repo(r).trusted for run in runs for r in run.repos)  # no keys shipped
    assert [canonical(rpm_repo(r).url) for r in runs[0].repos] == [
        "https://vault.centos.org/6.7/os/x86_64/",
        "https://vault.centos.org/6.7/updates/x86_64/",
    ]
    assert (
        canonical(rpm_repo(runs[-1].repos[-1]).url)
        == "https://archives.fedoraproject.org/pub/archive/epel/6/x86_64/"
    )
    site = {
        "CENTOS_VAULT": "http://mirror.site/centos-vault",
        "EPEL_ARCHIVE": "http://mirror.site/epel",
    }
    assert (
        expand(rpm_repo(runs[-1].repos[0]).url, site)
        == "http://mirror.site/centos-vault/6.7/os/x86_64/"
    )
    assert expand(rpm_repo(runs[-1].repos[-1]).url, site) == "http://mirror.site/epel/6/x86_64/"


@pytest.mark.parametrize("name", ["centos67-base.yaml", "debian-base.yaml"])
def test_recipes_end_with_a_non_root_user(name: str) -> None:
    (image,) = load_recipe(RECIPES / name).images
    last = image.layers[-1]
    assert last.source == "user" and last.spec.uid != 0 and last.spec.set_user
    assert image.user is None  # nothing sets it back


def test_url_variables() -> None:
    assert (
        expand("${A:-http://x}/p", {}, {}) == "http://x/p"
        and expand("${A:-http://x}/p", {"A": "file:///m"}, {}) == "file:///m/p"
    )
    assert canonical("${A:-http://x}/p", {"A": "file:///m"}, {}) == "http://x/p"
    with pytest.raises(ValueError, match=r"\$\{A\} is not set: give --var A=VALUE"):
        expand("${A}/p", {}, {})
