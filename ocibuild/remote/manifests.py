"""Manifests over the Distribution API (fetched verified, pushed last) and their conversion
between the OCI and Docker v2 schema 2 media types.

Which family a push sends matters to old clients: a Distribution registry serves a Docker v2
schema 2 manifest, fetched by tag without an Accept header, converted to schema 1 (what
Shifter's image gateway reads), and answers 404 for an OCI one."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ocibuild.errors import DigestMismatchError, NetworkError, RegistryError, TransientError
from ocibuild.jsonread import JSONObject, read_json, read_json_object
from ocibuild.net.body import read_body
from ocibuild.oci import Descriptor, Index, Manifest, MediaType, Platform, sha256_digest
from ocibuild.oci.digest import Digest, is_digest
from ocibuild.oci.formats import in_format, manifest_format
from ocibuild.oci.mediatypes import INDEXES, MANIFESTS
from ocibuild.remote.transport import RegistryClient

log = logging.getLogger(__name__)

MAX_MANIFEST_SIZE = 4 << 20
ACCEPT = ", ".join(
    [
        MediaType.OCI_MANIFEST,
        MediaType.OCI_INDEX,
        MediaType.DOCKER_MANIFEST,
        MediaType.DOCKER_MANIFEST_LIST,
    ]
)


class ManifestUnknownError(RegistryError):
    """The registry holds no manifest under the name or digest asked for."""


@dataclass(frozen=True)
class RemoteManifest:
    """A manifest or index as the registry sent it: its verified bytes and their descriptor."""

    descriptor: Descriptor
    data: bytes

    @property
    def is_index(self) -> bool:
        return self.descriptor.media_type in INDEXES

    def json(self) -> JSONObject:
        return read_json_object(self.data, f"manifest {self.descriptor.digest}")


def manifest_path(repository: str, identifier: str) -> str:
    return f"/v2/{repository}/manifests/{identifier}"


def get_manifest(
    client: RegistryClient, repository: str, identifier: str, scopes: tuple[str, ...]
) -> RemoteManifest:
    """Fetch a manifest; its sha256 must match the digest asked for and the one announced."""
    where = f"{client.registry}/{repository}{'@' if is_digest(identifier) else ':'}{identifier}"

    def attempt() -> tuple[bytes, str]:
        response = client.attempt(
            "GET",
            manifest_path(repository, identifier),
            scopes=scopes,
            headers={"Accept": ACCEPT},
            stream=True,
        )
        with response:
            if response.status_code == 404:
                raise ManifestUnknownError("no such manifest (HTTP 404)", where)
            if response.status_code != 200:
                raise client.error("GET", response, scopes)
            try:
                data = read_body(response, MAX_MANIFEST_SIZE, "manifest")
            except TransientError as e:
                raise TransientError(str(e), origin=where, cause=e.cause) from None
            except NetworkError as e:
                raise RegistryError(str(e), where) from None
            announced = response.headers.get("Docker-Content-Digest", "")
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        digest = sha256_digest(data)
        if is_digest(identifier) and digest != identifier:
            raise DigestMismatchError(f"the registry sent a manifest with digest {digest}", where)
        if is_digest(announced) and announced != digest:
            raise DigestMismatchError(
                f"the manifest has digest {digest}, the registry announced {announced}", where
            )
        return data, content_type

    data, content_type = client.retrying(attempt)
    try:
        parsed = read_json(data, "manifest", MAX_MANIFEST_SIZE)
    except ValueError as e:
        raise RegistryError(str(e), where) from None
    if not isinstance(parsed, dict):
        raise RegistryError("malformed manifest: not a JSON object", where)
    kind = parsed.get("mediaType") or content_type
    if parsed.get("schemaVersion") == 1 or kind in SCHEMA1:
        raise RegistryError("a Docker schema 1 manifest (schema 1 is not supported)", where)
    if kind not in MANIFESTS | INDEXES:
        shown = kind if isinstance(kind, str) and kind else "none given"
        raise RegistryError(f"unknown manifest media type ({shown!r})", where)
    try:
        if kind in INDEXES:
            Index.from_json(parsed)
        else:
            Manifest.from_json(parsed)
    except ValueError as e:
        raise RegistryError(f"malformed manifest: {e}", where) from None
    return RemoteManifest(Descriptor(kind, sha256_digest(data), len(data)), data)


SCHEMA1 = {
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
}


def manifest_digest(
    client: RegistryClient,
    repository: str,
    identifier: str,
    media_type: str,
    scopes: tuple[str, ...],
) -> str | None:
    """The digest the registry holds under `identifier` when asked for `media_type` (a HEAD),
    or None if it holds none (or will not say: the PUT that follows then speaks for it)."""
    try:
        response = client.request(
            "HEAD",
            manifest_path(repository, identifier),
            scopes=scopes,
            headers={"Accept": media_type},
            expect=(200, 404),
        )
    except RegistryError as e:
        log.debug("%s/%s: no manifest HEAD (%s)", client.registry, repository, e)
        return None
    response.close()
    if response.status_code == 404:
        return None
    return response.headers.get("Docker-Content-Digest")


def put_manifest(
    client: RegistryClient,
    repository: str,
    identifier: str,
    media_type: str,
    data: bytes,
    scopes: tuple[str, ...],
) -> Digest:
    response = client.request(
        "PUT",
        manifest_path(repository, identifier),
        scopes=scopes,
        headers={"Content-Type": media_type},
        body=data,
        expect=(200, 201, 204),
    )
    response.close()
    digest = sha256_digest(data)
    stored = response.headers.get("Docker-Content-Digest")
    if stored and stored != digest:
        raise RegistryError(
            f"{client.registry}/{repository}: manifest stored as {stored}, sent as {digest}"
        )
    return digest


def choose_platform(index: Index, platform: str, where: str) -> Descriptor:
    """The manifest of `platform` (`os/arch[/variant]`) in an index."""
    os_, arch, *rest = platform.split("/")
    wanted = Platform(arch, os_, rest[0] if rest else "")
    for descriptor in index.manifests:
        p = descriptor.platform
        if p is None or (p.os, p.architecture) != (wanted.os, wanted.architecture):
            continue
        if not wanted.variant or p.variant == wanted.variant:
            return descriptor
    available = ", ".join(str(d.platform) for d in index.manifests if d.platform) or "none"
    raise RegistryError(f"no image for {platform} in its index (it has: {available})", where)


def push_format(manifest: Manifest, requested: str) -> str:
    """The family a push sends: `requested`, unless "auto": the image's own (chosen when it
    was built, or as its registry served it), so the pushed digest is the image's."""
    if requested != "auto":
        return requested
    return manifest_format(manifest.media_type)


def convert(media_type: str, data: bytes, fmt: str) -> tuple[str, bytes]:
    """The manifest in `fmt` ("oci" or "docker"): unchanged bytes if it already is, else the same
    layers and config under the other family's media types (another digest)."""
    if media_type not in MANIFESTS:
        raise RegistryError(f"cannot push a {media_type}: only image manifests are pushed")
    if manifest_format(media_type) == fmt:
        return media_type, data
    try:
        converted = in_format(Manifest.from_json(read_json_object(data, "manifest")), fmt)
    except ValueError as e:
        raise RegistryError(f"cannot push as {fmt}: {e}") from None
    return converted.media_type, converted.to_bytes()
