"""Each UPS table function and argument form, against what UPS v5/v6's rules give: the sh code
upsact.c writes for a function, as the login shell runs it, and the facts the real ups v6_0_8
showed (SETUP_<P> order, two-argument prodDir, missing products; tests/ups/realups holds the
real ups's runs, test_realups.py holds ocibuild to them). Fixtures are our own."""

from __future__ import annotations

import re

import pytest

from ocibuild.errors import Origin
from ocibuild.sources.setup import frozen_environment
from ocibuild.sources.specs import SetupSpec
from ocibuild.ups.reverse import reverse
from ocibuild.ups.table import Command
from ocibuild.ups.upserrors import SetupFailed, SetupRefused
from tests.ups.test_environment import Files, Messages, simple_table

F = "Linux64bit+3.10-2.17"
BASE = {"PATH": "/usr/bin:/bin"}


def tree(*products: tuple[str, str, str | None, str], flavor: str = F) -> Files:
    """A database with a dbconfig (PROD_DIR_PREFIX = ${UPS_THIS_DB}); each product is
    (name, version, table body or None for no table, qualifiers)."""
    files = Files()
    files.dbconfig()
    files.declare("ups", "v6", simple_table("ups", "    setupEnv()\n"), flavor=flavor)
    files.chain("ups", "v6", flavor=flavor)
    for name, version, body, quals in products:
        table = None if body is None else simple_table(name, body, quals=quals)
        files.declare(name, version, table, flavor=flavor, quals=quals)
    return files


def add(files: Files, name: str, version: str, table: str | None, flavor: str = F) -> None:
    files.declare(name, version, table, flavor=flavor)


def run(
    files: Files,
    product: str,
    version: str = "v1",
    quals: str = "",
    env: dict[str, str] | None = None,
    missing: str = "ups",
) -> tuple[dict[str, str], Messages]:
    messages = Messages()
    spec = SetupSpec(product, version, quals, missing=missing, origin=Origin("r.yaml", 3))  # type: ignore[arg-type]
    frozen = frozen_environment(files, spec, messages, base_env=dict(env or BASE))
    return frozen.env, messages


def one(body: str, env: dict[str, str] | None = None) -> dict[str, str]:
    result, _ = run(tree(("p", "v1", body, "")), "p", env=env)
    return result


# -- SETUP_<P>, prodDir, doDefaults ---------------------------------------------------------------


def test_setup_variable_puts_qualifiers_last_and_omits_them_when_unqualified() -> None:
    files = tree(("q", "v1", "    setupEnv()\n", "e19:prof"), ("u", "v2", "    setupEnv()\n", ""))
    assert run(files, "q", quals="e19:prof")[0]["SETUP_Q"] == (
        f"q v1 -f {F} -z /products -q e19:prof"
    )
    assert run(files, "u", "v2")[0]["SETUP_U"] == f"u v2 -f {F} -z /products"
    # UPS reads qualifiers sorted
    files.declare("s", "v1", simple_table("s", "    setupEnv()\n", quals="prof:e19"), F, "prof:e19")
    env = run(files, "s", quals="e19:prof")[0]
    assert env["SETUP_S"] == f"s v1 -f {F} -z /products -q e19:prof"


def test_prod_dir_forms() -> None:
    env = one(
        "    prodDir()\n"
        "    prodDir(_FQ_DIR, ${UPS_PROD_FLAVOR}-e19-prof)\n"
        "    envSet(FQ, ${UPS_PROD_FLAVOR}-debug)\n"
        "    prodDir(_DEBUG_DIR, ${FQ})\n"  # a shell variable, evaluated when set
        "    prodDir( _INC, ${FQ}/include )\n"
        "    prodDir(_ABS, /opt/elsewhere)\n"  # an absolute path too: its leading / dropped
        "    prodDir(_ROOT)\n"  # one argument: the suffix, the product directory
    )
    assert env["P_DIR"] == "/products/p/v1"
    assert env["P_FQ_DIR"] == f"/products/p/v1/{F}-e19-prof"
    assert env["P_DEBUG_DIR"] == f"/products/p/v1/{F}-debug"
    assert env["P_INC"] == f"/products/p/v1/{F}-debug/include"
    assert env["P_ABS"] == "/products/p/v1/opt/elsewhere"
    assert env["P_ROOT"] == "/products/p/v1"


