"""Reading `.version`, `.chain` and `.table` files in the forms scisoft's products use, and
in the forms real databases hold that are not clean (upsfile.py: upsfil.c's rules); calls."""

from __future__ import annotations

from ocibuild.ups.table import parse_call, split_args
from ocibuild.ups.upserrors import UpsErrors
from ocibuild.ups.upsfile import FileParser, UpsFile, UpsInstance, fgets_lines, printable


def read(text: str | bytes, path: str = "t") -> tuple[UpsFile | None, list[str]]:
    """The file as ups reads it (None: it reads as nothing), and ups's messages."""
    errors = UpsErrors()
    parser = FileParser(path, lambda value: None, errors)
    ok = parser.read(text.encode() if isinstance(text, str) else text)
    return (parser.result if ok else None), errors.messages


def keys(instance: UpsInstance, *names: str) -> tuple[str | None, ...]:
    return tuple(instance.get(n) for n in names)


def lines(instance: UpsInstance, action: str) -> list[str]:
    found = instance.action(action)
    return [text for _, text in found.lines] if found else []


VERSION = """\
FILE = version
PRODUCT = larcore
VERSION = v04_31_00

#*************************************************
#
FLAVOR = Linux64bit+2.6-2.12
QUALIFIERS = "e9:prof"
  DECLARER = products
  DECLARED = 2015-12-01 18.13.03 GMT
  PROD_DIR = larcore/v04_31_00
  UPS_DIR = ups
  TABLE_FILE = larcore.table

FLAVOR = Linux64bit+2.6-2.12
QUALIFIERS = "e9:debug"
  PROD_DIR = larcore/v04_31_00
  UPS_DIR = ups
  TABLE_FILE = larcore.table
"""


def test_version_file_instances() -> None:
    read_file, messages = read(VERSION, "/products/larcore/v04_31_00.version")
    assert read_file is not None and messages == []
    assert read_file.kind == "VERSION"
    prof, debug = read_file.instances
    names = ("PRODUCT", "VERSION", "FLAVOR", "QUALIFIERS", "PROD_DIR", "UPS_DIR", "TABLE_FILE")
    assert keys(prof, *names) == (
        "larcore", "v04_31_00", "Linux64bit+2.6-2.12", "e9:prof", "larcore/v04_31_00", "ups",
        "larcore.table",
    )  # fmt: skip
    assert debug.qualifiers == "debug:e9"  # read sorted
    assert prof.source == "/products/larcore/v04_31_00.version"


def test_chain_file() -> None:
    text = 'FILE = chain\nPRODUCT = ups\nCHAIN = current\n\nFLAVOR = NULL\nVERSION = v5_1_4\nQUALIFIERS = ""\n'
    read_file, _ = read(text)
    assert read_file is not None
    (instance,) = read_file.instances
    assert keys(instance, "PRODUCT", "VERSION", "CHAIN", "FLAVOR") == (
        "ups",
        "v5_1_4",
        "current",
        "NULL",
    )


def test_files_real_databases_hold_read_as_the_real_ups_reads_them() -> None:
    """What used to refuse a whole database (tests/ups/realups/README.md rule 2)."""
    other, messages = read("FILE = version\nPRODUCT = someother\nVERSION = v9\nFLAVOR = NULL\n")
    assert other is not None and other.instances[0].get("PRODUCT") == "someother"
    no_product, _ = read("FILE = version\nVERSION = v1\nFLAVOR = NULL\n")
    assert no_product is not None and no_product.instances[0].get("PRODUCT") is None
    no_version, _ = read("FILE = version\nPRODUCT = x\nFLAVOR = NULL\n")
    assert no_version is not None and no_version.instances[0].get("VERSION") is None
    keywords, messages = read(
        "FILE = version\nPRODUCT = x\nSTATISTICS\n*\nFLAVOR = NULL\n  STATISTICS\n  *\n"
    )
    assert keywords is not None and keywords.instances[0].get("STATISTICS") == ""
    assert messages == [
        "INFORMATIONAL: Unexpected key word '*' in 't', line 4",
        "INFORMATIONAL: Unexpected key word '*' in 't', line 7",
    ]
    groups, _ = read(
        "FILE = version\nPRODUCT = x\nGROUP:\nFLAVOR = NULL\nQUALIFIERS = a\n"
        "FLAVOR = NULL\nQUALIFIERS = b\nCOMMON:\n  VERSION = v2\nEND:\n"
    )
    assert groups is not None and [i.get("VERSION") for i in groups.instances] == ["v2", "v2"]


