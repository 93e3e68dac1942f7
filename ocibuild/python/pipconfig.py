"""The indexes the user's pip is configured with, read as pip reads them: the configuration
files (global, user, site; `PIP_CONFIG_FILE` last, or none at all when it is `/dev/null`),
sections `[global]` then `[install]`, then the `PIP_*` environment variables over them.
Only where to find packages is read: `index-url`, `extra-index-url`, `find-links`, `no-index`.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ocibuild.errors import SourceError

KEYS = ("index-url", "extra-index-url", "find-links", "no-index")
SECTIONS = ("global", "install")


@dataclass(frozen=True)
class PipIndexes:
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False


def config_files(env: Mapping[str, str]) -> list[Path]:
    """pip's configuration files, in the order they are read (a later one wins)."""
    explicit = env.get("PIP_CONFIG_FILE")
    if explicit == os.devnull:
        return []
    dirs = env.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
    files = [Path(d) / "pip" / "pip.conf" for d in dirs if d]
    files.append(Path("/etc/pip.conf"))
    home = Path(env.get("HOME", str(Path.home())))
    user_config = Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "pip" / "pip.conf"
    if not (explicit and Path(explicit).exists()):
        files += [home / ".pip" / "pip.conf", user_config]
    if venv := env.get("VIRTUAL_ENV"):
        files.append(Path(venv) / "pip.conf")
    if explicit:
        files.append(Path(explicit))
    return files


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "yes", "true", "on")


def read_pip_indexes(env: Mapping[str, str] | None = None) -> PipIndexes:
    """What pip would use for `pip install`, from its files and environment."""
    env = os.environ if env is None else env
    values: dict[str, str] = {}
    for path in config_files(env):
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError) as e:
            raise SourceError(f"{path}: not a readable pip configuration ({e})") from None
        for section in SECTIONS:
            if parser.has_section(section):
                for key in KEYS:
                    if parser.has_option(section, key):
                        values[key] = parser.get(section, key)
                    elif parser.has_option(section, key.replace("-", "_")):
                        values[key] = parser.get(section, key.replace("-", "_"))
    for key in KEYS:
        name = "PIP_" + key.upper().replace("-", "_")
        if name in env:
            values[key] = env[name]
    return PipIndexes(
        index_url=values.get("index-url", "").strip() or None,
        extra_index_urls=tuple(values.get("extra-index-url", "").split()),
        find_links=tuple(values.get("find-links", "").split()),
        no_index=_truthy(values.get("no-index", "")),
    )