def test_un_prod_dir_unsetup_env_and_do_defaults() -> None:
    env = one(
        "    doDefaults()\n"
        "    prodDir(_FQ_DIR, x)\n"
        "    envSet(KEEP, ${P_DIR})\n"
        "    unProdDir(_FQ_DIR)\n"
        "    unProdDir()\n"
        "    unsetupEnv()\n"
    )
    assert env["KEEP"] == "/products/p/v1"
    assert not {"P_DIR", "P_FQ_DIR", "SETUP_P"} & set(env)
    env = one("    doDefaults()\n    doDefaults(unsetup)\n    doDefaults(current)\n")
    assert not {"P_DIR", "SETUP_P"} & set(env)


def test_products_without_setup_action_or_table_get_the_defaults() -> None:
    files = tree(("n", "v1", None, ""))
    add(files, "a", "v1", 'File=Table\nProduct=a\nFlavor=ANY\nQualifiers=""\nAction=other\n')
    assert run(files, "n")[0]["SETUP_N"] == f"n v1 -f {F} -z /products"
    env = run(files, "a")[0]
    assert (env["A_DIR"], env["SETUP_A"]) == ("/products/a/v1", f"a v1 -f {F} -z /products")


def test_prod_dir_prefix_of_the_dbconfig() -> None:
    files = tree(("p", "v1", "    prodDir()\n", ""))
    table = files.pop("products/p/v1/ups/p.table")
    files["products/sub/p/v1/ups/p.table"] = table
    files["products/sub/ups/v6/ups/ups.table"] = files["products/ups/v6/ups/ups.table"]
    files["products/.upsfiles/dbconfig"] = b"FILE = DBCONFIG\nPROD_DIR_PREFIX = /products/sub\n"
    assert run(files, "p")[0]["P_DIR"] == "/products/sub/p/v1"
    # without one, ups leaves PROD_DIR relative: taken from the directory setup runs in (/)
    del files["products/.upsfiles/dbconfig"]
    files["p/v1/ups/p.table"] = table
    files["ups/v6/ups/ups.table"] = files["products/ups/v6/ups/ups.table"]
    env, messages = run(files, "p")
    assert env["P_DIR"] == "p/v1"
    assert any("p/v1/ups/p.table: a relative path, taken from" in m for m in messages)


# -- env* and path* -----------------------------------------------------------------------------


def test_env_set_values_are_evaluated_as_sh_does_in_double_quotes() -> None:
    env = one(
        '    envSet(A, "two words")\n'
        "    envSet(B, 'single quoted')\n"
        "    envSet(C, $HOME/x:${HOME}/y:${NOPE:-dflt}:${HOME:+set}:$NOPE.)\n"
        "    envSet(D, \\$HOME costs \\\\ \\`)\n"
        "    envSet(E, `uname -s`-$(uname -m)-end)\n"
        '    envSet( F , "0x0500" )\n'
        "    envSet(G, ${UPS_PROD_NAME_UC} ${UPS_PROD_VERSION} ${PRODUCTS} ${UPS_THIS_DB})\n"
        "    envSet(H, ${UPS_NOT_A_UPS_VARIABLE})\n",
        {"PATH": "/bin", "HOME": "/home/hep", "UPS_NOT_A_UPS_VARIABLE": "from the shell"},
    )
    assert env["A"] == "two words"
    assert env["B"] == "single quoted"
    assert env["C"] == "/home/hep/x:/home/hep/y:dflt:set:."
    assert env["D"] == "$HOME costs \\ `"
    assert env["E"] == "Linux-x86_64-end"
    assert env["F"] == "0x0500"
    assert env["G"] == "P v1 /products /products"
    assert env["H"] == "from the shell"


def test_env_set_if_not_set_counts_empty_as_not_set() -> None:
    env = one(
        "    envSetIfNotSet(UNSET, a)\n    envSetIfNotSet(EMPTY, b)\n    envSetIfNotSet(FULL, c)\n",
        {"PATH": "/bin", "EMPTY": "", "FULL": "kept"},
    )
    assert (env["UNSET"], env["EMPTY"], env["FULL"]) == ("a", "b", "kept")


