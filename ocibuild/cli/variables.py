"""`--var NAME=VALUE`: the recipe variables of `recipe` and `push -f`."""

from __future__ import annotations

import click

from ocibuild.variables import parse_assignment


def parse_vars(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    try:
        return dict(parse_assignment(v) for v in values)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


VAR_OPTION = click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="NAME=VALUE",
    callback=parse_vars,
    help="Value of ${NAME} in the recipe (before the environment's NAME). Repeatable.",
)