def test_files_that_read_as_nothing() -> None:
    assert read("") == (None, ['WARNING: Unknown file type "(null)"'])
    assert read("PRODUCT = x\nFLAVOR = NULL\n")[0] is None  # no FILE line
    assert read("FILE = version\nPRODUCT = x\n")[0] is None  # no instance
    garbage, messages = read("<<<<<<< HEAD\nFILE = version\n")
    assert garbage is None  # the FILE key is read after the first line only if it is a key
    binary, messages = read(b"\x7fELF\x02\x01\x00\x00\n/Ty\x9e\rx\n")
    assert binary is None
    assert messages[0] == "INFORMATIONAL: Unexpected key word '/Ty\\x9e\rx' in 't', line 2"


def test_lines_as_fgets_gives_them() -> None:
    assert list(fgets_lines(b"a\r\nb\x00c\n\nd")) == ["a\r", "b", "", "d"]
    assert [len(x) for x in fgets_lines(b"x" * 2500 + b"\n")] == [1023, 1023, 454]
    assert printable("a\udcff") == "a\\xff"


# A table in the form cetbuildtools wrote for scisoft's products: a Group of per-qualifier
# instances with their own actions, Common actions for all of them.
GROUP_TABLE = """\
File=Table
Product=larcore

#*************************************************
# Starting Group definition
Group:

Flavor=ANY
Qualifiers=e9:prof
  _fqbits = e9-prof

  Action=DefineFQ
    envSet (LARCORE_FQ_DIR, ${UPS_PROD_DIR}/${UPS_PROD_FLAVOR}-${_fqbits})

  Action = ExtraSetup
    setupRequired( art v1_17_05 -q +e9:+prof )

Flavor=ANY
Qualifiers="e9:debug"

  Action=DefineFQ
    envSet (LARCORE_FQ_DIR, ${UPS_PROD_DIR}/${UPS_PROD_FLAVOR}-e9-debug)

Common:
   Action=setup
      setupenv()
      proddir()
      ExeActionRequired(DefineFQ)
      if ( test `uname` = "Darwin" )
        envPrepend(DYLD_LIBRARY_PATH, ${LARCORE_FQ_DIR}/lib)
      else()
        envPrepend(LD_LIBRARY_PATH, ${LARCORE_FQ_DIR}/lib)
      endif ( test `uname` = "Darwin" )
      exeActionRequired(ExtraSetup)
End:
# End Group definition
#*************************************************
"""


def test_group_table() -> None:
    table, messages = read(GROUP_TABLE, "/products/larcore/v04_31_00/ups/larcore.table")
    assert table is not None and messages == []
    assert table.header["PRODUCT"] == "larcore"
    prof, debug = table.instances
    assert (prof.flavor, prof.qualifiers, debug.qualifiers) == ("ANY", "e9:prof", "debug:e9")
    assert prof.user == [("_fqbits", "e9-prof")]
    assert [a.name for a in prof.actions] == ["DefineFQ", "ExtraSetup", "setup"]
    assert [a.name for a in debug.actions] == ["DefineFQ", "setup"]
    setup = prof.action("SETUP")
    assert setup is not None
    assert setup.lines[3] == (29, 'if ( test `uname` = "Darwin" )')
    assert [parse_call(text)[0] for _, text in setup.lines] == [  # type: ignore[index]
        "setupenv",
        "proddir",
        "exeactionrequired",
        "if",
        "envprepend",
        "else",
        "envprepend",
        "endif",
        "exeactionrequired",
    ]
    assert parse_call(lines(prof, "definefq")[0]) == (
        "envset",
        ["LARCORE_FQ_DIR", "${UPS_PROD_DIR}/${UPS_PROD_FLAVOR}-${_fqbits}"],
    )
    assert lines(prof, "extrasetup") == ["setupRequired( art v1_17_05 -q +e9:+prof )"]


# The older form: instances without a Group, keywords in capitals.
FLAT_TABLE = """\
FILE=TABLE
PRODUCT=cigetcert
VERSION=v1_16_1
#---------------------
FLAVOR = NULL
QUALIFIERS = ""

ACTION=SETUP
    setupEnv()
    pathPrepend(PATH, ${UPS_PROD_DIR}/bin, :)
    pathPrepend(MANPATH, `cd ${UPS_PROD_DIR};pwd`/man)
ACTION=BUILD
    Execute(cd ${UPS_PROD_DIR} && ups/build, NO_UPS_ENV)
"""


def test_flat_table() -> None:
    table, _ = read(FLAT_TABLE)
    assert table is not None
    (instance,) = table.instances
    assert (instance.flavor, instance.qualifiers) == ("NULL", "")
    assert [a.name for a in instance.actions] == ["SETUP", "BUILD"]
    assert parse_call(lines(instance, "setup")[1]) == (
        "pathprepend",
        ["PATH", "${UPS_PROD_DIR}/bin", ":"],
    )
    assert parse_call(lines(instance, "build")[0]) == (
        "execute",
        ["cd ${UPS_PROD_DIR} && ups/build", "NO_UPS_ENV"],
    )


