"""Parsing `.version`, `.chain` and `.table` files in the forms scisoft's products use."""

from __future__ import annotations

import pytest

from ocibuild.errors import SourceError
from ocibuild.ups.declaration import Instance, parse_declaration
from ocibuild.ups.table import Command, parse_call, parse_table, split_args

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
    instances = parse_declaration(VERSION, "/products/larcore/v04_31_00.version/x")
    assert instances == [
        Instance(
            "larcore",
            "v04_31_00",
            "Linux64bit+2.6-2.12",
            "e9:prof",
            "larcore/v04_31_00",
            "ups",
            "larcore.table",
            source="/products/larcore/v04_31_00.version/x",
        ),
        Instance(
            "larcore",
            "v04_31_00",
            "Linux64bit+2.6-2.12",
            "e9:debug",
            "larcore/v04_31_00",
            "ups",
            "larcore.table",
            source="/products/larcore/v04_31_00.version/x",
        ),
    ]


def test_chain_file() -> None:
    text = 'FILE = chain\nPRODUCT = ups\nCHAIN = current\n\nFLAVOR = NULL\nVERSION = v5_1_4\nQUALIFIERS = ""\n'
    (instance,) = parse_declaration(text, "c")
    assert (instance.product, instance.version, instance.flavor) == ("ups", "v5_1_4", "NULL")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FILE = table\nPRODUCT = x\n", "not a UPS version or chain file"),
        ("FILE = version\nVERSION = v1\nFLAVOR = NULL\n", "no PRODUCT"),
        ("FILE = version\nPRODUCT = x\nFLAVOR = NULL\n", "has no VERSION"),
        ("FILE = version\nPRODUCT x\n", r"f:2: expected KEY = value"),
    ],
)
def test_bad_declaration(text: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        parse_declaration(text, "f")


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
    table = parse_table(GROUP_TABLE, "/products/larcore/v04_31_00/ups/larcore.table")
    assert table.product == "larcore"
    prof, debug = table.instances
    assert (prof.flavor, prof.qualifiers, debug.qualifiers) == ("ANY", "e9:prof", "e9:debug")
    assert prof.variables == {"_fqbits": "e9-prof"}
    assert list(prof.actions) == ["definefq", "extrasetup", "setup"]
    assert list(debug.actions) == ["definefq", "setup"]
    setup = prof.actions["setup"]
    assert [c.name for c in setup] == [
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
    assert setup[3] == Command("if", 'if ( test `uname` = "Darwin" )', 29)
    assert setup[3].args == ('test `uname` = "Darwin"',)
    assert prof.actions["definefq"][0].args == (
        "LARCORE_FQ_DIR",
        "${UPS_PROD_DIR}/${UPS_PROD_FLAVOR}-${_fqbits}",
    )
    assert prof.actions["extrasetup"][0].args == ("art v1_17_05 -q +e9:+prof",)


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
    (instance,) = parse_table(FLAT_TABLE, "t").instances
    assert (instance.flavor, instance.qualifiers) == ("NULL", "")
    assert set(instance.actions) == {"setup", "build"}
    assert instance.actions["setup"][1].args == ("PATH", "${UPS_PROD_DIR}/bin", ":")
    assert instance.actions["build"][0].args == ("cd ${UPS_PROD_DIR} && ups/build", "NO_UPS_ENV")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("File=Table\nProduct=x\nCommon:\n", "t:3: Common: outside a Group:"),
        ("File=Table\nQualifiers=e9\n", "t:2: Qualifiers= before any Flavor="),
        ("File=Table\nAction=setup\n", "t:2: Action=setup before any Flavor="),
    ],
)
def test_bad_table(text: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        parse_table(text, "t")


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
    table = parse_table(CASES_TABLE, "t")
    assert table.product == "Cases"
    (instance,) = table.instances
    assert (instance.flavor, instance.qualifiers) == ("any", "e19:prof")
    assert instance.variables == {"_qualbits": "e19-prof"}
    assert [(c.name, c.line) for c in instance.actions["setup"]] == [
        ("setupenv", 9),
        ("envset", 10),
    ]
    assert [c.name for c in instance.actions["other"]] == ["exeactionrequired", ""]
    assert instance.actions["other"][1].text == "frobnicate(X)"


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
    e19, e20 = parse_table(COMMON_TABLE, "t").instances
    assert [c.text for c in e19.actions["setup"]] == ["envSet(OWN, 1)"]
    assert [c.text for c in e20.actions["setup"]] == ["envSet(COMMON, 1)"]
    assert e19.variables == e20.variables == {"_shared": "common"}
