"""`ocibuild copy`, `ls` and `digest` against real registries, checked with skopeo and podman."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ocibuild.cli import main
from ocibuild.oci import Descriptor, Index, MediaType, Platform
from ocibuild.progress import BlobEvent, RetryEvent, silent
from ocibuild.remote import Credentials, push_image
from ocibuild.remote.auth import repository_scope
from ocibuild.remote.copy import Location, copy_image
from ocibuild.remote.credentials import store_credentials
from ocibuild.remote.lookup import list_tags, manifest_digest
from ocibuild.remote.manifests import put_manifest
from ocibuild.remote.transport import RegistryClient
from ocibuild.store import Store
from tests.cli import fail, run
from tests.podman import Podman
from tests.registry.conftest import PASSWORD, USER, Events, Registry, TokenSetup, fast_options
from tests.registry.images import busybox_layer, make_image, random_layer
from tests.registry.proxy import Fault, FaultProxy
from tests.registry.test_push_pull import skopeo_inspect


def push_index(store: Store, registry: Registry, repository: str, tag: str) -> Descriptor:
    """Two one-layer images pushed by digest, and an index of them (amd64, arm64) under `tag`."""
    children = []
    for arch in ("amd64", "arm64"):
        ref = f"{registry.host}/{repository}:{arch}"
        make_image(store, [ref], [random_layer(arch, 3000)])
        result = push_image(store, ref, fast_options(format="oci"), silent)
        children.append(
            Descriptor(MediaType.OCI_MANIFEST, result.digest, result.size, platform=Platform(arch))
        )
    data = Index(tuple(children)).to_bytes()
    with RegistryClient(registry.host, fast_options(), silent) as client:
        scopes = (repository_scope(repository, "pull,push"),)
        put_manifest(client, repository, tag, MediaType.OCI_INDEX, data, scopes)
    return Descriptor.of(MediaType.OCI_INDEX, data)


def test_copy_store_to_registry_and_back_keeps_the_digest(
    tmp_path: Path,
    store: Store,
    registry: Registry,
    repo: Callable[[str], str],
    podman: Podman,
    busybox: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_image(store, ["example.org/hep/tool:1"], [busybox_layer(busybox)], cmd=["/bin/echo", "hi"])
    digest = store.resolve("example.org/hep/tool:1").digest
    target = f"{registry.host}/{repo('tool')}:1"
    s = ["--store", str(store.root)]

    out = run(capsys, *s, "copy", "store:example.org/hep/tool:1", target, "--insecure")

    assert out == f"{target}@{digest}\n"
    assert skopeo_inspect(target)["Digest"] == digest
    podman("pull", "--tls-verify=false", target)
    assert podman.run(target).strip() == "hi"

    back = tmp_path / "back"
    out = run(capsys, "--store", str(back), "copy", target, "store:hep/tool:copy", "--insecure")
    assert out == f"store:docker.io/hep/tool:copy@{digest}\n"
    # kept under the name asked for only
    assert list(Store.open(back).refs()) == ["docker.io/hep/tool:copy"]
    out = run(capsys, "--store", str(back), "copy", target, "store:", "--insecure")
    assert out == f"store:{target}@{digest}\n"
    assert run(capsys, "--store", str(back), "digest", f"store:{target}") == f"{digest}\n"


def test_copy_between_registries_streams_every_blob_and_keeps_the_index(
    store: Store,
    registry: Registry,
    fresh_proxy: FaultProxy,
    repo: Callable[[str], str],
    tmp_path: Path,
    events: Events,
) -> None:
    index = push_index(store, registry, repo("multi"), "v1")
    source = f"{registry.host}/{repo('multi')}:v1"
    target = f"{fresh_proxy.address}/mirror/multi:v1"
    empty = Store.open(tmp_path / "untouched")

    result = copy_image(
        empty, Location(False, source), Location(False, target), fast_options(), events
    )

    assert result.digest == index.digest
    assert skopeo_inspect(target, raw=True) == skopeo_inspect(source, raw=True)
    assert manifest_digest(target, fast_options()) == index.digest
    for child in skopeo_inspect(source, raw=True)["manifests"]:
        copied = skopeo_inspect(f"{fresh_proxy.address}/mirror/multi@{child['digest']}")
        assert copied["Digest"] == child["digest"]
    # two configs + two layers uploaded, each in one streamed PUT; nothing went to the store
    uploads = fresh_proxy.requests(r"^PUT .*/blobs/uploads/")
    assert len(uploads) == 4
    assert {e.status for e in uploads} == {201}
    assert len(fresh_proxy.requests(r"^PUT .*/manifests/sha256:")) == 2
    assert len(fresh_proxy.requests(r"^PUT .*/manifests/v1")) == 1
    assert not list(empty.blobs.iterdir())
    statuses = {e.status for e in events.of(BlobEvent)}
    assert "copied" in statuses

    # again: every blob is there already
    fresh_proxy.clear()
    copy_image(empty, Location(False, source), Location(False, target), fast_options(), silent)
    assert fresh_proxy.requests(r"/blobs/uploads/") == []


def test_copy_within_a_registry_mounts_the_blobs(
    store: Store,
    proxy: FaultProxy,
    repo: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = f"{proxy.address}/{repo('a')}:1"
    make_image(store, [source], [random_layer("x", 5000), random_layer("y", 5000)])
    push_image(store, source, fast_options(format="oci"), silent)
    proxy.clear()
    target = f"docker://{proxy.address}/{repo('b')}"

    out = run(capsys, "copy", source, target, "--insecure")

    digest = store.resolve(source).digest
    assert out == f"{proxy.address}/{repo('b')}:1@{digest}\n"  # the source's tag is kept
    assert len(proxy.requests(r"^POST .*mount=")) == 3
    assert proxy.requests(r"^PUT .*/blobs/uploads/") == []
    assert proxy.requests(r"^GET .*/blobs/") == []


def test_copy_retries_a_broken_stream_and_refuses_wrong_content(
    store: Store,
    registry: Registry,
    proxy: FaultProxy,
    fresh_registry: Registry,
    repo: Callable[[str], str],
    events: Events,
) -> None:
    source = f"{proxy.address}/{repo('src')}:1"
    make_image(store, [source], [random_layer("big", 300_000)])
    push_image(store, source, fast_options(format="oci"), silent)
    layer = store.image(source).manifest.layers[0]
    target = f"{fresh_registry.host}/{repo('dst')}:1"
    proxy.add(Fault(rf"^GET .*/blobs/{layer.digest}", "truncate", after=100_000))

    result = copy_image(
        store, Location(False, source), Location(False, target), fast_options(), events
    )

    assert result.digest == store.resolve(source).digest
    assert events.of(RetryEvent)
    assert layer.digest in fresh_registry.blob_digests()

    proxy.add(Fault(rf"^GET .*/blobs/{layer.digest}", "corrupt", times=-1))
    other = f"{fresh_registry.host}/{repo('other')}:1"
    with pytest.raises(Exception, match="the source sent other content"):
        copy_image(store, Location(False, source), Location(False, other), fast_options(), silent)


def test_ls_follows_the_link_pages_and_digest_reads_the_registry(
    store: Store,
    proxy: FaultProxy,
    repo: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = f"{proxy.address}/{repo('tags')}"
    more = f"{proxy.address}/{repo('more')}"
    tags = ["1.0", "1.1", "2.0", "latest", "v3"]
    make_image(store, [f"{name}:{t}" for t in tags] + [f"{more}:x"], [random_layer("t", 100)])
    for ref in [*(f"{name}:{t}" for t in tags), f"{more}:x"]:
        push_image(store, ref, fast_options(format="oci"), silent)
    # docker-registry 2.8 answers every tag at once: the proxy adds a next page (another
    # repository's list), as registries that paginate do
    link = f'</v2/{repo("more")}/tags/list?n=2&last=v3>; rel="next"'
    proxy.clear()
    proxy.add(Fault(rf"^GET /v2/{repo('tags')}/tags/list", "headers", headers={"Link": link}))

    listed = list_tags(name, fast_options(), page_size=2)

    assert sorted(listed[:-1]) == tags and listed[-1] == "x"
    pages = proxy.requests(r"^GET .*/tags/list")
    assert [p.path.split("/")[-3] for p in pages] == ["tags", "more"]
    assert pages[0].query == "n=2" and pages[1].query == "n=2&last=v3"

    assert sorted(run(capsys, "ls", name, "--insecure").split()) == tags
    digest = store.resolve(f"{name}:v3").digest
    assert run(capsys, "digest", f"{name}:v3", "--insecure") == f"{digest}\n"

    assert f"{proxy.address}/{repo('nothing')}: no such repository" in fail(
        capsys, "ls", f"{proxy.address}/{repo('nothing')}", "--insecure"
    )
    assert f"{name}:v4: no such manifest" in fail(capsys, "digest", f"{name}:v4", "--insecure")
    assert "no such image" in fail(capsys, "--store", str(store.root), "digest", "store:nothing:1")


def test_copy_errors_name_what_is_wrong(
    store: Store, registry: Registry, repo: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    s = ["--store", str(store.root)]
    target = f"{registry.host}/{repo('x')}:1"
    assert "error: no such image example.org/none:1 in the store" in fail(
        capsys, *s, "copy", "store:example.org/none:1", target, "--insecure"
    )
    assert f"error: {target}: no such manifest (HTTP 404)" in fail(
        capsys, *s, "copy", target, "store:", "--insecure"
    )
    assert "the target needs a registry reference" in fail(
        capsys, *s, "copy", target, "docker://", "--insecure"
    )
    assert "the source needs a reference" in fail(capsys, *s, "copy", "store:", target)
    assert main([*s, "ls", "store:x"]) == 2
    assert store.refs() == {}


def test_copy_between_repositories_with_token_auth_mounts(
    store: Store, token_setup: TokenSetup, repo: Callable[[str], str], events: Events
) -> None:
    registry, issuer = token_setup.registry, token_setup.issuer
    name = repo().replace("/", "-")
    source, target = f"{registry.host}/alice/{name}-a:1", f"{registry.host}/alice/{name}-b:1"
    make_image(store, [source], [random_layer("a", 2000)])
    store_credentials(registry.host, Credentials(USER, PASSWORD))
    push_image(store, source, fast_options(format="oci"), silent)
    issuer.requests.clear()

    result = copy_image(
        store, Location(False, source), Location(False, target), fast_options(), events
    )

    assert result.digest == store.resolve(source).digest
    assert {e.status for e in events.of(BlobEvent)} == {"mounted"}
    scopes = {s for q in issuer.requests for s in q.get("scope", [])}
    assert f"repository:alice/{name}-b:pull,push" in scopes
    assert f"repository:alice/{name}-a:pull" in scopes
