"""What registries hold about an image beside it: small blobs moved in memory, OCI 1.1
referrers (an SBOM, a provenance statement: manifests whose `subject` is the image), and the
tags of the schemes that predate the referrers API.

A referrer is PUT by its digest; a registry with the referrers API says so with an
`OCI-Subject` header and indexes it itself (`GET /v2/<name>/referrers/<digest>`). Without the
header (the CNCF distribution registry 2.x) the client keeps the index: an OCI image index
tagged `sha256-<hex>` (the referrers tag schema), fetched, extended, put back."""

from __future__ import annotations

from ocibuild.errors import DigestMismatchError, NetworkError, RegistryError
from ocibuild.jsonread import read_json_object
from ocibuild.net.body import read_body
from ocibuild.oci import Descriptor, Index, Manifest, MediaType
from ocibuild.oci.digest import Digest, sha256_digest
from ocibuild.remote.blobs import blob_exists, blob_path, start_upload
from ocibuild.remote.manifests import (
    ManifestUnknownError,
    RemoteManifest,
    get_manifest,
    manifest_digest,
    manifest_path,
    put_manifest,
)
from ocibuild.remote.transport import RegistryClient

MAX_SMALL_BLOB = 4 << 20  # a signature payload, an SBOM, an artifact's config


def tag_for(digest: str, suffix: str = "") -> str:
    """The tag of a scheme keyed by an image's digest: `sha256-<hex>` (the referrers tag
    schema), `sha256-<hex>.sig` (cosign's and containers/image's signatures)."""
    return digest.replace(":", "-", 1) + (f".{suffix}" if suffix else "")


def put_small_blob(
    client: RegistryClient, repository: str, data: bytes, scopes: tuple[str, ...]
) -> Descriptor:
    """Upload bytes held in memory, unless the registry has them; their descriptor (the media
    type is the referring manifest's to set)."""
    descriptor = Descriptor("application/octet-stream", sha256_digest(data), len(data))
    if blob_exists(client, repository, descriptor, scopes):
        return descriptor
    session = start_upload(client, repository, scopes)
    if session is None:
        raise RegistryError(f"{client.registry}/{repository}: an upload was answered as a mount")
    separator = "&" if "?" in session.location else "?"
    url = f"{session.location}{separator}digest={descriptor.digest}"
    response = client.request(
        "PUT",
        url,
        scopes=scopes,
        headers={"Content-Type": "application/octet-stream"},
        body=data,
        expect=(201, 204),
    )
    response.close()
    return descriptor


def get_small_blob(
    client: RegistryClient, repository: str, descriptor: Descriptor, scopes: tuple[str, ...]
) -> bytes:
    """A blob of at most MAX_SMALL_BLOB bytes, checked against its descriptor."""
    where = f"{client.registry}/{repository}@{descriptor.digest}"
    if descriptor.size > MAX_SMALL_BLOB:
        raise RegistryError(f"{where}: {descriptor.size} bytes, more than {MAX_SMALL_BLOB}")
    response = client.request(
        "GET", blob_path(repository, descriptor.digest), scopes=scopes, stream=True
    )
    with response:
        try:
            data = read_body(response, descriptor.size, where)
        except NetworkError as e:
            raise RegistryError(str(e)) from None
    if len(data) != descriptor.size or sha256_digest(data) != descriptor.digest:
        raise DigestMismatchError(f"{where}: the registry sent other content")
    return data


def find_manifest(
    client: RegistryClient, repository: str, identifier: str, scopes: tuple[str, ...]
) -> RemoteManifest | None:
    try:
        return get_manifest(client, repository, identifier, scopes)
    except ManifestUnknownError:
        return None


def put_referrer(
    client: RegistryClient,
    repository: str,
    manifest: Manifest,
    blobs: list[bytes],
    scopes: tuple[str, ...],
) -> Digest:
    """Push an artifact about an image (its config and layers given as `blobs`, in the
    manifest's order), unless the registry has it, and index it where the registry's clients
    look: the registry's referrers API if it has one, else the `sha256-<hex>` tag's index."""
    if manifest.subject is None:
        raise ValueError("a referrer has a subject")
    data = manifest.to_bytes()
    digest = sha256_digest(data)
    if manifest_digest(client, repository, digest, manifest.media_type, scopes) != digest:
        for blob in blobs:
            put_small_blob(client, repository, blob, scopes)
        response = client.request(
            "PUT",
            manifest_path(repository, digest),
            scopes=scopes,
            headers={"Content-Type": manifest.media_type},
            body=data,
            expect=(201, 200, 204),
        )
        response.close()
        if response.headers.get("OCI-Subject"):
            return digest
    descriptor = Descriptor(
        manifest.media_type,
        digest,
        len(data),
        dict(manifest.annotations),
        artifact_type=manifest.artifact_type or manifest.config.media_type,
    )
    tag = tag_for(manifest.subject.digest)
    found = find_manifest(client, repository, tag, scopes)
    listed = Index.from_json(found.json()).manifests if found else ()
    if all(d.digest != digest for d in listed):
        index = Index((*listed, descriptor))
        put_manifest(client, repository, tag, MediaType.OCI_INDEX, index.to_bytes(), scopes)
    return digest


def referrers(
    client: RegistryClient, repository: str, digest: str, scopes: tuple[str, ...]
) -> list[Descriptor]:
    """The artifacts about the image `digest`: the referrers API's answer, else the index of
    the `sha256-<hex>` tag, else none."""
    response = client.request(
        "GET", f"/v2/{repository}/referrers/{digest}", scopes=scopes, expect=(200, 404)
    )
    with response:
        if response.status_code == 200:
            try:
                what = f"{client.registry}/{repository}: the referrers of {digest}"
                return list(Index.from_json(read_json_object(response.content, what)).manifests)
            except (ValueError, TypeError, KeyError, AttributeError) as e:
                raise RegistryError(
                    f"{client.registry}/{repository}: the referrers of {digest} are not an "
                    f"image index ({e})"
                ) from None
    found = find_manifest(client, repository, tag_for(digest), scopes)
    return list(Index.from_json(found.json()).manifests) if found and found.is_index else []
