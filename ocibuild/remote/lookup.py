"""What a registry holds, without fetching images: the tags of a repository (following the
pages a registry hands out in `Link: <...>; rel="next"` headers) and a manifest's digest."""

from __future__ import annotations

from urllib.parse import urlencode

from ocibuild.errors import NetworkError, RegistryError
from ocibuild.limits import JSON_SIZE
from ocibuild.net.body import read_json_body
from ocibuild.net.links import Pages
from ocibuild.oci.reference import parse_reference
from ocibuild.progress import Reporter, silent
from ocibuild.remote.auth import repository_scope
from ocibuild.remote.manifests import get_manifest
from ocibuild.remote.options import RemoteOptions
from ocibuild.remote.transport import RegistryClient


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
    tags: list[str] = []
    what = f"{reference.name}: the tag list"
    with RegistryClient(reference.registry, options, report) as client:
        url: str | None = client.url(f"/v2/{reference.repository}/tags/list{query}")
        pages = Pages(url or "", what)
        while url is not None:
            response = client.request("GET", url, scopes=scopes, expect=(200, 404))
            with response:
                if response.status_code == 404:
                    raise RegistryError(f"{reference.name}: no such repository (HTTP 404)")
                try:
                    page = read_json_body(response, JSON_SIZE.value, what)
                except (ValueError, NetworkError) as e:
                    raise RegistryError(str(e)) from None
                names = page.get("tags") if isinstance(page, dict) else None
                if not isinstance(names, list | None):
                    raise RegistryError(f"{what} is not JSON with a 'tags' list")
                tags += [str(t) for t in names or ()]
                try:
                    url = pages.next(response.url, response.links.get("next", {}).get("url"))
                except NetworkError as e:
                    raise RegistryError(str(e)) from None
    return tags


def manifest_digest(ref: str, options: RemoteOptions, report: Reporter = silent) -> str:
    """The digest of the manifest (or index) `ref` names, checked against the bytes sent."""
    reference = parse_reference(ref)
    scopes = (repository_scope(reference.repository, "pull"),)
    with RegistryClient(reference.registry, options, report) as client:
        manifest = get_manifest(client, reference.repository, reference.identifier, scopes)
    return str(manifest.descriptor.digest)