def test_env_unset() -> None:
    assert "GONE" not in one("    envUnset(GONE)\n", {"PATH": "/bin", "GONE": "x"})


@pytest.mark.parametrize("kind", ["env", "path"])
def test_append_and_prepend_keep_duplicates_and_take_a_delimiter(kind: str) -> None:
    env = one(
        f"    {kind}Prepend(NEW, /a)\n"
        f"    {kind}Append(NEW, /b)\n"
        f"    {kind}Prepend(NEW, /a)\n"
        f"    {kind}Append(EMPTY, /c)\n"
        f"    {kind}Prepend(FLAGS, -O2, ' ')\n"
        f'    {kind}Append(FLAGS, -g, "")\n'
        f"    {kind}Append(LIST, z, ;)\n",
        {"PATH": "/bin", "EMPTY": "", "FLAGS": "-Wall", "LIST": "x;y"},
    )
    assert env["NEW"] == "/a:/a:/b"
    assert env["EMPTY"] == "/c"
    assert env["FLAGS"] == "-O2 -Wall -g"  # an empty delimiter argument means a blank
    assert env["LIST"] == "x;y;z"


def test_path_functions_take_csh_path_for_path() -> None:
    env = one("    pathPrepend(path, /p/bin)\n    pathSet(MANPATH, /m)\n", {"PATH": "/bin"})
    assert (env["PATH"], env["MANPATH"]) == ("/p/bin:/bin", "/m")


@pytest.mark.parametrize("kind", ["env", "path"])
def test_remove_drops_exact_elements_and_unsets_an_emptied_variable(kind: str) -> None:
    env = one(
        f"    {kind}Remove(LD, /a/lib)\n"
        f"    {kind}Remove(ONLY, /x)\n"
        f"    {kind}Remove(NOT_SET, /x)\n"
        f"    {kind}Remove(SEMI, b, ;)\n",
        {"PATH": "/bin", "LD": "/a/lib:/a/lib64::/a/lib", "ONLY": "/x:/x", "SEMI": "a;b;c"},
    )
    assert env["LD"] == "/a/lib64:"  # not a substring match; empty elements stay
    assert "ONLY" not in env and "NOT_SET" not in env
    assert env["SEMI"] == "a;c"


# -- dependencies ---------------------------------------------------------------------------------


def deps_tree() -> Files:
    return tree(
        (
            "gcc",
            "v8",
            "    setupEnv()\n    prodDir()\n    pathPrepend(PATH, ${UPS_PROD_DIR}/bin)\n",
            "",
        ),
        (
            "gcc",
            "v9",
            "    setupEnv()\n    prodDir()\n    pathPrepend(PATH, ${UPS_PROD_DIR}/bin)\n",
            "",
        ),
        (
            "boost",
            "v1",
            "    setupEnv()\n    prodDir()\n    setupRequired( gcc v8 )\n",
            "e19:prof",
        ),
        (
            "top",
            "v1",
            "    setupEnv()\n    prodDir()\n"
            "    setupRequired( boost v1 -q+e19:+prof )\n"  # asks gcc v8 inside
            "    setupRequired( gcc v9 )\n",  # the top's own request wins
            "",
        ),
    )


def test_the_top_products_own_requests_take_precedence() -> None:
    env, messages = run(deps_tree(), "top")
    assert env["SETUP_GCC"] == f"gcc v9 -f {F} -z /products"
    assert env["SETUP_BOOST"] == f"boost v1 -f {F} -z /products -q e19:prof"
    assert env["PATH"] == "/products/gcc/v9/bin:/usr/bin:/bin"
    assert messages.warnings() == []


def test_a_product_is_set_up_once_per_setup_command() -> None:
    files = deps_tree()
    add(
        files,
        "mid",
        "v1",
        simple_table("mid", "    setupRequired(boost v1 -q e19:prof)\n    setupRequired(gcc v9)\n"),
    )
    add(files, "two", "v1", simple_table("two", "    setupRequired(mid v1)\n"))
    env, messages = run(files, "two")
    assert env["SETUP_GCC"].startswith("gcc v8 ")  # boost's request came first
    assert env["PATH"] == "/products/gcc/v8/bin:/usr/bin:/bin"
    assert messages.warnings() == []  # gcc v9 is skipped silently, as the real ups does


