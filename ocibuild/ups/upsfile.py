"""The reader of UPS files (`.version`, `.chain`, `.table`, `.upsfiles/dbconfig`), with the real
ups v6_0_8's rules (upsfil.c `read_file` and the functions it calls, upskey.c's keys):

    FILE = version          a line is `KEY = value` split at the first `=`; the key ends at the
    PRODUCT = art           first blank or `=`; a line without `=` is a key with no value;
    VERSION = v1_18_03      keys are case-insensitive, a value loses one pair of quotes; lines
                            whose first non-blank character is `#` are skipped
    FLAVOR = Linux64bit+... each FLAVOR starts an instance, which takes the keys that follow
    QUALIFIERS = "e9:prof"  until the next FLAVOR, GROUP:, COMMON:, END: or FILE
      PROD_DIR = art/v1_18_03
      ACTION = setup        an action takes the lines that follow until a known key
        setupEnv()

Lines before the first FILE/FLAVOR/GROUP:/COMMON: are skipped; when that first one is not FILE
the file reads as nothing ("Unknown file type"). A key ups does not know, outside an action, is
reported (`INFORMATIONAL: Unexpected key word`) and skipped. GROUP: ... COMMON: ... END: gives
the group's instances the Common block's keys and actions (its actions after their own); a
COMMON: outside a group is skipped key by key. The values of PROD_DIR, UPS_DIR, TABLE_DIR (and
the other keys upskey.c marks) have `${VAR}` and `~` expanded when read (`translate`).

Bytes are read as `fgets` reads them: lines of at most 1023 bytes, each ending at its first NUL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ocibuild.ups.upserrors import UpsErrors

LINE_MAX = 1023  # fgets(g_line, MAX_LINE_LEN = 1024, ...)
_BLANKS = " \t\n\r\f"  # upsfil.c WCHARS
_STOPS = ("FLAVOR", "GROUP:", "COMMON:", "FILE", "END:")
_STARTS = ("FLAVOR", "GROUP:", "COMMON:", "FILE")
KINDS = ("VERSION", "TABLE", "CHAIN", "DBCONFIG")

# upskey.c g_key_info: which keys a file header, an instance and a dbconfig keep, and which
# values are translated when read (flag 0x00010000)
_HEADER = {"FILE", "PRODUCT", "VERSION", "CHAIN", "UPS_DB_VERSION", "DESCRIPTION"}
_INSTANCE = {
    "PRODUCT", "VERSION", "FLAVOR", "QUALIFIERS", "CHAIN", "DECLARER", "DECLARED", "MODIFIER",
    "MODIFIED", "ORIGIN", "PROD_DIR", "UPS_DIR", "TABLE_DIR", "TABLE_FILE", "ARCHIVE_FILE",
    "AUTHORIZED_NODES", "DESCRIPTION", "STATISTICS", "COMPILE_DIR", "COMPILE_FILE",
    "CATMAN_SOURCE_DIR", "HTML_SOURCE_DIR", "INFO_SOURCE_DIR", "MAN_SOURCE_DIR",
    "NEWS_SOURCE_DIR", "DB_DIR",
}  # fmt: skip
_CONFIG = {
    "UPS_DB_VERSION", "AUTHORIZED_NODES", "STATISTICS", "PROD_DIR_PREFIX", "MAN_TARGET_DIR",
    "CATMAN_TARGET_DIR", "INFO_TARGET_DIR", "HTML_TARGET_DIR", "NEWS_TARGET_DIR",
    "UPD_USERCODE_DIR", "SETUPS_DIR", "VERSION_SUBDIR", "STRICT_DEPS",
}  # fmt: skip
_TRANSLATED = {
    "PROD_DIR", "UPS_DIR", "TABLE_DIR", "ARCHIVE_FILE", "COMPILE_DIR", "DB_DIR",
    *(_CONFIG - {"UPS_DB_VERSION", "AUTHORIZED_NODES", "STATISTICS"}),
}  # fmt: skip
KNOWN_KEYS = _HEADER | _INSTANCE | _CONFIG | {"ACTION", "USER", "GROUP:", "COMMON:", "END:"}
_USER = "USER"  # `_name = value` lines, and the USER key
_UNKNOWN = "?"
_EOF = ""

# what `${VAR}` expansion of a value gives: the new value, or None for "no translation"
Translate = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Action:
    name: str  # as written
    lines: tuple[tuple[int, str], ...]  # (line number, text) of each of its lines


@dataclass
class UpsInstance:
    """One instance of a file: its keys (upper case), `_name` keys and actions."""

    source: str  # the file it was read from
    keys: dict[str, str] = field(default_factory=dict)
    user: list[tuple[str, str]] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    entry: str = ""  # the entry of a `.version`/`.chain` directory that declared it

    def get(self, key: str) -> str | None:
        return self.keys.get(key)

    @property
    def flavor(self) -> str:
        return self.keys.get("FLAVOR", "")

    @property
    def qualifiers(self) -> str:
        return self.keys.get("QUALIFIERS", "")

    def action(self, name: str) -> Action | None:
        """The first action of that name (upskey.c upskey_inst_getaction)."""
        return next((a for a in self.actions if a.name.lower() == name.lower()), None)

    def user_value(self, name: str) -> str | None:
        """`${_name}`: the first user key of that name, case-insensitive."""
        return next((v for k, v in self.user if k.lower() == name.lower()), None)


@dataclass
class UpsFile:
    """What one read of a file (or of a `.version`/`.chain` directory) gave."""

    path: str
    kind: str = ""  # VERSION, TABLE, CHAIN, DBCONFIG, or "" when FILE names none of them
    header: dict[str, str] = field(default_factory=dict)
    instances: list[UpsInstance] = field(default_factory=list)
    config: dict[str, str] = field(default_factory=dict)


def trim_qualifiers(value: str) -> str:
    """upsfil.c trim_qualifiers: blanks and quotes removed, the parts sorted: `prof:e19` ->
    `e19:prof`."""
    cleaned = "".join(c for c in value if c not in " \t\n\r\f\"'")
    return ":".join(sorted(p for p in cleaned.split(":") if p))


def remove_end_quotes(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def fgets_lines(data: bytes) -> Iterator[str]:
    """The lines `fgets` gives C code: at most 1023 bytes each, cut at a NUL; bytes that are
    not UTF-8 kept as surrogates (see `printable`)."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    for raw in lines:
        for start in range(0, max(len(raw), 1), LINE_MAX):
            chunk = raw[start : start + LINE_MAX].split(b"\0", 1)[0]
            yield chunk.decode("utf-8", "surrogateescape")


