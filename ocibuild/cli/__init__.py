"""The command line: parse options, set up logging and progress, call the library."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ocibuild import __version__, decoders
from ocibuild.cli.display import PROGRESS_MODES, CliState
from ocibuild.errors import OcibuildError
from ocibuild.heap import reuse_big_buffers
from ocibuild.secrets import RedactingFilter, redact

log = logging.getLogger("ocibuild")


COMMAND_MODULES = {
    "recipe": "ocibuild.cli.recipe",
    "schema": "ocibuild.cli.recipe",
    "images": "ocibuild.cli.store",
    "inspect": "ocibuild.cli.store",
    "export": "ocibuild.cli.store",
    "gc": "ocibuild.cli.store",
    "rmi": "ocibuild.cli.store",
    "tag": "ocibuild.cli.store",
    "load": "ocibuild.cli.store",
    "sbom": "ocibuild.cli.store",
    "push": "ocibuild.cli.registry",
    "pull": "ocibuild.cli.registry",
    "login": "ocibuild.cli.registry",
    "logout": "ocibuild.cli.registry",
    "copy": "ocibuild.cli.transfer",
    "ls": "ocibuild.cli.transfer",
    "digest": "ocibuild.cli.transfer",
    "key": "ocibuild.cli.signing",
    "sign": "ocibuild.cli.signing",
    "verify": "ocibuild.cli.signing",
    "bench": "ocibuild.cli.bench",
}


# what users of docker, podman and crane type, and the command that does it here
SYNONYMS = {
    "build": "recipe",
    "save": "export",
    "rm": "rmi",
    "image": "images",
    "ps": "images",
    "prune": "gc",
}


def suggestion(name: str) -> str:
    """`did you mean` for an unknown command: its synonym here, else the closest command."""
    import difflib

    close = SYNONYMS.get(name) or next(
        iter(difflib.get_close_matches(name, list(COMMAND_MODULES), n=1, cutoff=0.6)), None
    )
    return f" Did you mean 'ocibuild {close}'?" if close else ""


class LazyGroup(click.Group):
    """Imports a command's module only when that command runs (or help lists it): starting
    `ocibuild push` does not pay for the builder, nor `ocibuild recipe` for the registry client."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = COMMAND_MODULES.get(cmd_name)
        if module_name is None:
            return None
        import importlib

        commands = {c.name: c for c in importlib.import_module(module_name).COMMANDS}
        command = commands.get(cmd_name)
        if command is not None:
            _add_common_options(command)
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            ctx.fail(f"No such command {name!r}.{suggestion(name)}")
        return super().resolve_command(ctx, args)


STORE_HELP = (
    "Local OCI image layout [default: $OCIBUILD_STORE, else "
    "${XDG_DATA_HOME:-~/.local/share}/ocibuild/store]."
)


PROGRESS_HELP = (
    "How progress shows: auto (live on a terminal, else only warnings, or with -v a line per "
    "step), tty (live rows), plain (a line per finished step, no escape codes: logs, CI), "
    "quiet (none) [default: $OCIBUILD_PROGRESS, else auto]."
)


def common_options(after_command: bool = False) -> list[click.Option]:
    """`--store`, `-q`, `-v` and `--progress`: given to the group, and again to each command,
    where they update the state the group made (`ocibuild images --store DIR`)."""

    def update(field: str) -> object:
        def callback(ctx: click.Context, _: click.Parameter, value: Any) -> None:
            if value:
                state = ctx.find_object(CliState)
                assert state is not None  # the group made it
                setattr(state, field, value if field != "verbose" else state.verbose + value)
                state.apply_logging()

        return callback if after_command else None

    extra: dict[str, Any] = {"expose_value": False} if after_command else {}
    return [
        click.Option(
            ["--store", "store_path"],
            type=click.Path(path_type=Path, file_okay=False),
            envvar=None if after_command else "OCIBUILD_STORE",
            help=STORE_HELP,
            callback=update("store_path"),
            **extra,
        ),
        click.Option(
            ["-q", "--quiet"],
            is_flag=True,
            help="No progress or messages: results and errors only.",
            callback=update("quiet"),
            **extra,
        ),
        click.Option(
            ["-v", "--verbose"],
            count=True,
            help="More detail (-vv: debug logging).",
            callback=update("verbose"),
            **extra,
        ),
        click.Option(
            ["--progress"],
            type=click.Choice(PROGRESS_MODES),
            envvar=None if after_command else "OCIBUILD_PROGRESS",
            help=PROGRESS_HELP,
            callback=update("progress"),
            **extra,
        ),
    ]


def _add_common_options(command: click.Command) -> None:
    if not any(p.name == "store_path" for p in command.params):
        command.params += common_options(after_command=True)


@click.group(
    cls=LazyGroup,
    params=common_options(),
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="ocibuild")
@click.pass_context
def cli(
    ctx: click.Context, store_path: Path | None, quiet: bool, verbose: int, progress: str | None
) -> None:
    """ocibuild: build OCI images of HEP software without a daemon, push them, and time them
    on HPC sites.

    \b
      ocibuild recipe recipes/demo.yaml           build every image of a recipe file
      ocibuild images                             what the store holds
      ocibuild tag SRC localhost:5000/hep/demo:1  another name for an image, like docker tag
      ocibuild push localhost:5000/hep/demo:1     push it (a local registry needs no flag)
      ocibuild push                               push what the last build made
      ocibuild export REF -o - | podman load      like docker save
      ocibuild bench --target cori ...            the per-event timing study

    `ocibuild COMMAND --help` for each; docs/commands.md in the repository for all.
    """
    state = CliState(
        store_path=store_path, quiet=quiet, verbose=verbose, progress=progress or "auto"
    )
    ctx.obj = state
    ctx.call_on_close(state.close)
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    state.apply_logging()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 ok, 1 error, 2 usage, 130 interrupted, 143
    terminated by SIGTERM)."""
    reuse_big_buffers()
    previous = _on_sigterm(_terminate)
    try:
        return _run(argv)
    finally:
        decoders.stop_all()  # no decoder thread may outlive the interpreter (an abort)
        _on_sigterm(previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, `timeout`): handled as Ctrl-C is, so that every temporary file goes."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _on_sigterm(handler: Any) -> Any:
    """Install `handler` for SIGTERM (the main thread only can); the one it replaces."""
    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)


def _interrupted(e: BaseException | None) -> int:
    terminated = isinstance(e, Terminated)
    click.echo("terminated" if terminated else "interrupted", err=True)
    return 143 if terminated else 130


def _run(argv: Sequence[str] | None) -> int:
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="ocibuild",
            standalone_mode=False,
        )
    except OcibuildError as e:
        click.echo(f"error: {redact(str(e))}", err=True)
        return e.exit_code
    except click.exceptions.Abort as e:
        if isinstance(e.__context__, KeyboardInterrupt):
            return _interrupted(e.__context__)
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as e:
        e.message = redact(e.message)
        e.show()
        return e.exit_code
    except KeyboardInterrupt as e:
        return _interrupted(e)
    except BrokenPipeError:
        return 1
    except OSError as e:  # the machine's answer to a path or device: no traceback for it
        where = f"{e.filename}: " if e.filename else ""
        click.echo(f"error: {redact(where + (e.strerror or str(e)))}", err=True)
        return 1
    return result if isinstance(result, int) else 0