def test_setup_required_options() -> None:
    files = deps_tree()
    add(files, "gcc", "v7", None, flavor="NULL")
    files["products/gcc/test.chain/NULL_"] = (
        b'FILE = chain\nPRODUCT = gcc\nCHAIN = test\nFLAVOR = NULL\nVERSION = v7\nQUALIFIERS = ""\n'
    )
    for request, expected in [
        ("gcc -t", "gcc v7 -f NULL -z /products"),
        ("gcc -g test", "gcc v7 -f NULL -z /products"),
        ("gcc v7 -f NULL", "gcc v7 -f NULL -z /products"),
        ("-j boost v1 -q +e19:?py2:+prof", f"boost v1 -f {F} -z /products -q e19:prof -j"),
    ]:
        add(files, "r", "v1", simple_table("r", f"    setupRequired( {request} )\n"))
        env, _ = run(files, "r")
        name = "SETUP_BOOST" if "boost" in request else "SETUP_GCC"
        assert env[name] == expected, request
        if "-j" in request:  # just that product: boost's own gcc is not set up
            assert "SETUP_GCC" not in env


def test_a_missing_required_product_is_refused_naming_line_and_ups_messages() -> None:
    """Nothing ups reads after the miss clears its last error: the real setup is refused."""
    files = deps_tree()
    add(files, "m", "v1", simple_table("m", "    setupRequired( gcc v9 -q +e20 )\n"))
    with pytest.raises(SetupRefused) as e:
        run(files, "m")
    message = str(e.value)
    assert message.startswith(
        "r.yaml:3: setup m v1: /products/m/v1/ups/m.table:8: ERROR: Action parsing failed on "
        '"setupRequired( gcc v9 -q +e20 )": the real setup is refused'
    )
    assert "Found no match for product 'gcc'" in message and "missing: warn" in message
    assert e.value.messages[-2:] == (
        "ERROR: Found no match for product 'gcc'",
        'ERROR: Action parsing failed on "setupRequired( gcc v9 -q +e20 )"',
    )


def test_a_miss_is_forgiven_when_ups_reads_a_file_after_it() -> None:
    """The real "last error" rule: a dependency looked up after the miss (not one of the top
    product's own, which are looked up first) clears it; so does an optional miss."""
    files = deps_tree()
    add(files, "x", "v1", simple_table("x", "    exeActionRequired(more)\n", "ANY", ""))
    text = (
        files["products/x/v1/ups/x.table"]
        .decode()
        .replace(
            "End:",
            "  Action=more\n    setupRequired( nosuch v1 )\n    setupRequired( gcc v9 )\nEnd:",
        )
    )
    files["products/x/v1/ups/x.table"] = text.encode()
    env, messages = run(files, "x")
    assert env["SETUP_GCC"].startswith("gcc v9") and "SETUP_NOSUCH" not in env
    assert any("the real setup goes on (exit status 0) after" in w for w in messages.warnings())
    with pytest.raises(SetupRefused, match="missing: refuse refuses it"):
        run(files, "x", missing="refuse")
    add(
        files,
        "y",
        "v1",
        simple_table(
            "y", "    setupEnv()\n    setupRequired( nosuch v1 )\n    setupOptional( other v1 )\n"
        ),
    )
    env, _ = run(files, "y")
    assert env["SETUP_Y"].startswith("y v1")


def test_missing_warn_goes_on_without_the_product() -> None:
    files = deps_tree()
    add(
        files,
        "m",
        "v1",
        simple_table(
            "m",
            "    setupEnv()\n    setupRequired( nosuch v1 )\n    setupRequired( gcc v9 -q +e20 )\n"
            "    setupOptional( other v1 )\n    envSet(AFTER, yes)\n",
        ),
    )
    add(
        files,
        "n",
        "v1",
        simple_table("n", "    setupRequired( m v1 )\n    setupRequired( nosuch v2 )\n"),
    )
    env, messages = run(files, "n", missing="warn")
    assert env["AFTER"] == "yes" and env["SETUP_M"]
    assert "SETUP_NOSUCH" not in env and "SETUP_GCC" not in env and "SETUP_OTHER" not in env
    (warning,) = messages.warnings()
    assert 'n.table:9: ERROR: Action parsing failed on "setupRequired( nosuch v2 )"' in warning
    assert "the real setup is refused; missing: warn goes on" in warning


