"""`ocibuild recipe`: build every image a recipe file describes."""

from __future__ import annotations

from pathlib import Path

import click

from ocibuild.builder import PULL_POLICIES, BuildSettings, build_recipe
from ocibuild.cli.display import CliState
from ocibuild.cli.variables import VAR_OPTION
from ocibuild.compression import COMPRESSIONS, LEVEL_HELP
from ocibuild.net.policy import NetworkPolicy
from ocibuild.oci.formats import FORMATS


@click.command("recipe")
@click.argument("recipe_file", type=click.Path(path_type=Path, dir_okay=False))
@VAR_OPTION
@click.option(
    "--image",
    "images",
    multiple=True,
    help="Build only this image (and what it is built from). Repeatable.",
)
@click.option("--no-cache", is_flag=True, help="Rebuild every layer, ignoring the layer cache.")
@click.option(
    "--mirror",
    help="UPS scisoft root URL or directory [default: $OCIBUILD_SCISOFT, the recipe's mirror:, https://scisoft.fnal.gov/scisoft].",
)
@click.option(
    "--index-url",
    help="Python package index for `wheels` layers [default: $PIP_INDEX_URL, pip.conf's "
    "index-url, the recipe's index_url, https://pypi.org/simple].",
)
@click.option("--offline", is_flag=True, help="Use only the download cache; no network.")
@click.option(
    "--update-lock",
    is_flag=True,
    help="Accept downloads that differ from the recipe's .lock file, and rewrite it.",
)
@click.option(
    "--pull",
    type=click.Choice(PULL_POLICIES),
    default="missing",
    show_default=True,
    help="When to pull registry base images.",
)
@click.option(
    "--compression",
    type=click.Choice(COMPRESSIONS),
    help="Layer compression [default: the recipe's, else gzip].",
)
@click.option("--level", "compression_level", type=int, help=f"Compression level: {LEVEL_HELP}.")
@click.option(
    "--format",
    "manifest_format",
    type=click.Choice(FORMATS),
    help="Manifest media types, the image's digest in the store and in every registry: "
    "Docker v2 schema 2, OCI, or auto: Docker when every layer is gzip, else OCI "
    "[default: the recipe's format:, else auto].",
)
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    callback=lambda _ctx, _param, values: _platforms(values),
    help="os/arch[/variant] to build every image for, over the recipe's platforms: "
    "(repeatable, or comma-separated: linux/amd64,linux/arm64); several give an image index.",
)
@click.option(
    "--sbom",
    "sbom_format",
    type=click.Choice(["spdx", "cyclonedx"]),
    default="spdx",
    show_default=True,
    help="The SBOM stored (and pushed) with each image: SPDX 2.3 JSON or CycloneDX 1.6 JSON.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Layers written at once (layers from bzip2 tarballs, which use every core, one at a time).",
)
@click.option(
    "--downloads",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Files downloaded at once (UPS tarballs, packages, indexes).",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Allow plain HTTP and unverified TLS for registries of base images, and unverified TLS "
    "for downloads (loopback registries may be plain HTTP without it).",
)
@click.option(
    "--ca-cert",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="CA certificate for registries of base images (downloads trust certs.d CAs, see "
    "docs/registry.md).",
)
@click.pass_obj
def recipe_command(
    state: CliState,
    recipe_file: Path,
    variables: dict[str, str],
    images: tuple[str, ...],
    no_cache: bool,
    mirror: str | None,
    index_url: str | None,
    offline: bool,
    update_lock: bool,
    pull: str,
    compression: str | None,
    compression_level: int | None,
    manifest_format: str | None,
    platforms: tuple[str, ...],
    sbom_format: str,
    jobs: int,
    downloads: int,
    insecure: bool,
    ca_cert: Path | None,
) -> None:
    """Build every image RECIPE_FILE describes, in dependency order, into the local store.

    Unchanged layers come from the cache; each image is tagged under all its references.
    Prints each built reference and its manifest digest: the digest `push` sends and the
    registry serves.
    """
    settings = BuildSettings(
        no_cache=no_cache,
        mirror=mirror,
        index_url=index_url,
        network=NetworkPolicy(
            offline=offline, insecure=insecure, ca_cert=ca_cert, downloads=downloads
        ),
        update_lock=update_lock,
        pull=pull,
        jobs=jobs,
        compression=compression,
        compression_level=compression_level,
        manifest_format=manifest_format,
        sbom_format=sbom_format,
        images=images,
        platforms=platforms,
        variables=variables,
    )
    built = build_recipe(recipe_file, state.store(), settings, state.reporter())
    state.close()
    for image in built:
        for ref in image.refs:
            click.echo(f"{ref}@{image.descriptor.digest}")


def _platforms(values: tuple[str, ...]) -> tuple[str, ...]:
    from ocibuild.oci import Platform

    out = tuple(p for value in values for p in value.split(",") if p)
    for text in out:
        try:
            Platform.parse(text)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None
    return out


@click.command("schema")
def schema_command() -> None:
    """Print the JSON schema of recipe files (format v1), for editors and checkers."""
    import json

    from ocibuild.recipe.schema import recipe_schema

    click.echo(json.dumps(recipe_schema(), indent=2))


COMMANDS = [recipe_command, schema_command]
