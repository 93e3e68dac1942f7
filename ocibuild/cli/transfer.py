"""`ocibuild copy`, `ls`, `digest`: images where they are, in a registry or the store.

A location is a registry reference (`site:5000/hep/art:1`, `docker://` allowed before it), or
`store:REF` for the local store."""

from __future__ import annotations

from pathlib import Path

import click

from ocibuild.cli.display import CliState
from ocibuild.cli.registry import concurrency_option, connection_options, remote_options
from ocibuild.remote.copy import copy_image, parse_location


@click.command("copy")
@click.argument("source")
@click.argument("target")
@click.option(
    "--platform",
    default="linux/amd64",
    show_default=True,
    help="os/arch[/variant] to take from an index, when the target is the store.",
)
@connection_options
@concurrency_option
@click.pass_obj
def copy_command(
    state: CliState,
    source: str,
    target: str,
    platform: str,
    insecure: bool,
    ca_cert: Path | None,
    concurrency: int,
) -> None:
    """Copy an image from SOURCE to TARGET, keeping its digests; prints TARGET@DIGEST.

    \b
    Each is a registry reference (docker:// before it allowed), or store:REF for the store:
      ocibuild copy site:5000/hep/art:1 backup:5000/hep/art:1   registry to registry
      ocibuild copy store:hep/art:1 site:5000/hep/art:1         store to registry (a push)
      ocibuild copy site:5000/hep/art:1 store:                  registry to store (a pull)
    Between registries blobs stream from one to the other (mounted within one registry) and
    an index is copied with all its platforms. A target without a tag keeps the source's.
    """
    options = remote_options(insecure, ca_cert, platform=platform, concurrency=concurrency)
    result = copy_image(
        state.store(), parse_location(source), parse_location(target), options, state.reporter()
    )
    click.echo(f"{result.reference}@{result.digest}")


@click.command("ls")
@click.argument("repository")
@connection_options
@click.pass_obj
def ls_command(state: CliState, repository: str, insecure: bool, ca_cert: Path | None) -> None:
    """List the tags of REPOSITORY (`site:5000/hep/art`) in its registry, one a line."""
    from ocibuild.remote.lookup import list_tags

    location = parse_location(repository)
    if location.in_store:
        raise click.UsageError("ls lists a registry's tags; `ocibuild images` lists the store")
    for tag in list_tags(location.ref, remote_options(insecure, ca_cert), state.reporter()):
        click.echo(tag)


@click.command("digest")
@click.argument("ref")
@connection_options
@click.pass_obj
def digest_command(state: CliState, ref: str, insecure: bool, ca_cert: Path | None) -> None:
    """Print the manifest digest of REF: a registry reference (of an index: the index's
    digest), or store:REF for an image of the store."""
    from ocibuild.remote.lookup import manifest_digest

    location = parse_location(ref)
    if location.in_store:
        click.echo(state.store(create=False).resolve(location.ref).digest)
        return
    click.echo(manifest_digest(location.ref, remote_options(insecure, ca_cert), state.reporter()))


COMMANDS = [copy_command, ls_command, digest_command]