def test_actions_run_by_exe_action_and_their_names_ignore_case() -> None:
    files = tree(("p", "v1", "    exeActionRequired(Extra)\n    exeActionOptional(None)\n", ""))
    files["products/p/v1/ups/p.table"] += b"Flavor=NULL\n"  # a stray instance changes nothing
    text = (
        files["products/p/v1/ups/p.table"]
        .decode()
        .replace("End:", "  Action=EXTRA\n    envSet(E, 1)\nEnd:")
    )
    files["products/p/v1/ups/p.table"] = text.encode()
    assert run(files, "p")[0]["E"] == "1"


def test_unsetup_required_in_a_setup_action_sets_the_product_defaults() -> None:
    """ups v6_0_8 resolves unsetupRequired() in a setup action like a setupRequired() of the
    first level and writes its default setup: <P>_DIR and SETUP_<P> (failures probe)."""
    files = deps_tree()
    add(files, "u", "v1", simple_table("u", "    unsetupRequired(gcc v9)\n    envSet(X, 1)\n"))
    env, _ = run(files, "u")
    assert env["X"] == "1" and env["SETUP_GCC"].startswith("gcc v9") and env["GCC_DIR"]
    assert env["PATH"] == "/usr/bin:/bin"  # gcc's own setup action does not run
    add(files, "w", "v1", simple_table("w", "    unsetupRequired(nosuch)\n"))
    with pytest.raises(SetupRefused, match="Found no match for product 'nosuch'"):
        run(files, "w")


# -- conditions -----------------------------------------------------------------------------------


def test_if_else_endif_unless_and_products_inside_a_false_branch() -> None:
    files = deps_tree()
    add(
        files,
        "c",
        "v1",
        simple_table(
            "c",
            '    if ( test `uname` = "Darwin" )\n'
            "      setupRequired( gcc v9 )\n"  # counts as set up, changes nothing
            "      envSet(MAC, 1)\n"
            "    else ()\n"
            "      envSet(LINUX, 1)\n"
            '    endif ( test `uname` = "Darwin" )\n'
            "    setupRequired( gcc v9 )\n"  # skipped: gcc was set up above
            "    unless ( test -d ${UPS_PROD_DIR}/lib64 && [ x = x ] )\n"
            "      envSet(NO_LIB64, 1)\n"
            "    endUnless ( test -d ${UPS_PROD_DIR}/lib64 && [ x = x ] )\n"
            '    if ( test -n "${HOME}" || false )\n'
            "      if ( ! test -f ${UPS_PROD_DIR}/lib64/x.so )\n"
            "        envSet(NESTED, 1)\n"
            "      endif ( ! test -f ${UPS_PROD_DIR}/lib64/x.so )\n"
            '    endif ( test -n "${HOME}" || false )\n',
        ),
    )
    env, messages = run(files, "c", env={"PATH": "/bin", "HOME": "/h"})
    assert (env["LINUX"], env["NO_LIB64"], env["NESTED"]) == ("1", "1", "1")
    assert not {"MAC", "SETUP_GCC"} & set(env)
    assert env["PATH"] == "/bin"
    assert messages.warnings() == []


def test_endif_must_repeat_its_if() -> None:
    files = tree(("c", "v1", "    if ( true )\n      envSet(X, 1)\n    endif ( false )\n", ""))
    with pytest.raises(
        SetupRefused,
        match=r"c.table:10: endif \( false \): ERROR: Mismatched EndIf condition 'true' does "
        r"not match If condition 'false'.: the real setup is refused",
    ):
        run(files, "c")
    files = tree(("d", "v1", "    envSet(Y, 1)\n    if ( true )\n      envSet(X, 1)\n", ""))
    with pytest.raises(SetupFailed, match=r"if\(true\) without EndIf: syntax error") as e:
        run(files, "d")
    assert e.value.status == 2 and e.value.env["Y"] == "1" and "X" not in e.value.env


