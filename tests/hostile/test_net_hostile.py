"""The network deadline policy and where a server may send ocibuild, against a misbehaving
registry on loopback (badregistry.py) and a file mirror: every request has an answer deadline
and a minimum rate (a server dribbling bytes is cut off, leaving no `.tmp-` file), Retry-After is
capped and the message says so, pages are bounded and loops found, redirects and repository
links go to http(s) only, a declared size is believed only up to its limit, bodies are read
bounded, a malformed Content-Length is an error."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocibuild.errors import FetchError, OcibuildError
from ocibuild.fetch import Fetcher
from ocibuild.net.retry import RetryPolicy
from ocibuild.progress import Event, RetryEvent
from ocibuild.remote import pull_image
from ocibuild.remote.lookup import list_tags
from ocibuild.store import Store
from tests.hostile.badregistry import BadRegistry, Faults, sha
from tests.hostile.conftest import Hostile, verify_store
from tests.registry.conftest import fast_options
from tests.ups.conftest import Mirror
from tests.ups.test_build import ART_TARBALL, write_recipe

QUICK_NET = {
    "OCIBUILD_NET_ANSWER_SECONDS": "1",
    "OCIBUILD_NET_MIN_RATE": "2000",
    "OCIBUILD_NET_RATE_WINDOW": "1",
    "OCIBUILD_MAX_RETRY_AFTER": "1",
}


@pytest.fixture
def quick_net(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in QUICK_NET.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def bad() -> Iterator[BadRegistry]:
    with BadRegistry() as registry:
        yield registry


class Seen(list[Event]):
    def __call__(self, event: Event) -> None:
        self.append(event)


def pull_fails(store: Store, registry: BadRegistry, within: float, retries: int = 1) -> str:
    """Pull the bad registry's image, which must fail within `within` seconds, with a one-line
    error, leaving no temporary blob and a verified store; the error."""
    started = time.monotonic()
    with pytest.raises(OcibuildError) as failed:
        pull_image(store, registry.ref, fast_options(retries=retries), Seen())
    took = time.monotonic() - started
    assert took < within, f"{took:.1f} s: {failed.value}"
    assert "\n" not in str(failed.value)
    assert not list(store.blobs.glob(".tmp-*"))
    verify_store(store.root)
    return str(failed.value)


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        (Faults(slow_headers=0.3), "no answer within 1 s"),
        (Faults(slow_body=0.3), "too slow: "),
        (Faults(endless=r"/blobs/", slow_body=0.05), "too slow: "),
    ],
)
def test_a_dribbling_server_is_cut_off(
    faults: Faults, message: str, bad: BadRegistry, store: Store, quick_net: None
) -> None:
    bad.faults = faults
    error = pull_fails(store, bad, within=12)
    assert message in error and "OCIBUILD_NET_" in error


def test_a_body_that_never_ends_is_cut_at_its_declared_size(bad: BadRegistry, store: Store) -> None:
    bad.faults = Faults(endless=r"/blobs/")
    error = pull_fails(store, bad, within=20, retries=0)
    assert f"blob {sha(bad.layer)}" in error or "got " in error


def test_a_declared_size_past_the_limit_is_refused_before_a_byte(
    bad: BadRegistry, store: Store
) -> None:
    bad.faults = Faults(declared_size=1 << 40, endless=r"/blobs/")
    error = pull_fails(store, bad, within=10, retries=0)
    assert "1099511627776 is over the limit" in error and "OCIBUILD_MAX_BLOB_SIZE" in error
    assert not any("/blobs/" + sha(bad.layer) in r for r in bad.requests)


def test_retry_after_is_capped_and_the_message_says_so(
    bad: BadRegistry, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCIBUILD_MAX_RETRY_AFTER", "1")
    bad.faults = Faults(status={r"/manifests/": (503, {"Retry-After": "999999"})})
    seen = Seen()
    started = time.monotonic()
    with pytest.raises(OcibuildError):
        pull_image(store, bad.ref, fast_options(retries=2, max_retry_after=None), seen)
    assert time.monotonic() - started < 10
    retries = [e for e in seen if isinstance(e, RetryEvent)]
    assert len(retries) == 2 and all(r.delay == 1 for r in retries)
    assert "the server asks to wait 999999 s: capped at 1 s" in retries[0].message


@pytest.mark.parametrize(
    ("link", "message"),
    [
        ("loop", "the pages loop"),
        ("file:///etc/passwd", "the next page is file:///etc/passwd, not on"),
        ("http://127.0.0.2:9/v2/t/img/tags/list", "not on 127.0.0.1"),
    ],
)
def test_pages_stay_on_the_registry_and_never_loop(
    link: str, message: str, hostile: Hostile, bad: BadRegistry
) -> None:
    bad.faults = Faults(next_link=link)
    error = hostile.refused("ls", f"{bad.address}/t/img")
    assert message in error


def test_pages_are_bounded(bad: BadRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCIBUILD_MAX_PAGES", "5")
    bad.faults = Faults(next_link="forever")
    with pytest.raises(OcibuildError, match=r"pages of one paginated registry answer 6 is over"):
        list_tags(f"{bad.address}/t/img", fast_options(retries=0))
    assert len([r for r in bad.requests if "/tags/list" in r]) == 5
    bad.faults = Faults()
    assert list_tags(f"{bad.address}/t/img", fast_options(retries=0)) == ["t0"]


@pytest.mark.parametrize("where", [r"/blobs/", r"/manifests/"])
@pytest.mark.parametrize("location", ["file:///etc/passwd", "file:///dev/zero", "ftp://x/y"])
def test_a_registry_never_redirects_ocibuild_off_the_web(
    where: str, location: str, hostile: Hostile, bad: BadRegistry, tmp_path: Path
) -> None:
    bad.faults = Faults(redirect={where: location})
    error = hostile.refused("pull", bad.ref)
    assert f"redirects to {location}: ocibuild follows redirects to http and https only" in error


def test_a_redirect_to_a_fifo_does_not_hang(hostile: Hostile, bad: BadRegistry) -> None:
    fifo = hostile.root / "fifo"
    os.mkfifo(fifo)
    bad.faults = Faults(redirect={r"/blobs/": fifo.as_uri()})
    hostile.refused("pull", bad.ref, names=("ocibuild follows redirects to http and https",))


def test_a_redirect_to_another_host_is_followed_without_the_credentials(
    hostile: Hostile,
) -> None:
    with BadRegistry() as cdn, BadRegistry(Faults(bearer=True)) as registry:
        layer = sha(registry.layer)
        registry.faults.redirect = {
            f"/blobs/{layer}": f"http://{cdn.address}/v2/t/img/blobs/{layer}"
        }
        outcome = hostile.run("pull", registry.ref)
        assert outcome.code == 0, outcome.err
        assert [h["path"] for h in cdn.headers] == [f"/v2/t/img/blobs/{layer}"]
        assert "authorization" not in cdn.headers[0]
        asked = [h for h in registry.headers if h["path"] == f"/v2/t/img/blobs/{layer}"]
        assert asked and asked[0]["authorization"] == "Bearer t0ken"


def test_a_malformed_content_length_is_an_error(hostile: Hostile, bad: BadRegistry) -> None:
    bad.faults = Faults(content_length="12abc")
    hostile.refused("pull", bad.ref, names=("malformed Content-Length '12abc'",))


def test_an_endless_token_is_cut_off(hostile: Hostile, bad: BadRegistry) -> None:
    bad.faults = Faults(bearer=True, endless=r"^/token$")
    hostile.refused("pull", bad.ref, names=("an answer of more than 1048576 bytes",))


DEEP = b"[" * 50_000 + b"]" * 50_000


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        (Faults(manifest=DEEP), "JSON nested deeper than 100 levels"),
        (Faults(config=b'{"rootfs": ' * 2000 + b"{}" + b"}" * 2000), "JSON nested deeper"),
        (Faults(bearer=True, token=DEEP), "JSON nested deeper"),
        (Faults(manifest=b'{"layers": [], "layers": []}'), "the key 'layers' is given twice"),
    ],
)
def test_deep_and_ambiguous_documents_are_one_error(
    faults: Faults, message: str, hostile: Hostile, bad: BadRegistry
) -> None:
    bad.faults = faults
    outcome = hostile.run("pull", bad.ref)
    assert outcome.code == 1 and "Traceback" not in outcome.err
    (line,) = outcome.err.strip().splitlines()
    assert line.startswith("error: ") and bad.address in line and message in line
    verify_store(hostile.store)  # blobs verified in full may stay (the next pull skips them)
    assert bad.ref not in hostile.run("images").out


def test_a_download_cut_off_leaves_nothing_in_the_cache(
    bad: BadRegistry, tmp_path: Path, quick_net: None
) -> None:
    bad.faults = Faults(slow_body=0.3)
    url = f"http://{bad.address}/v2/t/img/blobs/{sha(bad.layer)}"
    fetcher = Fetcher(tmp_path / "cache", retry=RetryPolicy(retries=1, backoff=0.01))
    with pytest.raises(FetchError, match=r"too slow: .*OCIBUILD_NET_MIN_RATE"):
        fetcher.fetch(url, "x")
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []
    bad.faults = Faults()
    assert fetcher.fetch(url, "x").sha256 == sha(bad.layer).removeprefix("sha256:")


def yum_repo(root: Path, base: str) -> str:
    """A yum repository whose one package `hostile` lives at `xml:base` `base`."""
    primary = f"""<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common"
 xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="1">
