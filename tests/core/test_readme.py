"""The README stays true: its quick-start build command, taken from the README itself, builds the
demo in a copy of the repository's tracked files with the network shut off; the quick start and
the examples of docs/commands.md say which store they use; every command is documented."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from ocibuild.cli import cli, main
from ocibuild.store import Store

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
COMMANDS_MD = ROOT / "docs" / "commands.md"
DEMO_REF = "localhost/ocibuild/demo-art_1_18_03_e9-prof:latest"
# commands that read or write the store: in the quick start each must name the demo's store
STORE_COMMANDS = {"recipe", "images", "inspect", "export", "tag", "push", "load", "rmi", "gc"}


def commands_of(group: click.Group) -> dict[str, click.Command]:
    ctx = click.Context(group)
    found = {name: group.get_command(ctx, name) for name in group.list_commands(ctx)}
    return {name: command for name, command in found.items() if command is not None}


def section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + len(heading) + 2)
    return text[start : end if end != -1 else len(text)]


def shell_lines(markdown: str) -> list[str]:
    """The commands of the indented code blocks, continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in markdown.splitlines():
        if not raw.startswith("    "):
            continue
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        lines.append(re.sub(r"\s+#.*$", "", line))
    return lines


def ocibuild_commands(markdown: str) -> list[list[str]]:
    """Each `ocibuild ...` command of the code blocks (also after `&&` or in a pipe), as argv."""
    commands = []
    for line in shell_lines(markdown):
        for part in re.split(r"&&|\|", line):
            argv = shlex.split(part.strip())
            if argv and argv[0] == "ocibuild":
                commands.append(argv)
    return commands


def subcommand(argv: list[str]) -> str:
    """The command name of an ocibuild argv, past the global options."""
    args = iter(argv[1:])
    for arg in args:
        if arg == "--store":
            next(args)
        elif not arg.startswith("-"):
            return arg
    raise AssertionError(f"no command in {argv}")


def copy_of_the_repository(target: Path) -> None:
    """The files git tracks (what a clone gives), else the README and recipes/ (an sdist)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if listed.returncode == 0 and listed.stdout:
        for name in listed.stdout.decode().split("\0"):
            source = ROOT / name
            if not name or (not source.is_symlink() and not source.exists()):
                continue
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name, follow_symlinks=False)
    else:
        shutil.copy2(README, target / "README.md")
        shutil.copytree(ROOT / "recipes", target / "recipes", symlinks=True)


def the_build_command() -> str:
    quick_start = section(README.read_text(), "## Quick start")
    first = shell_lines(quick_start)[0]
    install, _, build = first.partition(" && ")
    assert install == "pip install .", f"the README's first command changed: {first}"
    return build


def test_the_readme_quick_start_builds_the_demo_offline_in_a_copy_of_the_repository(
    tmp_path: Path,
) -> None:
    build = the_build_command()
    argv = shlex.split(build)
    assert argv[0] == "ocibuild" and subcommand(argv) == "recipe", build
    project = tmp_path / "checkout"
    project.mkdir()
    copy_of_the_repository(project)
    home = tmp_path / "home"
    home.mkdir()
    unreachable = "http://127.0.0.1:9"  # the discard port: any download would fail at once
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "HTTP_PROXY": unreachable,
        "HTTPS_PROXY": unreachable,
        "http_proxy": unreachable,
        "https_proxy": unreachable,
        "NO_PROXY": "",
        "no_proxy": "",
    }
    for name in ("OCIBUILD_STORE", "OCIBUILD_CACHE", "OCIBUILD_SCISOFT", "SOURCE_DATE_EPOCH"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "ocibuild", *argv[1:]],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    printed = done.stdout.strip().splitlines()
    assert len(printed) == 1 and printed[0].startswith(DEMO_REF + "@sha256:"), done.stdout

    store = Store.open(project / "store", create=False)  # where the README says it goes
    image = store.image(DEMO_REF)
    assert printed[0] == f"{DEMO_REF}@{image.descriptor.digest}"
    assert image.config.config.cmd == ("/usr/bin/art-setup",)
    setup = image.config.config.env_dict()["SETUP_ART"]
    assert setup.startswith("art v1_18_03 -f Linux64bit+2.6-2.12"), setup
    assert not (home / "data" / "ocibuild").exists(), "the default store was used"


def test_the_quick_start_commands_name_the_demo_store() -> None:
    commands = ocibuild_commands(section(README.read_text(), "## Quick start"))
    assert len(commands) >= 8
    for argv in commands:
        if subcommand(argv) in STORE_COMMANDS:
            assert argv[1:3] == ["--store", "./store"], shlex.join(argv)


def test_the_commands_md_examples_use_the_readme_store() -> None:
    examples = section(COMMANDS_MD.read_text(), "## Examples")
    lines = shell_lines(examples)
    assert lines[0] == "export OCIBUILD_STORE=$PWD/store", lines[0]
    assert not any("--store" in line or ".local/share" in line for line in lines)


def test_every_command_is_in_the_help_and_in_commands_md() -> None:
    documented = COMMANDS_MD.read_text()
    commands = commands_of(cli)
    assert {"recipe", "push", "tag", "copy", "ls", "digest", "load", "export"} <= set(commands)
    for name, command in commands.items():
        assert command.help, name
        assert f"`ocibuild {name}" in documented, f"ocibuild {name} is not in docs/commands.md"
        if isinstance(command, click.Group):
            for sub, subcommand_ in commands_of(command).items():
                assert subcommand_.help, f"{name} {sub}"
                assert f"`{name} {sub}" in documented, f"{name} {sub} is not in docs/commands.md"


def test_the_readme_commands_are_real_commands() -> None:
    commands = commands_of(cli)
    for argv in ocibuild_commands(README.read_text()):
        assert subcommand(argv) in commands, shlex.join(argv)


def test_images_of_an_empty_store_names_the_store_it_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ocibuild images` without the quick start's --store: say which store is empty."""
    store = tmp_path / "default-store"
    assert main(["--store", str(store), "-v", "images"]) == 0
    out, err = capsys.readouterr()
    assert out.split() == ["REFERENCE", "DIGEST", "LAYERS", "SIZE", "CREATED"]
    assert f"no images in the store {store}; --store DIR or $OCIBUILD_STORE names another" in err
    assert not store.exists(), "listing created a store"
    assert main(["--store", str(store), "images", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == ("[]\n", "")  # without a terminal or -v: the result only


def test_a_command_on_a_store_that_does_not_exist_says_how_to_name_another(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "default-store"
    assert main(["--store", str(store), "tag", DEMO_REF, "localhost:5000/hep/demo:1"]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"error: no store at {store}: nothing was built or pulled into it "
        "(--store DIR or $OCIBUILD_STORE names another store)\n"
    )
    assert not store.exists()


def test_inspect_and_images_give_one_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    assert main(["--store", store, "-q", "recipe", str(ROOT / "recipes" / "demo.yaml")]) == 0
    capsys.readouterr()
    assert main(["--store", store, "images", "--format", "json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert main(["--store", store, "inspect", DEMO_REF]) == 0
    inspected = json.loads(capsys.readouterr().out)
    layers = sum(layer["size"] for layer in inspected["manifest"]["layers"])
    assert inspected["size"] == listed["size"] == layers + inspected["manifest"]["config"]["size"]