# -- what cannot be frozen, and what stops the setup ------------------------------------------


def test_functions_that_cannot_be_frozen_are_counted_and_named() -> None:
    files = tree(
        (
            "o",
            "v1",
            "    addAlias(lar, lar -c %s)\n"
            "    unAlias(GONE)\n"
            "    sourceRequired(${UPS_PROD_DIR}/s.sh, NO_UPS_ENV)\n"  # only assignments: frozen
            "    sourceOptional(${UPS_PROD_DIR}/s.sh, UPS_ENV)\n"
            "    sourceCompileOpt(${UPS_PROD_DIR}/s.sh)\n"
            "    execute(date, NO_UPS_ENV, WHEN)\n"
            "    exeAccess(lar)\n"
            "    fileTest(/etc/os-release, -f, no os-release)\n"
            "    writeCompileScript(${UPS_PROD_DIR}/compiled, setup)\n"
            "    sourceReqCheck(${UPS_PROD_DIR}/s.sh, UPS_ENV, EXIT)\n"
            "    envSet(NOT_WRITTEN, 1)\n",  # ups writes nothing of the action after EXIT
            "",
        )
    )
    files["products/o/v1/s.sh"] = b"export X=1\n"
    messages = Messages()
    spec = SetupSpec("o", "v1", origin=Origin("r.yaml", 3))
    frozen = frozen_environment(files, spec, messages, {"PATH": "/bin", "GONE": "x"})
    lines = [n.where.rsplit(":", 1)[1] for n in frozen.not_frozen]
    assert lines == ["8", "9", "13", "14", "15", "16"]
    assert frozen.env["X"] == "1" and "NOT_WRITTEN" not in frozen.env
    assert "GONE" not in frozen.env  # unAlias's `unset GONE` removes the variable
    assert not [k for k in frozen.env if k.startswith("UPS_PROD")]  # unset after UPS_ENV
    assert len(messages.warnings()) == 6
    # given once per build: a second setup with the same `warned` set says nothing new
    again = Messages()
    warned = {m.removeprefix("warning: ") for m in messages.warnings()}
    frozen_environment(files, spec, again, {"PATH": "/bin"}, warned)
    assert again.warnings() == []


def test_a_failing_file_test_or_missing_sourced_file_stops_the_setup_there() -> None:
    """The shell returns 1 there: the real setup fails, the lines before it applied; with
    `missing: warn` the frozen Env is that environment."""
    for line, output in (
        ("    fileTest(${UPS_PROD_DIR}/missing, -d, no such directory)\n", "no such directory"),
        (
            "    sourceRequired(${UPS_PROD_DIR}/missing.sh, UPS_ENV)\n",
            "File (/products/s/v1/missing.sh) not found",
        ),
    ):
        files = tree(("s", "v1", f"    envSet(BEFORE, 1)\n{line}    envSet(AFTER, 1)\n", ""))
        with pytest.raises(SetupFailed, match=r"s.table:9: .*: " + re.escape(output)) as e:
            run(files, "s")
        assert e.value.status == 1 and e.value.env["BEFORE"] == "1" and "AFTER" not in e.value.env
        env, messages = run(files, "s", missing="warn")
        assert env["BEFORE"] == "1" and "AFTER" not in env
        assert "the real setup stops here; so does this one" in messages.warnings()[0]
    env, _ = run(
        tree(
            (
                "s",
                "v1",
                "    sourceOptional(${UPS_PROD_DIR}/none.sh, UPS_ENV)\n"
                "    fileTest(${UPS_PROD_DIR}/ups, -d)\n    envSet(AFTER, 1)\n",
                "",
            )
        ),
        "s",
    )
    assert env["AFTER"] == "1"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("envSet(X)", r"Invalid number of parameters for action envSet, must be between 2 and 2 \(found 1\)"),
        ("prodDir(_A, b, c)", r"Invalid number of parameters for action prodDir, must be between 0 and 2 \(found 3\)"),
        ("execute(date, ALWAYS)", r"The 'execute' function must have 'UPS_ENV' or 'NO_UPS_ENV' as a second parameter, not 'ALWAYS'"),
    ],
)  # fmt: skip
def test_wrong_calls_are_refused_naming_the_line(line: str, message: str) -> None:
    with pytest.raises(SetupRefused, match=r"w.table:8: .*" + message):
        run(tree(("w", "v1", f"    {line}\n", "")), "w")


