"""Sign and verify images named by registry references: the manifest digest each names, its
signature (`signatures`), and the provenance the store holds about it, signed beside it
(`referrers`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ocibuild.oci.reference import parse_reference
from ocibuild.progress import Message, Reporter
from ocibuild.remote.auth import repository_scope
from ocibuild.remote.manifests import get_manifest
from ocibuild.remote.options import RemoteOptions
from ocibuild.remote.referrers import sign_provenance, verified_provenance
from ocibuild.remote.signatures import sign_image, verify_image
from ocibuild.remote.transport import RegistryClient
from ocibuild.signing import keys
from ocibuild.store import Store


@dataclass(frozen=True)
class Signed:
    reference: str
    digest: str


@dataclass(frozen=True)
class VerifiedImage:
    reference: str
    digest: str
    identity: str
    provenance: tuple[str, ...]  # predicate types of the signed statements about it


def sign_images(
    store: Store | None,
    refs: list[str],
    key: keys.PrivateKey,
    options: RemoteOptions,
    report: Reporter,
) -> Iterator[Signed]:
    for ref in refs:
        reference = parse_reference(ref)
        scopes = (repository_scope(reference.repository, "pull,push"),)
        with RegistryClient(reference.registry, options, report) as client:
            top = get_manifest(client, reference.repository, reference.identifier, scopes)
            digest = str(top.descriptor.digest)
            if not sign_image(client, reference, digest, key, scopes):
                report(Message(f"{reference}: already signed with this signature"))
            if store is not None and store.has_blob(digest):
                sign_provenance(client, store, reference.repository, top.descriptor, key, scopes)
        yield Signed(str(reference), digest)


def verify_images(
    refs: list[str], key: keys.PublicKey, options: RemoteOptions, report: Reporter
) -> Iterator[VerifiedImage]:
    for ref in refs:
        reference = parse_reference(ref)
        scopes = (repository_scope(reference.repository, "pull"),)
        with RegistryClient(reference.registry, options, report) as client:
            top = get_manifest(client, reference.repository, reference.identifier, scopes)
            digest = str(top.descriptor.digest)
            (first, *_) = verify_image(client, reference, digest, key, scopes)
            provenance = verified_provenance(client, reference.repository, digest, key, scopes)
        yield VerifiedImage(str(reference), digest, first.identity, tuple(provenance))
