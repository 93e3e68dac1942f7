"""The artifacts the store holds about an image (its SBOM, its provenance statement), sent to a
registry with the image; the provenance signed there with the image's key, as a DSSE envelope
(`application/vnd.dsse.envelope.v1+json`), in place of the bare statement."""

from __future__ import annotations

from typing import Any

from ocibuild.errors import VerificationError
from ocibuild.jsonread import read_json
from ocibuild.oci import Descriptor, Manifest, MediaType
from ocibuild.oci.artifact import EMPTY_CONFIG, artifact_manifest
from ocibuild.oci.digest import Digest
from ocibuild.remote.artifacts import get_small_blob, put_referrer, referrers
from ocibuild.remote.manifests import get_manifest
from ocibuild.remote.transport import RegistryClient
from ocibuild.signing import dsse, keys
from ocibuild.store import Store


def push_referrers(
    client: RegistryClient,
    store: Store,
    repository: str,
    image: Descriptor,
    key: keys.PrivateKey | None,
    scopes: tuple[str, ...],
) -> list[Digest]:
    """Send the store's artifacts about `image` to `repository`: SBOMs as they are; the
    provenance statement as a DSSE envelope signed with `key`, or bare without one."""
    pushed = []
    for _, manifest in store.referrers(image.digest):
        if manifest.artifact_type == MediaType.IN_TOTO and key is not None:
            pushed.append(_signed(client, store, repository, image, manifest, key, scopes))
            continue
        blobs = [store.read_blob(d.digest) for d in (manifest.config, *manifest.layers)]
        pushed.append(put_referrer(client, repository, manifest, blobs, scopes))
    return pushed


def sign_provenance(
    client: RegistryClient,
    store: Store,
    repository: str,
    image: Descriptor,
    key: keys.PrivateKey,
    scopes: tuple[str, ...],
) -> list[Digest]:
    """Send the store's provenance statements about `image`, signed with `key` (`sign` of an
    image the store holds)."""
    return [
        _signed(client, store, repository, image, manifest, key, scopes)
        for _, manifest in store.referrers(image.digest)
        if manifest.artifact_type == MediaType.IN_TOTO
    ]


def _signed(
    client: RegistryClient,
    store: Store,
    repository: str,
    image: Descriptor,
    statement: Manifest,
    key: keys.PrivateKey,
    scopes: tuple[str, ...],
) -> Digest:
    layer = statement.layers[0]
    envelope = dsse.envelope(store.read_blob(layer.digest), key)
    signed = artifact_manifest(image, MediaType.DSSE, envelope, layer.annotations)
    return put_referrer(client, repository, signed, [EMPTY_CONFIG, envelope], scopes)


def verified_provenance(
    client: RegistryClient,
    repository: str,
    digest: str,
    key: keys.PublicKey,
    scopes: tuple[str, ...],
) -> list[str]:
    """The predicate types of the DSSE envelopes about `digest` that `key` signed and whose
    in-toto subject is `digest`."""
    found = []
    for descriptor in referrers(client, repository, digest, scopes):
        if descriptor.artifact_type != MediaType.DSSE:
            continue
        referrer = get_manifest(client, repository, descriptor.digest, scopes)
        layer = Manifest.from_json(referrer.json()).layers[0]
        opened = dsse.open_envelope(
            get_small_blob(client, repository, layer, scopes), key, str(descriptor.digest)
        )
        try:
            statement: Any = read_json(opened.payload, str(descriptor.digest))
            subjects = {s["digest"]["sha256"] for s in statement["subject"]}
            predicate = str(statement["predicateType"])
        except (ValueError, TypeError, KeyError) as e:
            raise VerificationError(
                f"{descriptor.digest}: not an in-toto statement ({e})"
            ) from None
        if digest.removeprefix("sha256:") not in subjects:
            raise VerificationError(f"{descriptor.digest}: a statement about another image")
        found.append(predicate)
    return found