def test_unknown_functions_and_trailing_text_as_ups_reads_them() -> None:
    env, _ = run(tree(("t", "v1", "    envSet(X, 1) # one\n", "")), "t")
    assert env["X"] == "1) # one"
    with pytest.raises(SetupRefused, match=r'Action parsing failed on "frobnicate\(X\)"'):
        run(tree(("t", "v1", "    frobnicate(X)\n    envSet(X, 1)\n", "")), "t")


# -- variables of the UPS world ------------------------------------------------------------------


def test_ups_variables_and_user_keys() -> None:
    files = tree(
        (
            "v",
            "v1",
            "    envSet(SETUP_LINE, ${UPS_SETUP})\n"
            "    envSet(OS, ${UPS_OS_FLAVOR})\n"
            "    envSet(UPSDIR, ${UPS_UPS_DIR})\n"
            "    envSet(QUALS, ${UPS_PROD_QUALIFIERS}/${UPS_REQ_QUALIFIERS})\n"
            "    envSet(USER_KEY, ${_where}-${_missing})\n",
            "e19",
        )
    )
    table = files["products/v/v1/ups/v.table"].decode()
    files["products/v/v1/ups/v.table"] = table.replace(
        'Qualifiers="e19"\n', 'Qualifiers="e19"\n_where = table\n'
    ).encode()
    env, _ = run(files, "v", quals="e19")
    assert env["SETUP_LINE"] == f"v v1 -f {F} -z /products -q e19"
    assert env["OS"] == F
    assert env["UPSDIR"] == "/products/v/v1/ups"
    assert env["QUALS"] == "e19/e19"
    assert env["USER_KEY"] == "table-"
    version_file = f"products/v/v1.version/{F}_e19"
    files[version_file] = files[version_file].replace(
        b"  UPS_DIR = ups\n", b"  TABLE_DIR = ups\n  _where = version\n"
    )
    env, _ = run(files, "v", quals="e19")
    assert env["USER_KEY"] == "version-"  # the version file's key comes first
    assert env["UPSDIR"] == "/products/v/v1/ups"  # no UPS_DIR: <prod_dir>/ups when it exists


# -- setting up again: the login shell over the frozen Env ---------------------------------------


def relogin_tree() -> Files:
    files = deps_tree()
    add(
        files,
        "app",
        "v1",
        simple_table(
            "app",
            "    setupEnv()\n    prodDir()\n"
            "    prodDir(_FQ_DIR, ${UPS_PROD_FLAVOR})\n"
            "    envSet(APP_LIB, ${APP_FQ_DIR}/lib)\n"
            '    if ( test `uname` = "Darwin" )\n'
            "      envPrepend(DYLD_LIBRARY_PATH, ${APP_LIB})\n"
            "    else()\n"
            "      envPrepend(LD_LIBRARY_PATH, ${APP_LIB})\n"
            '    endif ( test `uname` = "Darwin" )\n'
            "    pathPrepend(PATH, ${APP_FQ_DIR}/bin)\n"
            "    setupRequired( boost v1 -q +e19:+prof )\n",
        ),
    )
    add(
        files,
        "ups",
        "v6",
        simple_table(
            "ups", "    setupEnv()\n    prodDir()\n    pathPrepend(PATH, ${UPS_PROD_DIR}/bin, :)\n"
        ),
    )
    return files


def test_the_login_shell_setup_over_the_frozen_env_gives_the_same_env() -> None:
    """The profile script runs `source /products/setup; setup ...` again in a shell whose
    environment is the frozen Env: UPS unsets up what SETUP_<P> names first (the setup action
    reversed), so the result is the frozen Env again."""
    files = relogin_tree()
    frozen, _ = run(files, "app", env={"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": "/opt/lib"})
    assert frozen["LD_LIBRARY_PATH"] == f"/products/app/v1/{F}/lib:/opt/lib"
    assert (
        frozen["PATH"]
        == f"/products/gcc/v8/bin:/products/app/v1/{F}/bin:/products/ups/v6/bin:/usr/bin:/bin"
    )
    again, messages = run(files, "app", env=frozen)
    assert again == frozen
    assert messages.warnings() == []


