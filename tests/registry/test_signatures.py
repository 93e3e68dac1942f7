"""Signatures against the real verifiers: with a policy.json requiring `sigstoreSigned` with the
public key and `use-sigstore-attachments: true` in registries.d, skopeo and podman accept an
image ocibuild signed and refuse an unsigned one and one whose manifest was replaced; ocibuild
verifies what skopeo signed with a key ocibuild made; `pull --verify` refuses what it cannot
verify and stores nothing."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ocibuild.signing import keys
from ocibuild.store import Store
from tests.cli import fail, run
from tests.podman import Podman
from tests.registry.conftest import Registry
from tests.registry.images import busybox_layer, make_image, random_layer
from testsupport.sigstore_tools import sigstore_tools

PASSPHRASE = "correct horse battery staple"


@dataclass(frozen=True)
class Tools:
    """Debian 13's skopeo and podman: Debian 12's are built without sigstore."""

    skopeo: str
    podman: str


@pytest.fixture(scope="session")
def tools() -> Tools:
    bindir = sigstore_tools()
    return Tools(str(bindir / "skopeo"), str(bindir / "podman"))


@dataclass(frozen=True)
class Keys:
    private: Path
    public: Path
    passphrase: Path


@dataclass(frozen=True)
class Policy:
    """A policy.json requiring the key's signatures for the registry, and a registries.d that
    reads (and writes) sigstore attachments there; `home` holds the registries.d podman reads."""

    path: Path
    registries_d: Path
    home: Path


@pytest.fixture
def key_pair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Keys:
    passphrase = tmp_path / "passphrase"
    passphrase.write_text(PASSPHRASE + "\n")
    prefix = tmp_path / "site"
    out = run(
        capsys,
        "key",
        "generate",
        "--output-prefix",
        str(prefix),
        "--passphrase-file",
        str(passphrase),
    )
    assert f"{prefix}.key" in out and f"{prefix}.pub" in out
    return Keys(Path(f"{prefix}.key"), Path(f"{prefix}.pub"), passphrase)


@pytest.fixture
def policy(tmp_path: Path, registry: Registry, key_pair: Keys) -> Policy:
    home = tmp_path / "home"
    registries_d = home / ".config" / "containers" / "registries.d"
    registries_d.mkdir(parents=True)
    (registries_d / "sigstore.yaml").write_text(
        f"docker:\n  {registry.host}:\n    use-sigstore-attachments: true\n"
    )
    document = {
        "default": [{"type": "reject"}],
        "transports": {
            "docker": {
                registry.host: [
                    {
                        "type": "sigstoreSigned",
                        "keyPath": str(key_pair.public),
                        "signedIdentity": {"type": "matchRepoDigestOrExact"},
                    }
                ]
            },
            "dir": {"": [{"type": "insecureAcceptAnything"}]},
        },
    }
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(document))
    return Policy(path, registries_d, home)


def skopeo_copy(
    tools: Tools, policy: Policy, ref: str, dest: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            tools.skopeo,
            "--policy",
            str(policy.path),
            "--registries.d",
            str(policy.registries_d),
            "copy",
            "--src-tls-verify=false",
            f"docker://{ref}",
            f"dir:{dest}",
        ],
        check=False,
        capture_output=True,
        text=True,
    )


def sigstore_podman(
    tools: Tools, podman: Podman, policy: Policy, *args: str
) -> subprocess.CompletedProcess[str]:
    """The podman that verifies sigstore signatures, its own storage under the policy's home
    (where it reads registries.d), set up as the suite's podman otherwise."""
    root = policy.home / "podman"
    return subprocess.run(
        [
            tools.podman,
            "--root",
            str(root / "storage"),
            "--runroot",
            str(root / "run"),
            *podman.base_args[5:],
            *args,
        ],
        env={**podman.env, "HOME": str(policy.home), "PODMAN_IGNORE_CGROUPSV1_WARNING": "1"},
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )


def podman_pull(
    tools: Tools, podman: Podman, policy: Policy, ref: str
) -> subprocess.CompletedProcess[str]:
    return sigstore_podman(
        tools,
        podman,
        policy,
        "pull",
        "--tls-verify=false",
        "--signature-policy",
        str(policy.path),
        ref,
    )


def signed_push(capsys: pytest.CaptureFixture[str], store: Store, ref: str, key_pair: Keys) -> str:
    out = run(
        capsys,
        "--store",
        str(store.root),
        "push",
        ref,
        "--sign",
        str(key_pair.private),
        "--passphrase-file",
        str(key_pair.passphrase),
    )
    return out.strip().rsplit("@", 1)[1]


