"""The `ups` layer source against a scisoft mirror served on 127.0.0.1: manifests at both
locations, single products, the lock file, the download cache, offline builds, bad specs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ocibuild.errors import FetchError, LockError, RecipeError, SourceError
from ocibuild.recipe import load_recipe
from ocibuild.sources import ups
from ocibuild.sources.base import LayerPlan
from ocibuild.sources.session import LayerContext
from ocibuild.sources.ups import UpsSpec
from tests.contexts import layer_context, resolved
from tests.ups.conftest import Mirror

SLF6 = "Linux64bit+2.6-2.12"
ART_MANIFEST = f"art-1.18.03-{SLF6}-e9-prof_MANIFEST.txt"


def context(tmp_path: Path, mirror: str, **kwargs: object) -> LayerContext:
    return layer_context(tmp_path, recipe_file=tmp_path / "r.yaml", mirror=mirror, **kwargs)  # type: ignore[arg-type]


def plan(spec: UpsSpec, ctx: LayerContext) -> list[LayerPlan]:
    """The source's layer plans, ready: every download done."""
    return resolved(ups.plan(spec, ctx))


def art(**kwargs: object) -> UpsSpec:
    return UpsSpec(os="slf6", bundle="art-v1_18_03", qualifiers="e9", build="prof", **kwargs)  # type: ignore[arg-type]


def test_bundle_from_the_manifest_one_layer_per_product(tmp_path: Path, mirror: Mirror) -> None:
    plans = plan(art(layering="product"), context(tmp_path, mirror.url))
    assert [p.description.split(" (")[0] for p in plans] == [
        "ups: art v1_18_03",
        "ups: boost v1_57_0",
        "ups: cetlib v1_15_03",
        "ups: cetpkgsupport v1_08_07",
        "ups: fhiclcpp v3_12_04",
        "ups: gcc v4_9_3",
        "ups: root v6_04_06",
        "ups: ups v5_1_4",
    ]
    assert f"/scisoft/bundles/art/v1_18_03/manifest/{ART_MANIFEST}" in mirror.requests
    # bzip2 tarballs decode on every core: the builder writes these layers one at a time
    assert all(p.every_core for p in plans)
    assert (
        plans[0].created_by == "ocibuild ups art-v1_18_03 slf6 e9 prof -> /products: art v1_18_03"
    )


def test_the_lock_pins_manifest_and_every_tarball(tmp_path: Path, mirror: Mirror) -> None:
    ctx = context(tmp_path, mirror.url)
    plan(art(), ctx)
    ctx.session.lock.save()
    pins = json.loads((tmp_path / "r.yaml.lock").read_text())["files"]
    assert len(pins) == 9
    tarball = "{mirror}/packages/art/v1_18_03/art-1.18.03-slf6-x86_64-e9-prof.tar.bz2"
    data = (
        mirror.root / "scisoft/packages/art/v1_18_03/art-1.18.03-slf6-x86_64-e9-prof.tar.bz2"
    ).read_bytes()
    import hashlib

    assert pins[tarball] == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_layer_keys_depend_on_tarballs_and_into_only(tmp_path: Path, mirror: Mirror) -> None:
    ctx = context(tmp_path, mirror.url)
    art_plans = {p.description.split(" (")[0]: p.key for p in plan(art(layering="product"), ctx)}
    nu = UpsSpec(os="slf6", bundle="nu-v1_20_02", qualifiers="e9", build="prof", layering="product")
    nu_plans = {p.description.split(" (")[0]: p.key for p in plan(nu, ctx)}
    assert set(nu_plans) == {*art_plans, "ups: nutools v1_20_02"}
    assert all(nu_plans[name] == key for name, key in art_plans.items())
    elsewhere = plan(art(layering="product", into="/opt/products"), ctx)
    assert not {p.key for p in elsewhere} & set(art_plans.values())


