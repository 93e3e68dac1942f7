"""The shell `setup` runs in, as its table lines change it: the environment, the commands whose
output sh would substitute, the environment the current `setup` command started in; values and
conditions evaluated as sh would (shell.py), against what the database tells of its files."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from ocibuild.limits import ENV_VALUE, LimitError
from ocibuild.ups.shell import Exists, condition, quoted_value, unquoted_value


@dataclass
class ShellState:
    env: dict[str, str]
    commands: dict[str, str]  # command -> its output, for `...` and $(...)
    exists: Exists
    initial: dict[str, str] = field(default_factory=dict)  # as the current setup command began

    def begin_command(self) -> None:
        self.initial = dict(self.env)

    def quoted(self, text: str) -> str:
        """What sh makes of `"text"`."""
        return quoted_value(text, self.env, self.commands)

    def unquoted(self, text: str) -> str:
        return unquoted_value(text, self.env, self.commands)

    def holds(self, text: str) -> bool:
        """Whether the sh condition `text` holds here."""
        return condition(text, self.env, self.commands, self.exists)

    def test_file(self, path: str, flag: str) -> bool:
        """`test FLAG PATH`, PATH taken as is."""
        return condition(f"test {flag} {shlex.quote(path)}", {}, {}, self.exists)

    def check_lengths(self, text: str, where: str) -> None:
        """A table doubling a value line after line would fill the memory: refuse past the
        limit, naming the line."""
        limit = ENV_VALUE.value
        for name, value in self.env.items():
            if len(value) > limit:
                raise LimitError(
                    f"{text}: {name} is {len(value)} characters, over the limit {limit} "
                    f"(set {ENV_VALUE.name} to change it)",
                    where,
                )
