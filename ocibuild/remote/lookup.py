"""What a registry holds, without fetching images: the tags of a repository (following the
pages a registry hands out in `Link: <...>; rel="next"` headers) and a manifest's digest."""

from __future__ import annotations

from urllib.parse import urlencode

from ocibuild.errors import RegistryError
from ocibuild.oci.reference import parse_reference
from ocibuild.progress import Reporter, silent
from ocibuild.remote.auth import repository_scope
from ocibuild.remote.manifests import get_manifest
from ocibuild.remote.options import RemoteOptions
from ocibuild.remote.transport import RegistryClient

MAX_PAGES = 10_000


def list_tags(
    repository: str,
    options: RemoteOptions,
    report: Reporter = silent,
    page_size: int | None = None,
) -> list[str]:
    """Every tag of `repository` (`registry/name`, a tag or digest in it is ignored), in the
    registry's order; `page_size` asks for pages of that many tags (`?n=`)."""
    reference = parse_reference(repository, default_tag="")
    scopes = (repository_scope(reference.repository, "pull"),)
    query = f"?{urlencode({'n': page_size})}" if page_size else ""
    path: str | None = f"/v2/{reference.repository}/tags/list{query}"
    tags: list[str] = []
    with RegistryClient(reference.registry, options, report) as client:
        for _ in range(MAX_PAGES):
            if path is None:
                return tags
            response = client.request("GET", path, scopes=scopes, expect=(200, 404))
            with response:
                if response.status_code == 404:
                    raise RegistryError(f"{reference.name}: no such repository (HTTP 404)")
                try:
                    page = response.json().get("tags") or []
                except (ValueError, AttributeError):
                    raise RegistryError(
                        f"{reference.name}: the tag list is not JSON with a 'tags' list"
                    ) from None
                tags += [str(t) for t in page]
                path = response.links.get("next", {}).get("url")
    raise RegistryError(f"{reference.name}: more than {MAX_PAGES} pages of tags")


def manifest_digest(ref: str, options: RemoteOptions, report: Reporter = silent) -> str:
    """The digest of the manifest (or index) `ref` names, checked against the bytes sent."""
    reference = parse_reference(ref)
    scopes = (repository_scope(reference.repository, "pull"),)
    with RegistryClient(reference.registry, options, report) as client:
        manifest = get_manifest(client, reference.repository, reference.identifier, scopes)
    return str(manifest.descriptor.digest)
