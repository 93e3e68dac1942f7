"""Image signatures in a registry, the way containers/image (skopeo, podman) and cosign keep
them: an OCI manifest tagged `sha256-<hex>.sig` in the image's repository, one layer per
signature (media type `application/vnd.dev.cosign.simplesigning.v1+json`, the payload; its
base64 signature in the annotation `dev.cosignproject.cosign/signature`), a config whose
diff_ids list the layers. Signing adds a layer (an identical one is not added twice);
verifying takes every signature layer, checks its signature with the key, then what the
payload claims: the manifest digest, and the identity the image was asked by."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

from ocibuild import __version__
from ocibuild.errors import VerificationError
from ocibuild.oci import Descriptor, ImageConfig, Manifest, MediaType
from ocibuild.oci.reference import Reference, ReferenceError, parse_reference
from ocibuild.remote.artifacts import find_manifest, get_small_blob, put_small_blob, tag_for
from ocibuild.remote.manifests import put_manifest
from ocibuild.remote.transport import RegistryClient
from ocibuild.signing import keys, simple

SIGNATURE_SUFFIX = "sig"


@dataclass(frozen=True)
class Verified:
    """A signature that verified: the digest and the identity it was made for."""

    digest: str
    identity: str


def identity_of(reference: Reference) -> str:
    """The `docker-reference` a signature names: the reference without its digest."""
    return str(Reference(reference.registry, reference.repository, reference.tag))


def sign_image(
    client: RegistryClient,
    reference: Reference,
    digest: str,
    key: keys.PrivateKey,
    scopes: tuple[str, ...],
) -> bool:
    """Attach a signature of manifest `digest` as the image `reference` names it; False if
    an identical signature is there already (ECDSA signs anew each time, so only a re-push
    of the very same signature layer is one)."""
    claim = simple.Claim(digest, identity_of(reference))
    payload = simple.payload(claim, f"ocibuild {__version__}", int(time.time()))
    signature = base64.b64encode(keys.sign(key, payload)).decode()
    return add_signature(client, reference.repository, digest, payload, signature, scopes)


def add_signature(
    client: RegistryClient,
    repository: str,
    digest: str,
    payload: bytes,
    signature: str,
    scopes: tuple[str, ...],
) -> bool:
    tag = tag_for(digest, SIGNATURE_SUFFIX)
    found = find_manifest(client, repository, tag, scopes)
    layers: tuple[Descriptor, ...] = ()
    if found is not None:
        if found.descriptor.media_type != MediaType.OCI_MANIFEST:
            raise VerificationError(
                f"{client.registry}/{repository}:{tag} is a {found.descriptor.media_type}, "
                "not the OCI manifest signatures are kept in"
            )
        layers = Manifest.from_json(found.json()).layers
    layer = Descriptor(
        MediaType.SIMPLE_SIGNING,
        put_small_blob(client, repository, payload, scopes).digest,
        len(payload),
        {simple.SIGNATURE_ANNOTATION: signature},
    )
    if layer in layers:
        return False
    layers = (*layers, layer)
    config = ImageConfig(architecture="", os="", diff_ids=tuple(d.digest for d in layers))
    config_data = config.to_bytes()
    config_descriptor = put_small_blob(client, repository, config_data, scopes)
    manifest = Manifest(
        Descriptor(MediaType.OCI_CONFIG, config_descriptor.digest, len(config_data)), layers
    )
    put_manifest(client, repository, tag, MediaType.OCI_MANIFEST, manifest.to_bytes(), scopes)
    return True


def verify_image(
    client: RegistryClient,
    reference: Reference,
    digest: str,
    key: keys.PublicKey,
    scopes: tuple[str, ...],
) -> list[Verified]:
    """The signatures of manifest `digest` that `key` made for the image `reference` names
    (its tag exactly, or, asked by digest, its repository: containers/image's
    matchRepoDigestOrExact); VerificationError saying why when there is none."""
    where = f"{reference.name}@{digest}"
    found = find_manifest(client, reference.repository, tag_for(digest, SIGNATURE_SUFFIX), scopes)
    if found is None:
        raise VerificationError(f"{where}: not signed (no {tag_for(digest, SIGNATURE_SUFFIX)})")
    layers = [
        layer
        for layer in Manifest.from_json(found.json()).layers
        if layer.media_type == MediaType.SIMPLE_SIGNING
    ]
    verified, refused = [], []
    for layer in layers:
        payload = get_small_blob(client, reference.repository, layer, scopes)
        try:
            verified.append(_check(payload, layer, key, reference, digest, where))
        except VerificationError as e:
            refused.append(str(e))
    if verified:
        return verified
    reasons = "; ".join(dict.fromkeys(refused)) or "no signature layer"
    raise VerificationError(f"{where}: no valid signature ({reasons})")


def _check(
    payload: bytes,
    layer: Descriptor,
    key: keys.PublicKey,
    reference: Reference,
    digest: str,
    where: str,
) -> Verified:
    encoded = layer.annotations.get(simple.SIGNATURE_ANNOTATION, "")
    try:
        signature = base64.b64decode(encoded, validate=True)
    except ValueError:
        raise VerificationError("a signature that is not base64") from None
    if not keys.verify(key, payload, signature):
        raise VerificationError("a signature the key did not make")
    claim = simple.read_payload(payload, where)
    if claim.digest != digest:
        raise VerificationError(f"a signature of another manifest ({claim.digest})")
    try:
        signed = parse_reference(claim.reference, default_tag="")
    except ReferenceError:
        raise VerificationError(f"a signature for {claim.reference!r}, not a reference") from None
    if signed.name != reference.name or (reference.tag and signed.tag != reference.tag):
        raise VerificationError(f"a signature for {claim.reference}, not {identity_of(reference)}")
    return Verified(claim.digest, claim.reference)
