"""`ocibuild push`, `pull`, `login`, `logout`: the registry commands."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ocibuild.cli.display import CliState
from ocibuild.cli.keys import load_private_key, load_public_key, passphrase_option
from ocibuild.cli.variables import VAR_OPTION
from ocibuild.oci.formats import FORMATS
from ocibuild.oci.reference import parse_reference
from ocibuild.remote import (
    Credentials,
    RemoteOptions,
    login,
    logout,
    pull_image,
    push_images,
    target_reference,
)
from ocibuild.remote.login import registry_host
from ocibuild.remote.transport import UnreachableError


def connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option(
                "--insecure",
                is_flag=True,
                help="Allow plain HTTP and unverified TLS for every registry (loopback, "
                "localhost and *.local registries may be plain HTTP without it; "
                "$OCIBUILD_INSECURE_REGISTRIES lists others).",
            ),
            click.option(
                "--ca-cert",
                type=click.Path(path_type=Path, dir_okay=False, exists=True),
                help="CA certificate (PEM) to verify the registry's TLS certificate "
                "[default: the system's, and /etc/containers/certs.d/HOST[:PORT]/*.crt, "
                "/etc/docker/certs.d/HOST[:PORT]/ca.crt].",
            ),
        ]
    ):
        command = option(command)
    return command


def concurrency_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-j",
        "--concurrency",
        type=click.IntRange(1, 64),
        default=4,
        show_default=True,
        help="Blobs transferred at once.",
    )(command)


def remote_options(insecure: bool, ca_cert: Path | None, **settings: Any) -> RemoteOptions:
    try:
        return RemoteOptions(insecure=insecure, ca_cert=ca_cert, **settings)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def images_to_push(
    state: CliState,
    refs: tuple[str, ...],
    recipe_file: Path | None,
    variables: dict[str, str] | None = None,
) -> list[str]:
    if refs:
        return list(refs)
    if recipe_file is not None:
        from ocibuild.recipe import image_refs, load_recipe

        recipe = load_recipe(recipe_file, variables)
        return [ref for image in recipe.images for ref in image_refs(image)]
    built = [ref for ref, _ in state.store().state.last_build()]
    if not built:
        raise click.UsageError(
            "nothing to push: name images, give -f RECIPE, or build with `ocibuild recipe` first"
        )
    return built


@click.command("push")
@click.argument("refs", nargs=-1)
@click.option(
    "-f",
    "--file",
    "recipe_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Push every image (all tags) of this recipe file.",
)
@VAR_OPTION
@click.option(
    "--to",
    help="Push under this reference instead (keeps the tag if it names none); "
    "ending with / (`site:5000/hep/`): the same repositories under that registry and prefix.",
)
@click.option(
    "--format",
    "manifest_format",
    type=click.Choice(FORMATS),
    default="auto",
    show_default=True,
    help="Manifest media types: auto, the image's own (chosen when it was built: its digest); "
    "docker (v2 schema 2, what Shifter's gateway and other schema-1 clients get served) or oci "
    "convert an image of the other family: same layers, another digest (said, and printed).",
)
@click.option(
    "--sign",
    "sign_key",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Sign each image pushed with this private key (cosign's format), for its target "
    "reference, and its provenance statement with it.",
)
@passphrase_option
@connection_options
@concurrency_option
@click.pass_obj
def push_command(
    state: CliState,
    refs: tuple[str, ...],
    recipe_file: Path | None,
    variables: dict[str, str],
    to: str | None,
    manifest_format: str,
    sign_key: Path | None,
    passphrase_file: Path | None,
    insecure: bool,
    ca_cert: Path | None,
    concurrency: int,
) -> None:
    """Push images from the store to their registries: REFS, else the images of -f RECIPE, else
    every image (all tags) the last `ocibuild recipe` built. Prints REF@DIGEST per push: the
    digest of the manifest as pushed, the image's own unless --format converts it."""
    sources = images_to_push(state, refs, recipe_file, variables)
    pairs = [(source, target_reference(source, to)) for source in sources]
    targets = [str(target) for _, target in pairs]
    if len(set(targets)) < len(targets):
        raise click.UsageError(
            f"--to {to} sends several images to the same reference; "
            "end it with / to push each under its own repository"
        )
    options = remote_options(insecure, ca_cert, format=manifest_format, concurrency=concurrency)
    key = load_private_key(sign_key, passphrase_file) if sign_key else None
    try:
        results = push_images(state.store(), pairs, options, state.reporter(), key)
    except UnreachableError as e:
        if to:
            raise
        raise UnreachableError(
            f"{e}; to push elsewhere, give --to REGISTRY/REPO[:TAG] (or --to REGISTRY/ to keep "
            "the repository names), or name the image with its registry "
            "(`name: REGISTRY/REPO:TAG` in the recipe)"
        ) from None
    state.close()  # the live rows end before the results: on one terminal, they would mix
    for result in results:
        click.echo(f"{result.reference}@{result.digest}")


@click.command("pull")
@click.argument("ref")
@click.option(
    "--platform",
    default="linux/amd64",
    show_default=True,
    help="os/arch[/variant] to take from a multi-platform index.",
)
@click.option(
    "--verify",
    "verify_key",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Public key: pull only if the image carries a signature of this key for REF "
    "(see `ocibuild verify`); else fail, fetching nothing.",
)
@connection_options
@concurrency_option
@click.pass_obj
def pull_command(
    state: CliState,
    ref: str,
    platform: str,
    verify_key: Path | None,
    insecure: bool,
    ca_cert: Path | None,
    concurrency: int,
) -> None:
    """Fetch REF from its registry into the store, verifying every digest; prints REF@DIGEST."""
    options = remote_options(insecure, ca_cert, platform=platform, concurrency=concurrency)
    key = load_public_key(verify_key) if verify_key else None
    descriptor = pull_image(state.store(), ref, options, state.reporter(), key)
    state.close()
    click.echo(f"{parse_reference(ref)}@{descriptor.digest}")


@click.command("login")
@click.argument("registry")
@click.option("-u", "--username", help="User name [default: asked].")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@connection_options
@click.pass_obj
def login_command(
    state: CliState,
    registry: str,
    username: str | None,
    password_stdin: bool,
    insecure: bool,
    ca_cert: Path | None,
) -> None:
    """Check credentials against REGISTRY and store them like `docker login` does
    ($REGISTRY_AUTH_FILE, else $DOCKER_CONFIG/config.json or ~/.docker/config.json, or the
    credential helper it names)."""
    registry_host(registry)  # a bad name fails before any question is asked
    if username is None:
        username = click.prompt("Username")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True)
    if not username or not password:
        raise click.UsageError("a user name and a password are both needed")
    options = remote_options(insecure, ca_cert)
    where = login(registry, Credentials(username, password), options, state.reporter())
    click.echo(f"Login succeeded: credentials for {registry} stored in {where}")


@click.command("logout")
@click.argument("registry")
@click.pass_obj
def logout_command(state: CliState, registry: str) -> None:
    """Forget the stored credentials of REGISTRY."""
    if logout(registry, RemoteOptions()):
        click.echo(f"Removed credentials for {registry}")
    else:
        click.echo(f"Not logged in to {registry}")


COMMANDS = [push_command, pull_command, login_command, logout_command]