def test_manifest_at_the_older_location(tmp_path: Path, own_mirror: Mirror) -> None:
    scisoft = own_mirror.root / "scisoft"
    old = scisoft / "manifest" / "art" / "v1_18_03"
    old.mkdir(parents=True)
    shutil.move(scisoft / "bundles/art/v1_18_03/manifest" / ART_MANIFEST, old / ART_MANIFEST)
    plans = plan(art(layering="bundle"), context(tmp_path, own_mirror.url))
    assert len(plans) == 1 and "8 products of art-v1_18_03" in plans[0].description
    assert own_mirror.requests[:2] == [
        f"/scisoft/bundles/art/v1_18_03/manifest/{ART_MANIFEST}",
        f"/scisoft/manifest/art/v1_18_03/{ART_MANIFEST}",
    ]


def test_manifest_missing_at_both_locations(tmp_path: Path, mirror: Mirror) -> None:
    spec = UpsSpec(os="slf6", bundle="art-v1_18_03", qualifiers="e14", build="prof")
    with pytest.raises(SourceError) as raised:
        plan(spec, context(tmp_path, mirror.url))
    message = str(raised.value)
    name = f"art-1.18.03-{SLF6}-e14-prof_MANIFEST.txt"
    assert message.startswith(
        f"{tmp_path}/r.yaml:4:9: manifest of art-v1_18_03: found at neither location: "
    )
    assert f"{mirror.url}/bundles/art/v1_18_03/manifest/{name}: HTTP 404" in message
    assert f"{mirror.url}/manifest/art/v1_18_03/{name}: HTTP 404" in message


def test_single_products_by_name(tmp_path: Path, mirror: Mirror) -> None:
    spec = UpsSpec(
        os="slf6",
        products=[
            ["cetlib", "v1_15_03", "e9:prof"],
            ["cetpkgsupport", "v1_08_07"],
            ["ups", "v5_1_4", "", "ups-5.1.4-Linux64bit+2.6-2.12.tar.bz2"],
        ],
        layering="product",
    )
    plans = plan(spec, context(tmp_path, mirror.url))
    assert [p.description.split(" (")[0] for p in plans] == [
        "ups: cetlib v1_15_03",
        "ups: cetpkgsupport v1_08_07",
        "ups: ups v5_1_4",
    ]
    assert (
        "/scisoft/packages/cetpkgsupport/v1_08_07/cetpkgsupport-1.08.07-noarch.tar.bz2"
        in mirror.requests
    )


def test_a_product_missing_from_the_mirror(tmp_path: Path, own_mirror: Mirror) -> None:
    (
        own_mirror.root / "scisoft/packages/root/v6_04_06/root-6.04.06-slf6-x86_64-e9-prof.tar.bz2"
    ).unlink()
    with pytest.raises(FetchError) as raised:
        plan(art(), context(tmp_path, own_mirror.url))
    assert str(raised.value) == (
        f"{tmp_path}/r.yaml:4:9: root v6_04_06: {own_mirror.url}/packages/root/v6_04_06/"
        "root-6.04.06-slf6-x86_64-e9-prof.tar.bz2: HTTP 404 File not found"
    )
    spec = UpsSpec(os="slf6", products=[["gdb", "v7_10", ""]])
    with pytest.raises(
        SourceError,
        match=r"r.yaml:4:9: gdb v7_10: no tarball on the mirror; tried .*gdb-7.10-slf6-x86_64.tar.bz2, .*gdb-7.10-noarch.tar.bz2",
    ):
        plan(spec, context(tmp_path, own_mirror.url))


