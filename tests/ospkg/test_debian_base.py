"""recipes/debian-base.yaml built from the Debian archive this machine's apt uses, then run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ocibuild.builder import BuildSettings, build_recipe
from ocibuild.builder.attest import stored_sbom
from ocibuild.progress import FetchEvent
from ocibuild.store import Store
from ocibuild.store.export import export_image
from tests.events import Events
from tests.ospkg.aptsources import (
    AptSource,
    _deb822,
    _one_line,
    apt_sources,
    debian_mirror_environment,
)
from tests.podman import Podman

RECIPE = Path(__file__).parents[2] / "recipes" / "debian-base.yaml"
REQUESTED = ["base-files", "base-passwd", "bash", "coreutils", "dash", "dpkg", "grep", "sed"]


def test_apt_source_formats() -> None:
    one_line = "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main contrib\n# deb http://x y z\ndeb-src http://x y z\n"
    assert _one_line(one_line) == [
        AptSource("http://mirror.example/debian", "bookworm", ("main", "contrib"))
    ]
    deb822 = "Types: deb deb-src\nURIs: http://m/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nEnabled: no\nURIs: http://off\nSuites: x\n"
    assert _deb822(deb822) == [
        AptSource("http://m/debian", "bookworm", ("main",)),
        AptSource("http://m/debian", "bookworm-updates", ("main",)),
    ]
    env = debian_mirror_environment(
        [*_deb822(deb822), AptSource("http://sec", "bookworm-security", ("main",))]
    )
    assert env == {
        "DEBIAN_MIRROR": "http://m/debian",
        "DEBIAN_SUITE": "bookworm",
        "DEBIAN_SECURITY_MIRROR": "http://sec",
    }


def _purl_arch(package: dict[str, object]) -> str:
    refs = package.get("externalRefs") or []
    (purl,) = [r["referenceLocator"] for r in refs if r["referenceType"] == "purl"]  # type: ignore[index]
    assert purl.startswith(f"pkg:deb/debian/{package['name']}@")
    return str(purl).split("arch=", 1)[1].split("&", 1)[0]


def test_debian_base_builds_runs_and_rebuilds_identically(
    tmp_path: Path, podman: Podman, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in debian_mirror_environment(apt_sources()).items():
        monkeypatch.setenv(name, value)
    recipe = tmp_path / "debian-base.yaml"
    shutil.copy(RECIPE, recipe)  # its lock file lands beside it, in tmp_path
    options = BuildSettings(cache_dir=tmp_path / "cache")
    events = Events()
    (first,) = build_recipe(recipe, Store.open(tmp_path / "store1"), options, events)
    assert (tmp_path / "debian-base.yaml.lock").exists()

    export_image(Store.open(tmp_path / "store1"), first.ref, "docker-archive", tmp_path / "deb.tar")
    podman("load", "-i", str(tmp_path / "deb.tar"))
    assert podman.run(first.ref, "bash", "-c", "echo ok") == "ok\n"
    listed = {
        line.split()[1]: line.split()[0]
        for line in podman.run(first.ref, "dpkg", "-l").splitlines()[5:]
    }
    assert {name: listed.get(name) for name in REQUESTED} == dict.fromkeys(REQUESTED, "ii")
    assert "libc6:amd64" in listed
    assert podman.run(first.ref, "id", "-u") == "1000\n"
    assert podman.run(first.ref, "dpkg", "--audit") == ""
    # the SBOM lists what dpkg lists, name, version and architecture, each as a purl
    installed = {
        tuple(line.split("\t"))
        for line in podman.run(
            first.ref, "dpkg-query", "-W", "-f", "${Package}\t${Version}\t${Architecture}\n"
        ).splitlines()
    }
    sbom = json.loads(stored_sbom(Store.open(tmp_path / "store1"), first.ref, "spdx"))
    debs = {
        (p["name"], p["versionInfo"], _purl_arch(p))
        for p in sbom["packages"]
        if "kind: deb" in p.get("comment", "")
    }
    assert debs == installed
    messages = " ".join(events.messages())
    assert "install scripts not run" in messages and "bash (postinst)" in messages
    podman("rmi", first.ref)

    # again, in an empty store: the lock pins the packages, no index is read, same image
    events.clear()
    (second,) = build_recipe(recipe, Store.open(tmp_path / "store2"), options, events)
    fetched = [e.url for e in events.of(FetchEvent)]
    assert fetched and not [u for u in fetched if "/dists/" in u]
    assert [layer.cached for layer in second.layers] == [False, False]
    assert second.descriptor.digest == first.descriptor.digest