def test_setting_up_over_an_older_setup_removes_what_it_added() -> None:
    files = relogin_tree()
    add(
        files,
        "app",
        "v0",
        simple_table(
            "app",
            "    setupEnv()\n    prodDir()\n"
            "    pathPrepend(PATH, ${UPS_PROD_DIR}/bin)\n"
            "    envSet(APP_OLD, 1)\n",
        ),
    )
    old, _ = run(files, "app", "v0")
    new, _ = run(files, "app", "v1", env=old)
    assert "APP_OLD" not in new and "/products/app/v0/bin" not in new["PATH"]
    assert new["SETUP_APP"] == f"app v1 -f {F} -z /products"


def test_reversed_actions_follow_upsact() -> None:
    commands = [
        Command("", text, n)
        for n, text in enumerate(
            [
                "setupEnv()",
                "prodDir(_FQ_DIR, x)",
                "envSet(A, 1)",
                "envSetIfNotSet(B, 2)",
                "if ( c )",
                "pathPrepend(PATH, /a/bin, :)",
                "else()",
                "envAppend(L, /l)",
                "endif ( c )",
                "if ( d )",
                "envPrepend(M, /m)",
                "endif ( d )",
                "setupRequired( gcc v8 -q e19 )",
                "setupRequired( boost v1 )",
                "sourceRequired(/p/setup.sh, UPS_ENV)",
                "exeActionRequired(Extra)",
                "addAlias(x, y)",
            ]
        )
    ]
    reversed_ = reverse(commands, lambda text: text, lambda product: product == "boost")
    assert [c.text for c in reversed_] == [
        "unalias(x)",
        "rev_exeactionrequired(Extra)",
        "sourceoptional(/p/unsetup.sh, UPS_ENV)",
        "unsetuprequired(boost)",
        "unsetuprequired(gcc v8 -q e19)",
        "unless(d)",  # UPS's own rule: an if without else comes back as unless
        "envremove(M, /m)",
        "endunless(d)",
        "unless(c)",
        "envremove(L, /l)",
        "else()",
        "pathremove(PATH, /a/bin, :)",
        "endunless(c)",
        "envunset(A)",
        "unproddir(_FQ_DIR)",
        "unsetupenv()",
    ]


def test_a_table_without_the_declared_instance_is_a_missing_product() -> None:
    files = deps_tree()
    files.declare("x", "v1", simple_table("x", "    setupEnv()\n", quals="e19"), F, "e20")
    files.declare("y", "v1", simple_table("y", "    setupRequired( x v1 -q e20 )\n"), F)
    with pytest.raises(
        SetupRefused,
        match=r"No instance matches were made between the version file "
        r"\(/products/x/v1.version\) and the table file \(x.table\) for flavor "
        r"\(Linux64bit\+3.10-2.17\) and qualifiers \(e20\)",
    ):
        run(files, "y")
    env, messages = run(files, "y", missing="warn")
    assert "SETUP_X" not in env
    assert "missing: warn goes on" in messages.warnings()[0]


def test_where_the_filesystem_order_decides_ocibuild_warns() -> None:
    """Two entries of a `.version` directory answering the same request: the real ups takes
    the one readdir gives first; ocibuild takes the first by name and says so."""
    files = tree(("x", "v1", "    setupEnv()\n", ""))
    files.declare("x", "v1", simple_table("x", "    setupEnv()\n"), flavor="Linux64bit+2.6-2.17")
    env, messages = run(files, "x")
    assert env["SETUP_X"] == "x v1 -f Linux64bit+2.6-2.17 -z /products"
    (warning,) = messages.warnings()
    assert warning.startswith("warning: /products/x/v1.version: Linux64bit+2.6-2.17_, ")
    assert "the real ups takes the entry the filesystem lists first" in warning
