"""Running the CLI in the test's own process (`main(argv)`), with its output captured."""

from __future__ import annotations

import pytest

from ocibuild.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """A command that must succeed: its stdout."""
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def fail(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """A command that must fail with status 1, writing nothing to stdout: its stderr."""
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert out == ""
    return err