def printable(text: str) -> str:
    """A text read from a file as a message shows it: bytes that are not UTF-8 as \\xNN."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class FileParser:
    """One read: a file, or every entry of a `.version`/`.chain` directory into one result
    (upsfil.c keeps its line count and current key from one entry to the next)."""

    def __init__(self, path: str, translate: Translate, errors: UpsErrors) -> None:
        self.result = UpsFile(path)
        self.translate = translate
        self.errors = errors
        self.line_count = 0
        self.ikey = _EOF
        self.key = ""
        self.value = ""
        self.line = ""
        self._lines: Iterator[str] = iter(())
        self._entry = ""

    def read(self, data: bytes, entry: str = "") -> bool:
        """upsfil.c read_file: whether the data gave instances (or a dbconfig)."""
        self._lines = fgets_lines(data)
        self._entry = entry
        self._read_comments()
        if not self._read_file_type():
            return False
        if self.result.kind == "DBCONFIG":
            self._read_config()
            return True
        self._read_file_desc()
        found = False
        while self.ikey != _EOF:
            if self.ikey == "FLAVOR":
                found |= bool(self._read_instances())
            elif self.ikey == "GROUP:":
                found |= bool(self._read_groups())
            else:
                self._next_key(False)
        return found

    # -- lines and keys -------------------------------------------------------------------------

    def _read_comments(self) -> None:
        for raw in self._lines:
            self.line_count += 1
            line = raw.strip(_BLANKS)
            if not line or line.startswith("#"):
                continue
            self.line, self.value = line, ""
            self._get_key()
            return
        self.ikey = _EOF

    def _next_key(self, in_action: bool) -> str:
        """The next line's key; outside an action an unknown key is reported and skipped."""
        self.key = self.value = self.line = ""
        self.ikey = _EOF
        for raw in self._lines:
            self.line_count += 1
            if not raw or raw[0] == "#":
                continue
            self.line = raw.strip(_BLANKS)
            if not self.line or not self._get_key():
                continue
            if self.ikey in _TRANSLATED and self.value:
                translated = self.translate(self.value)
                if translated is not None:
                    self.value = translated
            if self.ikey == _UNKNOWN and not in_action:
                self.errors.add(
                    "UNEXPECTED_KEYWORD",
                    "INFORMATIONAL",
                    f"Unexpected key word '{printable(self.key)}' in "
                    f"'{self.result.path}', line {self.line_count}",
                )
                continue
            return self.ikey
        self.key = self.value = self.line = ""
        self.ikey = _EOF
        return _EOF

    def _get_key(self) -> bool:
        """upsfil.c get_key on `self.line`; False for a line that holds no key."""
        line = self.line
        if not line or line.startswith("#"):
            return False
        if "=" not in line:
            self.key = line
        else:
            end = 0
            while end < len(line) and line[end] not in " \t\n\r\f=":
                end += 1
            if end == 0:
                return False
            self.key = line[:end]
            value = line[line.index("=", end) + 1 :].lstrip(" \t\n\r\f\v")
            self.value = remove_end_quotes(value)
        upper = self.key.upper()
        if upper in KNOWN_KEYS:
            self.ikey = upper
        else:
            self.ikey = _USER if line.startswith("_") else _UNKNOWN
        return True

    def _find_start_key(self) -> None:
        while self.ikey not in _STARTS and self.ikey != _EOF:
            self._next_key(False)

    def _stopped(self) -> bool:
        return self.ikey in _STOPS or self.ikey == _EOF

    # -- the file's parts ----------------------------------------------------------------------

    def _read_file_type(self) -> bool:
        self._find_start_key()
        where = f"{self.result.path}/{self._entry}" if self._entry else self.result.path
        if self.ikey != "FILE":
            self.errors.add("UNKNOWN_FILETYPE", "WARNING", 'Unknown file type "(null)"', where)
            return False
        self.result.header["FILE"] = self.value
        kind = self.value.upper()
        self.result.kind = kind if kind in KINDS else ""
        if not self.result.kind:
            self.errors.add(
                "UNKNOWN_FILETYPE", "WARNING", f'Unknown file type "{self.value}"', where
            )
        return True

    def _read_config(self) -> None:
        while self._next_key(False) != _EOF:
            if self.ikey in _CONFIG:
                value = trim_qualifiers(self.value) if self.ikey == "STATISTICS" else self.value
                self.result.config[self.ikey] = value

    def _read_file_desc(self) -> None:
        self._next_key(False)
        while not self._stopped():
            if self.ikey in _HEADER:
                self.result.header[self.ikey] = self.value
            self._next_key(False)

    def _read_instances(self) -> list[UpsInstance]:
        instances = []
        while self.ikey == "FLAVOR":
            instances.append(self._read_instance())
        self.result.instances.extend(instances)
        return instances

    def _read_instance(self) -> UpsInstance:
        header = self.result.header
        instance = UpsInstance(self.result.path, entry=self._entry)
        if "PRODUCT" in header:
            instance.keys["PRODUCT"] = header["PRODUCT"]
        inherited = "CHAIN" if self.result.kind == "CHAIN" else "VERSION"
        if inherited in header:
            instance.keys[inherited] = header[inherited]
        instance.keys["FLAVOR"] = self.value
        self._next_key(False)
        self._read_keys(instance, common=False)
        instance.keys.setdefault("QUALIFIERS", "")
        return instance

    def _read_keys(self, instance: UpsInstance, common: bool) -> None:
        """The keys of an instance (or of a Common block) up to the next stop key."""
        while not self._stopped():
            if self.ikey == "ACTION":
                instance.actions.extend(self._read_actions())
                continue
            if self.ikey == "QUALIFIERS":
                if not common:
                    instance.keys["QUALIFIERS"] = trim_qualifiers(self.value)
            elif self.ikey == _USER:
                instance.user.append((self.key, self.value))
            elif self.ikey in _INSTANCE:
                instance.keys[self.ikey] = self.value
            self._next_key(False)

    def _read_actions(self) -> list[Action]:
        actions = []
        while self.ikey == "ACTION":
            name = self.value
            lines: list[tuple[int, str]] = []
            self._next_key(True)
            while not self._stopped() and self.ikey == _UNKNOWN:
                lines.append((self.line_count, self.line))
                self._next_key(True)
            actions.append(Action(name, tuple(lines)))
        return actions

    def _read_groups(self) -> list[UpsInstance]:
        instances: list[UpsInstance] = []
        while self.ikey == "GROUP:":
            instances += self._read_group()
        return instances

    def _read_group(self) -> list[UpsInstance]:
        self._next_key(False)
        self._find_start_key()
        if self.ikey != "FLAVOR":
            return []
        instances = self._read_instances()
        if self.ikey == "COMMON:":
            common = UpsInstance(self.result.path)
            self._next_key(False)
            self._read_keys(common, common=True)
            for instance in instances:
                add_common(instance, common)
        if self.ikey == "END:":
            self._next_key(False)
        self._find_start_key()
        return instances


def add_common(instance: UpsInstance, common: UpsInstance) -> None:
    """upsfil.c add_to_instance: the Common block's keys replace the instance's, its user
    keys replace the instance's list, its actions come after the instance's own."""
    instance.keys.update(common.keys)
    if common.user:
        instance.user = list(common.user)
    instance.actions.extend(common.actions)