def test_a_changed_tarball_is_refused_unless_the_lock_is_updated(
    tmp_path: Path, own_mirror: Mirror
) -> None:
    ctx = context(tmp_path, own_mirror.url)
    plan(art(), ctx)
    ctx.session.lock.save()
    # the mirror now serves another art tarball under the same name; a fresh cache must fetch it
    art_path = (
        own_mirror.root / "scisoft/packages/art/v1_18_03/art-1.18.03-slf6-x86_64-e9-prof.tar.bz2"
    )
    boost = next((own_mirror.root / "scisoft/packages/boost").rglob("*.tar.bz2"))
    art_path.write_bytes(boost.read_bytes())
    fresh = context(tmp_path, own_mirror.url, cache_dir=tmp_path / "cache2")
    with pytest.raises(LockError) as raised:
        plan(art(), fresh)
    message = str(raised.value)
    assert message.startswith(
        f"{tmp_path}/r.yaml:4:9: art v1_18_03: {own_mirror.url}/packages/art/v1_18_03/"
    )
    assert "changed: got sha256" in message and "--update-lock" in message
    # the cached copy still builds what the lock pins
    assert plan(art(), context(tmp_path, own_mirror.url))
    accepted = context(tmp_path, own_mirror.url, cache_dir=tmp_path / "cache2", update_lock=True)
    plan(art(), accepted)
    assert accepted.session.lock.changed


def test_offline_from_the_cache(tmp_path: Path, mirror: Mirror) -> None:
    online = plan(art(), context(tmp_path, mirror.url))
    before = len(mirror.requests)
    offline = plan(art(), context(tmp_path, mirror.url, offline=True))
    assert [p.key for p in offline] == [p.key for p in online]
    assert len(mirror.requests) == before
    with pytest.raises(
        SourceError,
        match=r"manifest of art-v1_18_03: .* is not in the download cache .*empty \(offline\)",
    ):
        plan(art(), context(tmp_path, mirror.url, offline=True, cache_dir=tmp_path / "empty"))


def test_file_mirror(tmp_path: Path, mirror: Mirror) -> None:
    plans: list[LayerPlan] = plan(art(), context(tmp_path, (mirror.root / "scisoft").as_uri()))
    assert plans and all(p.key for p in plans)


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ("{bundle: art-v1_18_03, qualifiers: e9}", "ups: missing required key 'os'"),
        ("{bundle: art-v1_18_03, os: sl6}", "os: unknown OS 'sl6'"),
        ("{bundle: art-1.18.03, os: slf6}", "bundle: bundle 'art-1.18.03' is not NAME-vVERSION"),
        ("{os: slf6}", "give exactly one of 'bundle' or 'products'"),
        ("{bundle: art-v1_18_03, os: slf6, products: [[a, v1]]}", "give exactly one of"),
        (
            "{bundle: art-v1_18_03, os: slf6, layering: layer}",
            "layering: layering must be one of auto, bundle, product",
        ),
        (
            "{bundle: art-v1_18_03, os: slf6, layring: auto}",
            "unknown key 'layring' in ups (did you mean 'layering'?)",
        ),
        ("{products: [[art]], os: slf6}", "each product is [name, version, qualifiers]"),
        ("{products: [[art, 1.18]], os: slf6}", "version '1.18' is not a UPS version"),
        ("{bundle: art-v1_18_03, os: slf6, into: ../x}", "into '../x' escapes the image root"),
    ],
)
def test_bad_specs_name_the_recipe_line(tmp_path: Path, layer: str, message: str) -> None:
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(f"images:\n  - name: a/b\n    layers:\n      - ups: {layer}\n")
    with pytest.raises(RecipeError) as raised:
        load_recipe(recipe)
    assert "bad.yaml:4:" in str(raised.value)
    assert message in str(raised.value)


def test_a_mirror_that_gives_no_sizes_is_grouped_once_everything_is_here(
    tmp_path: Path, own_mirror: Mirror, mirror: Mirror
) -> None:
    """`layering: auto` groups by tarball size, asked with HEAD before downloading; a mirror
    refusing HEAD gets the same layers, grouped once every tarball is downloaded."""
    expected = [p.key for p in plan(art(), context(tmp_path / "a", mirror.url))]
    own_mirror.head = False
    layers = ups.plan(art(), context(tmp_path / "b", own_mirror.url))
    assert all(isinstance(p.key, str) for p in layers)  # planned after the downloads
    assert [p.key for p in resolved(layers)] == expected