<package type="rpm"><name>hostile</name><arch>x86_64</arch>
<version epoch="0" ver="1.0" rel="1"/><checksum type="sha256">{"0" * 64}</checksum>
<location xml:base="{base}" href="passwd"/><size package="10"/>
<format><rpm:provides><rpm:entry name="hostile"/></rpm:provides></format></package>
</metadata>""".encode()
    (root / "repodata").mkdir(parents=True)
    (root / "repodata" / "primary.xml").write_bytes(primary)
    (root / "repodata" / "repomd.xml").write_text(
        '<?xml version="1.0"?><repomd xmlns="http://linux.duke.edu/metadata/repo">'
        '<data type="primary"><checksum type="sha256">'
        f"{hashlib.sha256(primary).hexdigest()}</checksum>"
        '<location href="repodata/primary.xml"/></data></repomd>'
    )
    return root.as_uri()


@pytest.mark.parametrize("base", ["file:///etc/", "file:///dev/", "ftp://mirror/"])
def test_a_repository_never_sends_ocibuild_to_a_local_file(
    base: str, hostile: Hostile, cache_dir: Path
) -> None:
    url = yum_repo(hostile.root / "yum", base)
    recipe = hostile.recipe(
        f"images:\n  - name: a/rpm\n    layers:\n      - rpm: {{repos: [{{url: {url!r}, trusted: true}}], packages: [hostile]}}\n"
    )
    hostile.refused(
        "recipe", str(recipe), names=(f"links to {base}passwd", "http and https URLs only")
    )


def test_a_fifo_in_a_file_mirror_is_refused_without_hanging(
    hostile: Hostile, own_mirror: Mirror, cache_dir: Path
) -> None:
    tarball = own_mirror.root / "scisoft" / ART_TARBALL
    tarball.unlink()
    os.mkfifo(tarball)
    recipe = write_recipe(hostile.root / "art.yaml", None, layering="bundle", setup=False)
    hostile.refused(
        "recipe",
        "--mirror",
        str(own_mirror.root / "scisoft"),
        str(recipe),
        names=(ART_TARBALL, "not a regular file but a fifo"),
    )