def test_keys_out_of_place_are_skipped_as_ups_skips_them() -> None:
    """A Common: outside a Group: is skipped key by key (its action lines reported), as are a
    Qualifiers= or an Action= before any Flavor=: the real ups reads the rest."""
    table, messages = read(
        'File=Table\nProduct=x\nQualifiers=e9\nAction=setup\n  envSet(A, 1)\nFlavor=ANY\nQualifiers=""\n'
        "Action=setup\n  envSet(B, 1)\nCommon:\n  Action=setup\n    envSet(C, 1)\nEnd:\n"
    )
    assert table is not None
    (instance,) = table.instances
    assert lines(instance, "setup") == ["envSet(B, 1)"]
    assert messages == [
        "INFORMATIONAL: Unexpected key word 'envSet(A, 1)' in 't', line 5",
        "INFORMATIONAL: Unexpected key word 'envSet(C, 1)' in 't', line 12",
    ]


def test_split_args_as_ups_does() -> None:
    """Commas split outside double quotes only; one pair of quotes goes from each argument."""
    assert split_args("") == []
    assert split_args(" PATH , ${X}/bin ") == ["PATH", "${X}/bin"]
    assert split_args('ARCH,"$CXXFLAGS -O2, -g"') == ["ARCH", "$CXXFLAGS -O2, -g"]
    assert split_args("X, 'a b'") == ["X", "a b"]
    assert split_args("sh -c 'a, b'") == ["sh -c 'a", "b'"]  # single quotes do not protect
    assert split_args("X, `f(a, b)`") == ["X", "`f(a", "b)`"]
    assert split_args('X, a"b, c"d') == ["X", 'a"b, c"d']
    assert split_args('X, "unclosed, quote') == ["X", "unclosed, quote"]
    assert split_args("X, y,") == ["X", "y", ""]


def test_calls_as_ups_reads_them() -> None:
    """Names case-insensitive, blanks before `(`, `)` `;` and blanks trimmed at both ends."""
    assert parse_call("ENVSET (X, 1)") == ("envset", ["X", "1"])
    assert parse_call("  pathPrepend\t( PATH, /a/bin, : );") == (
        "pathprepend",
        ["PATH", "/a/bin", ":"],
    )
    assert parse_call("envSet(X, $(pwd))") == ("envset", ["X", "$(pwd"])  # UPS eats the `)`
    assert parse_call("setupRequired( boost v1_57_0 -q +e9:+prof )") == (
        "setuprequired",
        ["boost v1_57_0 -q +e9:+prof"],
    )
    assert parse_call("prodDir()") == ("proddir", [])
    assert parse_call("frobnicate(X)") is None
    assert parse_call("envSet X") is None
    # text after the closing parenthesis is part of the last argument, as in UPS
    assert parse_call("envSet(X, 1) # one") == ("envset", ["X", "1) # one"])


CASES_TABLE = """\
file = table
product = Cases
  # a comment before anything
flavor = any
QUALIFIERS = "e19:prof"
_qualbits = e19-prof
ACTION = SETUP
   # a comment inside the action
 SetupEnv ()
 envset( CASES_Q, ${_qualbits} )
DESCRIPTION = ends the action
 envSet(NOT_IN_ANY_ACTION, 1)
action=Other
 EXEACTIONREQUIRED(setup)
 frobnicate(X)
"""


def test_keywords_comments_and_user_variables() -> None:
    table, messages = read(CASES_TABLE)
    assert table is not None
    assert table.header["PRODUCT"] == "Cases"
    (instance,) = table.instances
    assert (instance.flavor, instance.qualifiers) == ("any", "e19:prof")
    assert instance.user == [("_qualbits", "e19-prof")]
    setup = instance.action("setup")
    assert setup is not None and setup.lines == (
        (9, "SetupEnv ()"),
        (10, "envset( CASES_Q, ${_qualbits} )"),
    )
    assert lines(instance, "other") == ["EXEACTIONREQUIRED(setup)", "frobnicate(X)"]
    assert messages == [
        "INFORMATIONAL: Unexpected key word 'envSet(NOT_IN_ANY_ACTION, 1)' in 't', line 12"
    ]


COMMON_TABLE = """\
File=Table
Product=c
Group:
Flavor=ANY
Qualifiers=e19
  _own = instance
  Action=setup
    envSet(OWN, 1)
Flavor=ANY
Qualifiers=e20
  _own = instance
Common:
  _shared = common
  Action=setup
    envSet(COMMON, 1)
End:
"""


def test_common_adds_actions_the_instance_lacks_and_replaces_its_variables() -> None:
    """upsfil.c add_to_instance: Common's actions are appended (UPS uses the first action of
    a name), Common's user keys replace the instance's."""
    table, _ = read(COMMON_TABLE)
    assert table is not None
    e19, e20 = table.instances
    assert lines(e19, "setup") == ["envSet(OWN, 1)"]
    assert lines(e20, "setup") == ["envSet(COMMON, 1)"]
    assert e19.user == e20.user == [("_shared", "common")]
