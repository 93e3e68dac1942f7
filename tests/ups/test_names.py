"""Bundle specs, versions, flavors, manifest and tarball names, manifest parsing."""

from __future__ import annotations

import pytest

from ocibuild.errors import SourceError
from ocibuild.ups.manifest import ManifestEntry, parse_manifest
from ocibuild.ups.names import (
    BundleSpec,
    dotted,
    flavor_for_os,
    parse_bundle_spec,
    qualifier_list,
    undotted,
    version_file_name,
)
from ocibuild.ups.scisoft import manifest_name, manifest_urls, tarball_names, tarball_url


@pytest.mark.parametrize(
    ("spec", "name", "version"),
    [
        ("art-v1_18_03", "art", "v1_18_03"),
        ("build_base-v4_9_3", "build_base", "v4_9_3"),
        ("uboone-v04_31_00", "uboone", "v04_31_00"),
        ("larsoft-v04_08_00", "larsoft", "v04_08_00"),
    ],
)
def test_bundle_spec(spec: str, name: str, version: str) -> None:
    assert parse_bundle_spec(spec) == BundleSpec(name, version)
    assert str(parse_bundle_spec(spec)) == spec


@pytest.mark.parametrize("spec", ["art", "art-1.18.03", "art-v", "-v1_18_03", "art v1_18_03"])
def test_bad_bundle_spec(spec: str) -> None:
    with pytest.raises(ValueError, match="NAME-vVERSION"):
        parse_bundle_spec(spec)


def test_versions_round_trip() -> None:
    assert dotted("v1_18_03") == "1.18.03"
    assert dotted("v04_31_00") == "04.31.00"
    assert dotted("v1_7_7e") == "1.7.7e"
    assert undotted("1.18.03") == "v1_18_03"
    with pytest.raises(ValueError, match="not a UPS version"):
        dotted("1.18.03")


def test_os_flavors() -> None:
    assert flavor_for_os("slf5") == "Linux64bit+2.6-2.5"
    assert flavor_for_os("slf6") == "Linux64bit+2.6-2.12"
    assert flavor_for_os("slf7") == "Linux64bit+3.10-2.17"
    assert flavor_for_os("d14") == "Darwin64bit+14"
    with pytest.raises(ValueError, match=r"unknown OS 'sl6'.*slf6"):
        flavor_for_os("sl6")


def test_qualifiers() -> None:
    assert qualifier_list("e9:prof") == ["e9", "prof"]
    assert qualifier_list("s8-e7") == ["s8", "e7"]
    assert qualifier_list("+e9:+prof") == ["e9", "prof"]
    assert qualifier_list('""') == []
    assert version_file_name("Linux64bit+2.6-2.12", "e9:prof") == "Linux64bit+2.6-2.12_e9_prof"
    assert version_file_name("NULL", "") == "NULL_"


def test_manifest_urls_new_then_old() -> None:
    bundle = parse_bundle_spec("art-v1_18_03")
    name = "art-1.18.03-Linux64bit+2.6-2.12-e9-prof_MANIFEST.txt"
    assert manifest_name(bundle, flavor_for_os("slf6"), "e9", "prof") == name
    assert manifest_urls(
        "https://scisoft.fnal.gov/scisoft/", bundle, "Linux64bit+2.6-2.12", "e9", "prof"
    ) == [
        f"https://scisoft.fnal.gov/scisoft/bundles/art/v1_18_03/manifest/{name}",
        f"https://scisoft.fnal.gov/scisoft/manifest/art/v1_18_03/{name}",
    ]
    larsoft = parse_bundle_spec("larsoft-v04_08_00")
    assert (
        manifest_name(larsoft, flavor_for_os("slf6"), "s8:e7", "prof")
        == "larsoft-04.08.00-Linux64bit+2.6-2.12-s8-e7-prof_MANIFEST.txt"
    )


def test_tarball_urls_and_names() -> None:
    assert (
        tarball_url("file:///m", "cetlib", "v1_15_03", "cetlib-1.15.03-slf6-x86_64-e9-prof.tar.bz2")
        == "file:///m/packages/cetlib/v1_15_03/cetlib-1.15.03-slf6-x86_64-e9-prof.tar.bz2"
    )
    assert tarball_names("cetlib", "v1_15_03", "Linux64bit+2.6-2.12", "e9:prof") == [
        ("cetlib-1.15.03-slf6-x86_64-e9-prof.tar.bz2", "Linux64bit+2.6-2.12"),
        ("cetlib-1.15.03-noarch-e9-prof.tar.bz2", "NULL"),
        ("cetlib-1.15.03-Linux64bit+2.6-2.12-e9-prof.tar.bz2", "Linux64bit+2.6-2.12"),
    ]


MANIFEST = """\
# a comment
cetlib               v1_15_03     cetlib-1.15.03-slf6-x86_64-e9-prof.tar.bz2    -f Linux64bit+2.6-2.12  -q e9:prof
cetpkgsupport        v1_08_07     cetpkgsupport-1.08.07-noarch.tar.bz2          -f NULL

ups                  v5_1_4       ups-5.1.4-Linux64bit+2.6-2.12.tar.bz2         -f Linux64bit+2.6-2.12
cetlib               v1_15_03     cetlib-1.15.03-slf6-x86_64-e9-prof.tar.bz2    -f Linux64bit+2.6-2.12  -q e9:prof
"""


def test_parse_manifest() -> None:
    entries = parse_manifest(MANIFEST, "http://m/x_MANIFEST.txt")
    assert entries == [
        ManifestEntry(
            "cetlib",
            "v1_15_03",
            "cetlib-1.15.03-slf6-x86_64-e9-prof.tar.bz2",
            "Linux64bit+2.6-2.12",
            "e9:prof",
        ),
        ManifestEntry("cetpkgsupport", "v1_08_07", "cetpkgsupport-1.08.07-noarch.tar.bz2", "NULL"),
        ManifestEntry(
            "ups", "v5_1_4", "ups-5.1.4-Linux64bit+2.6-2.12.tar.bz2", "Linux64bit+2.6-2.12"
        ),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "http://m/x:.*lists no products"),
        ("cetlib v1_15_03\n", r"http://m/x:1: expected 'product version tarball"),
        ("cetlib 1.15.03 cetlib.tar.bz2 -f NULL\n", "http://m/x:1: version '1.15.03'"),
        (
            "\ncetlib v1_15_03 ../../x.tar.bz2 -f NULL\n",
            "http://m/x:2: '../../x.tar.bz2' is not a tarball",
        ),
        ("cetlib v1_15_03 c.tar.bz2 -f\n", "http://m/x:1: option '-f' without a value"),
    ],
)
def test_bad_manifest(text: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        parse_manifest(text, "http://m/x")