def copy_manifest(registry: Registry, repository: str, source: str, target: str) -> None:
    """PUT the manifest tagged `source` under `target`, as someone with push rights could."""
    url = f"{registry.url}/v2/{repository}/manifests"
    request = urllib.request.Request(
        f"{url}/{source}", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}
    )
    with urllib.request.urlopen(request) as response:
        data, media_type = response.read(), response.headers["Content-Type"]
    put = urllib.request.Request(
        f"{url}/{target}", data=data, method="PUT", headers={"Content-Type": media_type}
    )
    urllib.request.urlopen(put).close()


def test_skopeo_and_podman_accept_what_ocibuild_signed_and_refuse_the_rest(
    tmp_path: Path,
    store: Store,
    registry: Registry,
    repo: Callable[[str], str],
    key_pair: Keys,
    policy: Policy,
    tools: Tools,
    podman: Podman,
    busybox: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    signed = f"{registry.host}/{repo('signed')}:1"
    unsigned = f"{registry.host}/{repo('unsigned')}:1"
    replaced = f"{registry.host}/{repo('replaced')}:1"
    forged = f"{registry.host}/{repo('forged')}:1"
    make_image(store, [signed, replaced, forged], [busybox_layer(busybox)], fmt="auto")
    make_image(store, [unsigned], [busybox_layer(busybox), random_layer("u", 100)], fmt="auto")
    digest = signed_push(capsys, store, signed, key_pair)
    run(capsys, "--store", str(store.root), "push", unsigned)
    # a signed image whose tag then gets another manifest, pushed by someone without the key
    signed_push(capsys, store, replaced, key_pair)
    other = make_image(store, ["x/other:1"], [random_layer("evil", 500)], fmt="auto")
    run(capsys, "--store", str(store.root), "push", "x/other:1", "--to", replaced)
    # ... and with the old signature copied to the new manifest's attachment tag
    signed_push(capsys, store, forged, key_pair)
    run(capsys, "--store", str(store.root), "push", "x/other:1", "--to", forged)
    copy_manifest(
        registry, repo("forged"), f"sha256-{digest[7:]}.sig", f"sha256-{other.digest[7:]}.sig"
    )

    accepted = skopeo_copy(tools, policy, signed, tmp_path / "copied")
    assert accepted.returncode == 0, accepted.stderr
    for ref in (unsigned, replaced, forged):
        refused = skopeo_copy(tools, policy, ref, tmp_path / "refused")
        assert refused.returncode != 0, ref
        assert "signature" in refused.stderr.lower(), refused.stderr
    assert "not match" in skopeo_copy(tools, policy, forged, tmp_path / "x").stderr  # the digest

    pulled = podman_pull(tools, podman, policy, signed)
    assert pulled.returncode == 0, pulled.stderr
    ran = sigstore_podman(
        tools,
        podman,
        policy,
        "run",
        "--rm",
        "--network",
        "none",
        signed,
        "/bin/sh",
        "-c",
        "echo signed",
    )
    assert ran.stdout == "signed\n", ran.stderr
    for ref in (unsigned, replaced, forged):
        refused = podman_pull(tools, podman, policy, ref)
        assert refused.returncode != 0 and "signature" in refused.stderr.lower(), refused.stderr


def test_ocibuild_verifies_what_skopeo_signed_with_an_ocibuild_key(
    tmp_path: Path,
    store: Store,
    registry: Registry,
    repo: Callable[[str], str],
    key_pair: Keys,
    policy: Policy,
    tools: Tools,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = f"{registry.host}/{repo('source')}:1"
    target = f"{registry.host}/{repo('by-skopeo')}:1"
    make_image(store, [source], [random_layer("a", 1000)], fmt="auto")
    run(capsys, "--store", str(store.root), "push", source)
    proc = subprocess.run(
        [
            tools.skopeo,
            "--registries.d",
            str(policy.registries_d),
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--sign-by-sigstore-private-key",
            str(key_pair.private),
            "--sign-passphrase-file",
            str(key_pair.passphrase),
            f"docker://{source}",
            f"docker://{target}",
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr

    out = run(capsys, "verify", target, "--key", str(key_pair.public))

    assert out == f"{target}@{store.resolve(source).digest}: signed for {target}\n"
    # the signature is for that tag: asked under another, it is refused (as podman does)
    other_tag = target.replace(":1", ":2")
    run(capsys, "--store", str(store.root), "push", source, "--to", other_tag)
    err = fail(capsys, "verify", other_tag, "--key", str(key_pair.public))
    assert f"no valid signature (a signature for {target}, not {other_tag})" in err


def test_verify_and_pull_refuse_an_unsigned_image_a_wrong_key_and_a_tampered_one(
    tmp_path: Path,
    store: Store,
    registry: Registry,
    repo: Callable[[str], str],
    key_pair: Keys,
    capsys: pytest.CaptureFixture[str],
) -> None:
    signed = f"{registry.host}/{repo('signed')}:1"
    unsigned = f"{registry.host}/{repo('unsigned')}:1"
    make_image(store, [signed], [random_layer("a", 1000)], fmt="auto")
    make_image(store, [unsigned], [random_layer("b", 1000)], fmt="auto")
    digest = signed_push(capsys, store, signed, key_pair)
    run(capsys, "--store", str(store.root), "push", unsigned)
    stranger = keys.generate(b"x")
    (tmp_path / "stranger.pub").write_bytes(stranger.public_pem)
    pulled = tmp_path / "pulled"

    assert run(capsys, "verify", signed, "--key", str(key_pair.public)).startswith(
        f"{signed}@{digest}"
    )
    assert "not signed" in fail(capsys, "verify", unsigned, "--key", str(key_pair.public))
    err = fail(capsys, "verify", signed, "--key", str(tmp_path / "stranger.pub"))
    assert "a signature the key did not make" in err

    err = fail(capsys, "--store", str(pulled), "pull", unsigned, "--verify", str(key_pair.public))
    assert f"{unsigned.rsplit(':', 1)[0]}@sha256:" in err and "not signed" in err
    err = fail(
        capsys, "--store", str(pulled), "pull", signed, "--verify", str(tmp_path / "stranger.pub")
    )
    assert "no valid signature" in err
    assert Store.open(pulled).refs() == {}
    assert not any((pulled / "blobs" / "sha256").iterdir())

    out = run(capsys, "--store", str(pulled), "pull", signed, "--verify", str(key_pair.public))
    assert out == f"{signed}@{digest}\n"


def test_sign_signs_an_image_already_in_the_registry(
    store: Store,
    registry: Registry,
    repo: Callable[[str], str],
    key_pair: Keys,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref = f"{registry.host}/{repo()}:1"
    make_image(store, [ref], [random_layer("a", 1000)], fmt="auto")
    run(capsys, "--store", str(store.root), "push", ref)
    assert "not signed" in fail(capsys, "verify", ref, "--key", str(key_pair.public))

    out = run(
        capsys,
        "sign",
        ref,
        "--key",
        str(key_pair.private),
        "--passphrase-file",
        str(key_pair.passphrase),
    )

    digest = str(store.resolve(ref).digest)
    assert out == f"{ref}@{digest}\n"
    assert (
        run(capsys, "verify", ref, "--key", str(key_pair.public))
        == f"{ref}@{digest}: signed for {ref}\n"
    )


def test_a_key_file_is_cosigns_format_and_the_passphrase_guards_it(
    tmp_path: Path, key_pair: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    pem = key_pair.private.read_text()
    assert pem.startswith("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n")
    assert oct(key_pair.private.stat().st_mode & 0o777) == "0o600"
    body = "".join(pem.splitlines()[1:-1])
    document = json.loads(base64.b64decode(body))
    assert document["kdf"]["name"] == "scrypt" and document["kdf"]["params"] == {
        "N": 32768,
        "r": 8,
        "p": 1,
    }
    assert document["cipher"]["name"] == "nacl/secretbox"
    assert keys.load_public(key_pair.public.read_bytes(), "pub")
    wrong = tmp_path / "wrong"
    wrong.write_text("not it\n")
    err = fail(
        capsys,
        "sign",
        "127.0.0.1:1/x:1",
        "--key",
        str(key_pair.private),
        "--passphrase-file",
        str(wrong),
    )
    assert err == f"error: {key_pair.private}: wrong passphrase (or a damaged key)\n"
    assert PASSPHRASE not in err
    # an existing key is never overwritten
    err = fail(
        capsys,
        "key",
        "generate",
        "--output-prefix",
        str(key_pair.private.with_suffix("")),
        "--passphrase-file",
        str(wrong),
    )
    assert "exists" in err
    assert os.path.getsize(key_pair.private) == len(pem)
